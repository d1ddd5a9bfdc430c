"""Compiled twins of hot Python code (CPython C API; built by setup.py, each extension optional).

- udpfast.c: the DNS sensor's hot UDP loop (recvmmsg, answer-cache hits answered, sendmmsg); its
  pure-Python twin is tutela.dns.udpbatch.BatchSocket._serve_python with tutela.dns.hotpath.

Every function here has a pure-Python twin that stays the reference: same results, compared by
tests on many inputs, hostile ones included. `load` gives the compiled module when it was built,
else None (the caller then uses the twin); TUTELA_PURE_PYTHON=1 forces the twins.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def load(name: str) -> ModuleType | None:
    """The compiled module `tutela._native.<name>`, or None (not built, or TUTELA_PURE_PYTHON=1)."""
    if os.environ.get("TUTELA_PURE_PYTHON") == "1":
        return None
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ImportError:
        return None
