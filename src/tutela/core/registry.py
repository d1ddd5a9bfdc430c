"""Registries fed by entry points: the single source of what is installed.

Built-ins are declared in tutela's own pyproject exactly as a third-party plugin would be.
A registry is an object (no module globals); each entry is imported only when first used.
Groups:
  tutela.detectors    detector id -> Detector class
  tutela.commands     CLI group name -> `register(subparsers)` function
  tutela.services     service name -> ServiceSpec (what `tutela up` starts)
  tutela.capabilities capability name -> factory, for one pillar to use another's (through core)
  tutela.settings     config section name -> pydantic model of that section
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tutela.core.errors import ConfigError

if TYPE_CHECKING:
    from tutela.core.detector import Detector

T = TypeVar("T")

DETECTORS = "tutela.detectors"
COMMANDS = "tutela.commands"
SERVICES = "tutela.services"
CAPABILITIES = "tutela.capabilities"
SETTINGS = "tutela.settings"


_ENTRY = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")
_SEPARATORS = re.compile(r"[-_.]+")


def entry_points(group: str) -> list[tuple[str, str]]:
    """(name, value) of every installed distribution's entry points in `group`.

    What `importlib.metadata.entry_points(group=...)` returns, read directly from the
    `*.dist-info`/`*.egg-info` folders on sys.path (the first distribution of a name wins, in path
    order), because importing importlib.metadata costs ~0.1 s of a command's start-up. A path entry
    that is not a folder (a zip or egg file) falls back to importlib.metadata.
    """
    if any(p and not os.path.isdir(p) and os.path.exists(p) for p in sys.path):
        from importlib import metadata

        return [(ep.name, ep.value) for ep in metadata.entry_points(group=group)]
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for entry in sys.path:
        try:
            children = os.listdir(entry or ".")
        except OSError:
            continue
        for child in children:
            stem, ext = os.path.splitext(child)
            if ext.lower() not in (".dist-info", ".egg-info"):
                continue
            name = _SEPARATORS.sub("_", stem.partition("-")[0]).lower()
            if name in seen:
                continue
            seen.add(name)
            try:
                with open(os.path.join(entry or ".", child, "entry_points.txt"), encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                continue
            out.extend(_section(text, group))
    return out


def _section(text: str, group: str) -> list[tuple[str, str]]:
    """`name = value` lines of one `[group]` of an entry_points.txt (as importlib.metadata parses it)."""
    out = []
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
        elif current == group and "=" in line:
            name, _, value = line.partition("=")
            out.append((name.strip(), value.strip()))
    return out


def load_entry(value: str) -> Any:
    """Import `module:attr.attr` (an entry point's value) and return the object."""
    match = _ENTRY.match(value)
    if match is None:
        raise ConfigError(f"malformed entry point {value!r}")
    obj: Any = importlib.import_module(match.group("module"))
    for part in (match.group("attr") or "").split("."):
        if part:
            obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Name -> lazily imported object. Entries are `module:attr` strings or objects."""

    def __init__(self, group: str, entries: Mapping[str, str | T]) -> None:
        self.group = group
        self._entries = dict(entries)
        self._loaded: dict[str, T] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_entry_points(cls, group: str) -> Registry[T]:
        entries: dict[str, str | T] = {}
        for name, value in entry_points(group):
            entries.setdefault(name, value)
        return cls(group, entries)

    def override(self, entries: Mapping[str, str | T]) -> Registry[T]:
        """A copy with some entries replaced or added (for tests and embedding)."""
        return type(self)(self.group, {**self._entries, **entries})

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str) -> T:
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._entries:
            known = ", ".join(self.names()) or "none installed"
            raise ConfigError(f"unknown {self.group.split('.')[-1][:-1]} id {name!r}; known: {known}")
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = self._resolve(self._entries[name])
            return self._loaded[name]

    @staticmethod
    def _resolve(entry: str | T) -> T:
        if not isinstance(entry, str):
            return entry
        return load_entry(entry)  # type: ignore[no-any-return]


class DetectorRegistry(Registry["type[Detector[Any]]"]):
    """Detector classes by id, with the metadata the CLI, config and docs read."""

    @classmethod
    def load(cls) -> DetectorRegistry:
        reg = Registry["type[Detector[Any]]"].from_entry_points(DETECTORS)
        return cls(DETECTORS, reg._entries)

    def get(self, name: str) -> type[Detector[Any]]:
        klass = super().get(name)
        if getattr(klass, "id", None) != name:
            raise ConfigError(
                f"detector entry point {name!r} loads {klass!r}, whose id is "
                f"{getattr(klass, 'id', None)!r}; the entry point name must equal the class id"
            )
        return klass

    def describe(self, name: str) -> dict[str, Any]:
        klass = self.get(name)
        return {
            "id": klass.id,
            "version": klass.version,
            "pillar": klass.pillar,
            "categories": list(klass.categories),
            "description": klass.description,
            "config": klass.Config.model_json_schema(),
        }

    def describe_all(self) -> list[dict[str, Any]]:
        return [self.describe(n) for n in self.names()]

    def for_pillar(self, pillar: str) -> list[str]:
        return [n for n in self.names() if self.get(n).pillar == pillar]


def load_registry(group: str) -> Registry[Any]:
    return Registry[Any].from_entry_points(group)


CommandRegistrar = Callable[[Any], None]
