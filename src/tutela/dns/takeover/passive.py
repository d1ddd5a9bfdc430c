"""Passive DNS: (first seen, last seen, count) per (name, type, answer), in the event store.

Why a table of aggregates, batch-upserted, rather than rows in `events`: the sensor stores an
event per verdict that matters (allowed answers are not logged by default), and history needs
every answer; a popular name answers thousands of times a second, and one upsert per distinct
(name, type, answer) per flush interval costs nothing like a row per answer. So:

- `observe(response)` (data path) updates an in-memory dict under a lock: no I/O, no DuckDB;
  bounded (`max_pending` distinct keys per interval; more are counted in `dropped`).
- a background thread, every `flush_interval` seconds, swaps the dict and upserts it into
  `passive_dns` (migration 2) in one statement through `EventStore.connect()`, which holds the
  store lock for the few milliseconds it takes. If the store is busy the batch is merged back
  and retried at the next tick. `close()` flushes what is left.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tutela.core.store.background import BackgroundFlusher
from tutela.dns.subjects import DnsResponse

TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 39: "DNAME"}
NAME_TYPES = ("NS", "CNAME", "PTR", "DNAME")
MAX_ANSWER_CHARS = 512

UPSERT_SQL = """
INSERT INTO passive_dns
SELECT name, rtype, answer, make_timestamp(first_us), make_timestamp(last_us), n FROM batch
ON CONFLICT (name, rtype, answer) DO UPDATE SET
    first_seen = least(passive_dns.first_seen, excluded.first_seen),
    last_seen = greatest(passive_dns.last_seen, excluded.last_seen),
    count = passive_dns.count + excluded.count
"""


def _norm_name(name: str) -> str:
    return name.rstrip(".").lower()


class PassiveDnsRecorder(BackgroundFlusher):
    """Use as a context manager, or `start()` ... `close()`. Thread-safe `observe()`."""

    thread_name = "tutela-passive-dns"

    def __init__(
        self,
        home: Path,
        store_path: Path | None = None,
        *,
        flush_interval: float = 5.0,
        max_pending: int = 200_000,
        lock_timeout: float = 2.0,
        clock: Any = time.time,
        spool: bool = False,
    ) -> None:
        self.home = Path(home)
        self.store_path = store_path or self.home / "events.duckdb"
        super().__init__(flush_interval)
        self.max_pending = max_pending
        self.lock_timeout = lock_timeout
        self.clock = clock
        self.spool = spool  # write batches as spool segments for a store keeper process, never open DuckDB
        self.dropped = 0
        self.flushed = 0  # distinct keys upserted so far
        self._pending: dict[tuple[str, str, str], list[int]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def keys_for(rcode: int, answers: Sequence[Any]) -> tuple[tuple[str, str, str], ...]:
        """The (name, type, answer) keys an answer counts under: the sensor computes them once per
        distinct upstream answer and then calls `observe_keys` on repeats."""
        if rcode != 0 or not answers:
            return ()
        keys = []
        for a in answers:
            rtype = TYPES.get(a.rtype, str(a.rtype))
            data = a.data[:MAX_ANSWER_CHARS]
            if rtype in NAME_TYPES:
                data = _norm_name(data)
            elif rtype in ("MX", "SRV"):
                head, _, host = data.rpartition(" ")
                data = f"{head} {_norm_name(host)}".strip()
            keys.append((_norm_name(a.name), rtype, data))
        return tuple(keys)

    def observe(self, response: DnsResponse, ts: float | None = None) -> None:
        self.observe_keys(self.keys_for(response.rcode, response.answers), ts)

    def observe_keys(self, keys: Sequence[tuple[str, str, str]], ts: float | None = None, n: int = 1) -> None:
        """Count `n` answers with these keys, seen at `ts` (default now)."""
        if not keys:
            return
        now = int((ts if ts is not None else self.clock()) * 1_000_000)
        with self._lock:
            pending = self._pending
            for key in keys:
                entry = pending.get(key)
                if entry is None:
                    if len(pending) >= self.max_pending:
                        self.dropped += 1
                        continue
                    pending[key] = [now, now, n]
                else:
                    if now < entry[0]:
                        entry[0] = now
                    if now > entry[1]:
                        entry[1] = now
                    entry[2] += n

    def flush(self) -> int:
        """Upsert what was observed since the last flush; return the number of distinct keys."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        try:
            self._upsert(batch)
        except Exception:
            with self._lock:  # keep the counts for the next try
                for key, (first, last, n) in batch.items():
                    entry = self._pending.get(key)
                    if entry is None:
                        if len(self._pending) < self.max_pending:
                            self._pending[key] = [first, last, n]
                        else:
                            self.dropped += n
                    else:
                        entry[0], entry[1], entry[2] = min(entry[0], first), max(entry[1], last), entry[2] + n
            raise
        self.flushed += len(batch)
        return len(batch)

    def _upsert(self, batch: dict[tuple[str, str, str], list[int]]) -> None:
        table = _batch_table(batch)
        if self.spool:
            write_passive_segment(self.home, table)
        else:
            _upsert_table(self.store_path, self.home, table, self.lock_timeout)


_CHUNK = 2048  # rows converted per GIL turn: a flush never holds the GIL for long in one C call


def _batch_table(batch: dict[tuple[str, str, str], list[int]]) -> Any:
    """The batch as an Arrow table, built in chunks of _CHUNK rows with the GIL released between
    them (`time.sleep(0)`): converting a whole batch of tens of thousands of keys is one C call
    that holds the GIL for milliseconds, during which the sensor's event loop cannot run."""
    import pyarrow as pa

    schema = pa.schema(
        [("name", pa.string()), ("rtype", pa.string()), ("answer", pa.string()),
         ("first_us", pa.int64()), ("last_us", pa.int64()), ("n", pa.int64())]
    )  # fmt: skip
    items = list(batch.items())
    batches = []
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        batches.append(
            pa.record_batch(
                [
                    pa.array([k[0] for k, _ in chunk], pa.string()),
                    pa.array([k[1] for k, _ in chunk], pa.string()),
                    pa.array([k[2] for k, _ in chunk], pa.string()),
                    pa.array([v[0] for _, v in chunk], pa.int64()),
                    pa.array([v[1] for _, v in chunk], pa.int64()),
                    pa.array([v[2] for _, v in chunk], pa.int64()),
                ],
                schema=schema,
            )
        )
        time.sleep(0)
    return pa.Table.from_batches(batches, schema=schema)


def _upsert_table(store_path: Path, home: Path, table: Any, lock_timeout: float) -> None:
    from tutela.core.store import EventStore

    store = EventStore(store_path, home=home, lock_timeout=lock_timeout)
    with store.connect() as db:
        cur = db.cursor()  # its own result state: the store may have left one open
        try:
            cur.register("batch", table)
            cur.execute(UPSERT_SQL)
        finally:
            cur.close()


PASSIVE_SPOOL = "spool-passive"
_seq = itertools.count()


def write_passive_segment(home: Path, table: Any) -> Path:
    """One batch as an Arrow IPC file in <home>/spool-passive/ (temporary name, then rename)."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    directory = Path(home) / PASSIVE_SPOOL
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{os.getpid()}-{time.time_ns()}-{next(_seq):08d}"
    tmp, final = directory / f".{name}.tmp", directory / f"{name}.arrow"
    with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(tmp, final)
    return final


def ingest_passive_spool(home: Path, store_path: Path, *, lock_timeout: float = 2.0) -> int:
    """Upsert every spooled passive-DNS batch (oldest first) and delete it; the number of keys upserted.
    An unreadable segment is renamed .bad and skipped."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    directory = Path(home) / PASSIVE_SPOOL
    if not directory.is_dir():
        return 0
    total = 0
    for path in sorted(p for p in directory.iterdir() if p.suffix == ".arrow"):
        try:
            with pa.memory_map(str(path), "r") as source:
                table = ipc.open_file(source).read_all()
        except Exception:
            path.rename(path.with_suffix(".bad"))
            continue
        _upsert_table(store_path, home, table, lock_timeout)
        path.unlink(missing_ok=True)
        total += table.num_rows
    return total


@dataclass(frozen=True, slots=True)
class HistoryRow:
    name: str
    rtype: str
    answer: str
    first_seen: str
    last_seen: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.rtype,
            "answer": self.answer,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "count": self.count,
        }


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")
    return str(value)


def history(
    store_path: Path,
    home: Path,
    name: str,
    *,
    rtype: str | None = None,
    subdomains: bool = False,
    limit: int = 200,
) -> list[HistoryRow]:
    """What `name` (and with `subdomains`, names under it) resolved to, newest first."""
    from tutela.core.store import EventStore

    name = _norm_name(name)
    where = ["(name = ? OR name LIKE ?)" if subdomains else "name = ?"]
    params: list[Any] = [name, "%." + name.replace("%", r"\%").replace("_", r"\_")] if subdomains else [name]
    if subdomains:
        where[0] = "(name = ? OR name LIKE ? ESCAPE '\\')"
    if rtype:
        where.append("rtype = ?")
        params.append(rtype.upper())
    sql = (
        "SELECT name, rtype, answer, first_seen, last_seen, count FROM passive_dns WHERE "
        + " AND ".join(where)
        + " ORDER BY last_seen DESC, name, rtype, answer LIMIT ?"
    )
    params.append(max(1, int(limit)))
    _, rows = EventStore(store_path, home=home).query(sql, params)
    return [HistoryRow(r[0], r[1], r[2], _iso(r[3]), _iso(r[4]), int(r[5])) for r in rows]


def last_seen(store_path: Path, home: Path, names: Sequence[str]) -> dict[str, str]:
    """name -> when it was last seen answering (any type): the scanner's "last resolved"."""
    from tutela.core.store import EventStore

    names = sorted({_norm_name(n) for n in names})
    if not names or not store_path.exists():
        return {}
    marks = ", ".join("?" for _ in names)
    _, rows = EventStore(store_path, home=home).query(
        f"SELECT name, max(last_seen) FROM passive_dns WHERE name IN ({marks}) GROUP BY name", names
    )
    return {r[0]: _iso(r[1]) for r in rows}


def rows_for_zones(
    store_path: Path, home: Path, zones: Sequence[str], *, hops: int = 3, lock_timeout: float = 5.0
) -> list[tuple[str, str, str, int]]:
    """Passive DNS rows of the names under `zones`, and of the names their CNAMEs lead to
    (`hops` deep): what the hijack guard seeds its expected sets from."""
    from tutela.core.store import EventStore

    zones = [_norm_name(z) for z in zones if z.strip()]
    if not zones or not store_path.exists():
        return []
    store = EventStore(store_path, home=home, lock_timeout=lock_timeout)
    where = " OR ".join("(name = ? OR name LIKE ? ESCAPE '\\')" for _ in zones)
    params: list[Any] = []
    for z in zones:
        params += [z, "%." + z.replace("%", r"\%").replace("_", r"\_")]
    sql = "SELECT name, rtype, answer, count FROM passive_dns WHERE "
    _, rows = store.query(sql + where, params)
    out = [(r[0], r[1], r[2], int(r[3])) for r in rows]
    known = {r[0] for r in out}
    for _ in range(hops):
        targets = sorted({a for _, t, a, _ in out if t == "CNAME"} - known)
        if not targets:
            break
        known.update(targets)
        _, more = store.query(sql + f"name IN ({', '.join('?' for _ in targets)})", targets)
        out += [(r[0], r[1], r[2], int(r[3])) for r in more]
    return out
