"""What every CLI command receives: parsed settings (loaded once, lazily) and output helpers.

Importing this module is cheap on purpose (no pydantic, YAML or store): `tutela <group> ...` imports
only that group's module, and a command pays for settings, detectors and the store when it uses them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from tutela.core.config import TutelaSettings
    from tutela.core.registry import DetectorRegistry

T = TypeVar("T")

# Exit codes, ClamAV-style: 0 clean, 1 findings at or above --fail-on, 2 error.
EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


@dataclass
class CliContext:
    config: Path | None = None
    debug: bool = False
    _settings: TutelaSettings | None = field(default=None, repr=False)
    _detectors: DetectorRegistry | None = field(default=None, repr=False)

    @property
    def detectors(self) -> DetectorRegistry:
        if self._detectors is None:
            from tutela.core.registry import DetectorRegistry

            self._detectors = DetectorRegistry.load()
        return self._detectors

    @property
    def configured(self) -> bool:
        """Whether any setting differs from the defaults: a config file, or a TUTELA_<KEY> variable.

        Commands on a start-up budget read `settings` only when this is true (YAML and pydantic cost
        ~0.1-0.2 s); otherwise `home` and the defaults are all there is.
        """
        import os

        from tutela.core.paths import config_path, env_overrides

        return config_path(self.config, os.environ) is not None or bool(env_overrides(os.environ))

    @property
    def home(self) -> Path:
        if self._settings is not None or self.configured:
            return self.settings.home
        from tutela.core.paths import default_home

        return default_home()

    @property
    def settings(self) -> TutelaSettings:
        if self._settings is None:
            from tutela.core.config import load_settings

            self._settings = load_settings(self.config, detectors=self.detectors)
        return self._settings


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def emit_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console().print(table)


def progress(items: Iterable[T], *, total: int | None, description: str, enabled: bool = True) -> Iterator[T]:
    """A progress bar on stderr for long work; silent when stderr is not a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield from items
        return
    from rich.progress import track

    yield from track(items, total=total, description=description, transient=True)
