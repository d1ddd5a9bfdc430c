"""One settings object, from a YAML file plus `TUTELA_` environment variables, validated at start.

Loaded once at the edge (CLI main, a server's entry point) and passed down; there is no global
`get_settings()`. An unknown key, an unknown detector id or a bad value is a ConfigError that
names the key and the file (or environment variable) it came from.

Environment: TUTELA_HOME, TUTELA_CONFIG (the file), and TUTELA_<SECTION>__<KEY>=value for any key
(values are read as YAML scalars, so `TUTELA_STORE__FLUSH_INTERVAL=0.2` is a float). TUTELA_PURE_PYTHON
and TUTELA_ALLOW_NO_NATIVE are not settings: they choose compiled code (see tutela._native).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tutela.core.errors import ConfigError
from tutela.core.models import ModelCache
from tutela.core.paths import ENV_PREFIX as ENV_PREFIX
from tutela.core.paths import config_path as config_path
from tutela.core.paths import default_home as default_home
from tutela.core.pipeline import DetectorSpec, build_detector
from tutela.core.policy import PILLARS, PolicyConfig
from tutela.core.registry import SETTINGS, DetectorRegistry, Registry

MAX_CONFIG_BYTES = 4 << 20


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Section):
    path: Path | None = None  # default: <home>/events.duckdb
    flush_interval: float = Field(0.5, gt=0, le=1.0)  # a crash loses at most this much
    max_buffer: int = Field(1_000_000, ge=1_000)  # events held in memory before spilling to disk


class ServiceSettings(_Section):
    enabled: bool = True
    listen: str | None = None  # HOST:PORT; None means the service's own loopback default
    options: dict[str, Any] = Field(default_factory=dict)


class TutelaSettings(_Section):
    home: Path
    config_file: Path | None = None
    store: StoreSettings = Field(default_factory=StoreSettings)
    services: dict[str, ServiceSettings] = Field(default_factory=dict)
    policy: dict[str, PolicyConfig] = Field(default_factory=dict)
    detectors: dict[str, tuple[DetectorSpec, ...]] = Field(default_factory=dict)
    sections: dict[str, Any] = Field(default_factory=dict)  # pillar settings, by section name

    @property
    def store_path(self) -> Path:
        return self.store.path or self.home / "events.duckdb"

    def policy_for(self, pillar: str) -> PolicyConfig:
        if pillar in self.policy:
            return self.policy[pillar]
        # Posture fails closed (an unparsable artifact is a finding); inline pillars fail open.
        return PolicyConfig(on_error="closed" if pillar == "posture" else "open")

    def section(self, name: str, model: type[BaseModel]) -> Any:
        return self.sections.get(name) or model()

    def service(self, name: str) -> ServiceSettings:
        return self.services.get(name) or ServiceSettings()


def _where(source: str, loc: Sequence[int | str]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return f"{source}: {key}" if key else source


def _validation_error(source: str, exc: ValidationError, prefix: Sequence[str | int] = ()) -> ConfigError:
    err = exc.errors()[0]
    loc = [*prefix, *err["loc"]]
    if err["type"] == "extra_forbidden":
        return ConfigError(f"{_where(source, loc)}: unknown key", hint="check the spelling; see docs/configuration.md")
    return ConfigError(f"{_where(source, loc)}: {err['msg']}")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: config file is {size} bytes; the limit is {MAX_CONFIG_BYTES}")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: invalid YAML{at}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, not {type(data).__name__}")
    return data


# TUTELA_ variables that are not settings: the config file, and the choice of compiled code (tutela._native)
NOT_SETTINGS = ("TUTELA_CONFIG", "TUTELA_PURE_PYTHON", "TUTELA_ALLOW_NO_NATIVE")


def _env_overrides(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Nested overrides from TUTELA_A__B=value, and the variable each top-level key came from."""
    out: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in NOT_SETTINGS:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if not all(path):
            raise ConfigError(f"environment variable {name}: empty key segment")
        try:
            value = yaml.safe_load(raw) if path != ["home"] else raw
        except yaml.YAMLError:
            value = raw
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name}: {part} is not a section")
        node[path[-1]] = value
        origin.setdefault(path[0], name)
    return out, origin


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    path: Path | str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    detectors: DetectorRegistry | None = None,
    sections: Registry[type[BaseModel]] | None = None,
) -> TutelaSettings:
    """Read, merge and validate; raise ConfigError naming the offending key and its source."""
    env = dict(os.environ if env is None else env)
    file = config_path(path, env)
    data = _read_yaml(file) if file else {}
    source_of: dict[str, str] = {k: str(file) for k in data}
    overrides, env_origin = _env_overrides(env)
    source_of.update(env_origin)
    data = _merge(data, overrides)
    data.setdefault("home", str(default_home(env)))
    data["config_file"] = str(file) if file else None

    sections = sections if sections is not None else Registry[type[BaseModel]].from_entry_points(SETTINGS)
    pillar_sections: dict[str, Any] = {}
    for name in list(data):
        if name in sections:
            raw = data.pop(name)
            try:
                pillar_sections[name] = sections.get(name)(**(raw or {}))
            except ValidationError as exc:
                raise _validation_error(source_of.get(name, "config"), exc, [name]) from None
            except TypeError:
                raise ConfigError(f"{source_of.get(name, 'config')}: {name}: must be a mapping") from None
    data["sections"] = pillar_sections

    for table in ("policy", "detectors"):
        for pillar in data.get(table) or {}:
            if pillar not in PILLARS:
                raise ConfigError(
                    f"{source_of.get(table, 'config')}: {table}.{pillar}: unknown pillar",
                    hint=f"use one of {', '.join(PILLARS)}",
                )
    try:
        settings = TutelaSettings(**data)
    except ValidationError as exc:
        first = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else ""
        raise _validation_error(source_of.get(first, str(file or "config")), exc) from None

    if detectors is not None:
        validate_detectors(settings, detectors, source_of.get("detectors", "config"))
    return settings


def validate_detectors(settings: TutelaSettings, registry: DetectorRegistry, source: str) -> None:
    """Every configured detector id exists, belongs to its pillar, and its params validate."""
    models = ModelCache()
    for pillar, specs in settings.detectors.items():
        for i, spec in enumerate(specs):
            where = f"{source}: detectors.{pillar}[{i}]"
            if spec.id not in registry:
                known = ", ".join(registry.names()) or "none installed"
                raise ConfigError(f"{where}.id: unknown detector {spec.id!r}", hint=f"known: {known}")
            if registry.get(spec.id).pillar != pillar:
                raise ConfigError(
                    f"{where}.id: detector {spec.id!r} belongs to pillar {registry.get(spec.id).pillar!r}"
                )
            build_detector(registry, spec, models, where=where)  # constructors are cheap: no I/O
