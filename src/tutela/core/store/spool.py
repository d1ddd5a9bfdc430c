"""Spool segments: what writers put on disk between a verdict and the DuckDB store.

Writers never open DuckDB on the data path (opening it costs ~35 ms here, and only one process
may hold it). They write Arrow IPC segments, atomically (temporary name, then rename), into
`<home>/spool/`; whoever holds the store lock ingests them. A process crash loses only what was
not yet written, at most one flush interval.

Short-lived writers (a CLI command that records a few events) write JSON-lines segments instead:
same columns, no pyarrow import (~0.2 s of start-up), read back into Arrow at ingest.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import pyarrow as pa

COLUMNS = ("ts", "pillar", "source", "subject", "action", "severity", "category", "tenant", "findings", "attrs")


def load_arrow() -> None:
    """Import pyarrow ahead of the first flush (long-lived writers call this when they start)."""
    import pyarrow.ipc  # noqa: F401


def _schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("ts", pa.int64()),  # microseconds since the epoch, UTC
            ("pillar", pa.string()),
            ("source", pa.string()),
            ("subject", pa.string()),
            ("action", pa.string()),
            ("severity", pa.int8()),
            ("category", pa.string()),
            ("tenant", pa.string()),
            ("findings", pa.string()),  # JSON
            ("attrs", pa.string()),  # JSON
        ]
    )


SUFFIX = ".arrow"
JSON_SUFFIX = ".jsonl"
_seq = itertools.count()


def spool_dir(home: Path) -> Path:
    return home / "spool"


def to_table(rows: Sequence[Sequence[Any]]) -> pa.Table:
    import pyarrow as pa

    schema = _schema()
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in COLUMNS]
    return pa.Table.from_arrays(
        [pa.array(col, type=field.type) for col, field in zip(columns, schema, strict=True)],
        schema=schema,
    )


def write_segment(home: Path, rows: Sequence[tuple[Any, ...]], *, fmt: str = "arrow") -> Path:
    """Write rows atomically as one segment: Arrow IPC (fmt="arrow") or JSON lines (fmt="jsonl")."""
    directory = spool_dir(home)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{os.uname().nodename}-{os.getpid()}-{next(_seq):08d}-{os.urandom(3).hex()}"
    tmp = directory / f".{name}.tmp"
    if fmt == "jsonl":
        final = directory / f"{name}{JSON_SUFFIX}"
        tmp.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    else:
        import pyarrow as pa
        import pyarrow.ipc as ipc

        final = directory / f"{name}{SUFFIX}"
        table = to_table(rows)
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    os.replace(tmp, final)
    return final


def pending_segments(home: Path) -> list[Path]:
    directory = spool_dir(home)
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if p.name.endswith((SUFFIX, JSON_SUFFIX)) and not p.name.startswith(".")
    )


def read_segment(path: Path) -> pa.Table:
    if path.name.endswith(JSON_SUFFIX):
        return to_table([orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()])
    import pyarrow as pa
    import pyarrow.ipc as ipc

    with pa.memory_map(str(path), "r") as source:
        return ipc.open_file(source).read_all()
