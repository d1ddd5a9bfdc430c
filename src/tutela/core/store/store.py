"""The embedded event store: one DuckDB file under $TUTELA_HOME, one schema for every pillar.

DuckDB lets one process hold a database file at a time, so every use takes an exclusive file
lock (`events.lock`) for as long as the connection is open, and keeps it short. Readers first
ingest the spool, so what they see is current.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tutela.core.errors import StoreError
from tutela.core.store import spool
from tutela.core.store.schema import MIGRATIONS, Migration, migrate

LOCK_NAME = "events.lock"
INSERT_SQL = """
INSERT INTO events
SELECT make_timestamp(ts), pillar, source, subject, action, severity, category, tenant,
       findings::JSON, attrs::JSON
FROM segment
"""


class EventStore:
    def __init__(
        self,
        path: Path,
        *,
        home: Path | None = None,
        migrations: Sequence[Migration] = MIGRATIONS,
        lock_timeout: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.home = Path(home) if home else self.path.parent
        self.migrations = migrations
        self.lock_timeout = lock_timeout

    @contextmanager
    def _locked(self, *, blocking: bool = True) -> Iterator[bool]:
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.home / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + (self.lock_timeout if blocking else 0)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        if not blocking:
                            yield False
                            return
                        raise StoreError(
                            f"event store {self.path} is busy (locked for over {self.lock_timeout:.0f} s)",
                            hint=f"another tutela process holds {self.home / LOCK_NAME}",
                        ) from None
                    time.sleep(0.01)
            yield True
        finally:
            os.close(fd)

    def _connect(self, *, read_only: bool = False) -> Any:
        import duckdb

        if read_only and not self.path.exists():
            read_only = False  # create it, so a first `events list` shows an empty store
        try:
            db = duckdb.connect(str(self.path), read_only=read_only, config={"threads": 1})
        except duckdb.Error as exc:
            raise StoreError(
                f"cannot open event store {self.path}: {str(exc).splitlines()[0]}",
                hint="if the file is corrupted, move it aside and tutela will create a new one",
            ) from None
        try:
            if not read_only:
                migrate(db, str(self.path), self.migrations)
            else:
                from tutela.core.store.schema import current_version

                newest = max(m.version for m in self.migrations)
                if current_version(db) > newest:
                    migrate(db, str(self.path), self.migrations)  # raises the clear error
        except Exception:
            db.close()
            raise
        return db

    @contextmanager
    def connect(self) -> Iterator[Any]:
        """A migrated connection under the store lock, with the spool ingested first."""
        with self._locked():
            db = self._connect()
            try:
                self._ingest_into(db)
                yield db
            finally:
                db.close()

    def open(self) -> int:
        """Create or migrate the store; return its schema version."""
        from tutela.core.store.schema import current_version

        with self.connect() as db:
            return current_version(db)

    def ingest(self, *, blocking: bool = True) -> int:
        """Move spooled segments into DuckDB; with blocking=False, skip if the store is busy."""
        if not spool.pending_segments(self.home):
            return 0
        with self._locked(blocking=blocking) as got:
            if not got:
                return 0
            db = self._connect()
            try:
                return self._ingest_into(db)
            finally:
                db.close()

    def _ingest_into(self, db: Any) -> int:
        total = 0
        for path in spool.pending_segments(self.home):
            seen = db.execute("SELECT 1 FROM ingested_segments WHERE name = ?", [path.name]).fetchone()
            if not seen:
                try:
                    segment = spool.read_segment(path)
                except Exception as exc:  # a torn or foreign file: keep it aside, never lose silently
                    path.rename(path.with_suffix(".bad"))
                    raise StoreError(f"spool segment {path.name} is unreadable ({exc}); kept as .bad") from None
                db.register("segment", segment)
                db.execute("BEGIN TRANSACTION")
                try:
                    db.execute(INSERT_SQL)
                    db.execute(
                        "INSERT INTO ingested_segments VALUES (?, ?, now()::TIMESTAMP)",
                        [path.name, segment.num_rows],
                    )
                    db.execute("COMMIT")
                except Exception:
                    db.execute("ROLLBACK")
                    raise
                finally:
                    db.unregister("segment")
                total += segment.num_rows
            path.unlink(missing_ok=True)
        return total

    def query(self, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self.connect() as db:
            cursor = db.execute(sql, list(params))
            columns = [d[0] for d in cursor.description]
            return columns, cursor.fetchall()

    def count(self) -> int:
        return int(self.query("SELECT count(*) FROM events")[1][0][0])

    def export(self, target: Path, *, fmt: str = "parquet", where: str = "", params: Sequence[Any] = ()) -> int:
        """Write the events (optionally filtered) to a Parquet, CSV or JSON-lines file."""
        formats = {"parquet": "(FORMAT parquet)", "csv": "(FORMAT csv, HEADER)", "jsonl": "(FORMAT json)"}
        if fmt not in formats:
            raise StoreError(f"unknown export format {fmt!r}", hint=f"use one of {', '.join(formats)}")
        clause = f"WHERE {where}" if where else ""
        with self.connect() as db:
            n = int(db.execute(f"SELECT count(*) FROM events {clause}", list(params)).fetchone()[0])
            target = Path(target)
            literal = str(target).replace("'", "''")
            db.execute(f"COPY (SELECT * FROM events {clause} ORDER BY ts) TO '{literal}' {formats[fmt]}", list(params))
            return n
