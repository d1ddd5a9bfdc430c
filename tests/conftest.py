"""Hermetic by default: every test gets its own TUTELA_HOME and no config from the user's home."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def tutela_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "tutela-home"
    for name in list(__import__("os").environ):
        if name.startswith("TUTELA_") and name not in ("TUTELA_PURE_PYTHON", "TUTELA_ALLOW_NO_NATIVE"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TUTELA_HOME", str(home))
    return home
