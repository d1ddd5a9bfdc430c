from __future__ import annotations

from pathlib import Path

import pytest

from tutela.runtime import datasets as ds


@pytest.fixture(scope="session")
def llm_data() -> Path:
    try:
        return ds.data_dir()
    except Exception:
        pytest.skip("shared data not available (set TUTELA_DATA)")
