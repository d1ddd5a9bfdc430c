"""Optional dependencies: imported only where needed, with a hint naming the extra that brings them."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from tutela.core.errors import MissingExtra


def have(module: str) -> bool:
    """True when `module` can be imported; imports nothing."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, extra: str) -> ModuleType:
    """Import `module`, or raise MissingExtra telling which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(f"{module} is not installed ({exc.msg})", hint=f"pip install 'tutela[{extra}]'") from None
