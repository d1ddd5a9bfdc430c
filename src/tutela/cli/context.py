"""What every CLI command receives: parsed settings (loaded once, lazily) and output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tutela.core.config import TutelaSettings, load_settings
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
            self._detectors = DetectorRegistry.load()
        return self._detectors

    @property
    def settings(self) -> TutelaSettings:
        if self._settings is None:
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
