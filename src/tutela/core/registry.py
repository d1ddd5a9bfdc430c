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

import threading
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
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
        for ep in metadata.entry_points(group=group):
            entries.setdefault(ep.name, ep.value)
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
        obj: Any = metadata.EntryPoint(name="", value=entry, group="").load()
        return obj  # type: ignore[no-any-return]


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
