"""Where tutela keeps its data and finds its config file. Light on purpose (no YAML, no pydantic):
a command that needs no settings checks `config_path()` before paying for `load_settings()`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ENV_PREFIX = "TUTELA_"


def default_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("TUTELA_HOME"):
        return Path(env["TUTELA_HOME"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "tutela"


def config_path(explicit: Path | str | None, env: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit).expanduser()
    if env.get("TUTELA_CONFIG"):
        return Path(env["TUTELA_CONFIG"]).expanduser()
    candidate = default_home(env) / "config.yaml"
    return candidate if candidate.is_file() else None


def env_overrides(env: Mapping[str, str]) -> list[str]:
    """The TUTELA_<SECTION>__<KEY> variables that override settings (TUTELA_HOME and TUTELA_CONFIG do not)."""
    return sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in ("TUTELA_HOME", "TUTELA_CONFIG"))
