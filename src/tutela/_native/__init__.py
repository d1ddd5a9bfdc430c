"""Compiled (CPython C API) versions of a few hot functions; every function here has a pure-Python twin,
which stays the reference and is used where the extension is not built or TUTELA_PURE_PYTHON=1.

- charcnn: the character CNN's forward pass for one name (twin: tutela.dns.charcnn, numpy).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def load(name: str) -> ModuleType | None:
    """tutela._native.<name>, or None where TUTELA_PURE_PYTHON=1 or the extension was not built."""
    if os.environ.get("TUTELA_PURE_PYTHON") == "1":
        return None
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ImportError:
        return None
