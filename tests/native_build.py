"""Whether the tests expect tutela's compiled extensions (tutela._native) to be built.

Read once, at import: tests/conftest.py clears TUTELA_* variables around each test. TUTELA_PURE_PYTHON=1 runs
the pure-Python twins on purpose; TUTELA_ALLOW_NO_NATIVE=1 accepts a machine where an extension did not build.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

PURE = os.environ.get("TUTELA_PURE_PYTHON") == "1"
ALLOW_MISSING = PURE or os.environ.get("TUTELA_ALLOW_NO_NATIVE") == "1"


def missing(name: str, why: str = "is not built") -> NoReturn:
    """A compiled path that is not there: skipped where the environment allows it, else a failure (so CI
    proves the build worked)."""
    if ALLOW_MISSING:
        pytest.skip(f"tutela._native.{name} {why} (allowed: TUTELA_PURE_PYTHON or TUTELA_ALLOW_NO_NATIVE)")
    pytest.fail(f"tutela._native.{name} {why} (setup.py build_ext --inplace; TUTELA_ALLOW_NO_NATIVE=1 allows it)")
