"""The gateway's tamper-evident audit log: one JSON line per request, each hashing the one before.

`hash = sha256(prev_hash + canonical JSON of the record without its hash)`. Editing, inserting,
reordering or deleting a line breaks the chain from there on; a head file (`<log>.head`) holds
the last sequence number and hash so that cutting lines off the end shows too. Records hold
hashes of the (redacted) payloads, never the raw text, unless the profile sets `store_raw`.
Lines are written by a background thread in batches, every `flush_interval` (0.2 s) and at close, so
appending costs the request a queue put and the disk sees one write and one fsync per batch, not per
request (the thread used to wake, write and fsync for every record as it came).
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

GENESIS = "0" * 64
_OPTS = orjson.OPT_SORT_KEYS


def chain_hash(prev: str, record: Mapping[str, Any]) -> str:
    body = orjson.dumps({k: v for k, v in record.items() if k != "hash"}, option=_OPTS)
    return hashlib.sha256(prev.encode() + body).hexdigest()


def _last_record(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - (1 << 20)))
            lines = [ln for ln in fh.read().splitlines() if ln.strip()]
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "hash" in rec:
            return rec
    return None


class AuditLog:
    def __init__(self, path: Path, *, flush_interval: float = 0.2) -> None:
        self.path = path
        self.head = path.with_name(path.name + ".head")
        self.flush_interval = flush_interval
        self._queue: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0
        self.errors = 0
        last = _last_record(path)
        self._seq = int(last["seq"]) if last else 0
        self._prev = str(last["hash"]) if last else GENESIS

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._thread is None:
            self._closing.clear()
            self._thread = threading.Thread(target=self._run, name="tutela-gateway-audit", daemon=True)
            self._thread.start()

    def append(self, record: dict[str, Any]) -> None:
        self._queue.put(record)

    def close(self) -> None:
        """Write what is queued and stop the writer (every record appended before this is written)."""
        if self._thread is not None:
            self._closing.set()
            self._thread.join()
            self._thread = None
        self._flush()  # no writer thread (never started, or it died): write here

    def _run(self) -> None:
        while True:
            closing = self._closing.wait(self.flush_interval)
            self._flush()
            if closing:
                return

    def _flush(self) -> None:
        batch: list[dict[str, Any]] = []
        try:
            while True:
                batch.append(self._queue.get_nowait())
        except queue.Empty:
            pass
        if batch:
            try:
                self._write(batch)
            except OSError:
                self.errors += len(batch)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        lines = []
        for rec in batch:
            self._seq += 1
            rec = {"seq": self._seq, "ts": rec.pop("ts", time.time()), "prev": self._prev, **rec}
            rec["hash"] = self._prev = chain_hash(rec["prev"], rec)
            lines.append(orjson.dumps(rec, option=_OPTS))
        with self.path.open("ab") as fh:
            fh.write(b"\n".join(lines) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp = self.head.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"seq": self._seq, "hash": self._prev}))
        os.replace(tmp, self.head)
        self.written += len(batch)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records: int
    problem: str | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "problem": self.problem, "line": self.line}


def verify(path: Path) -> VerifyResult:
    """Walk the chain; report the first line that does not follow from the one before."""
    prev, seq, n = GENESIS, 0, 0
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return VerifyResult(False, 0, f"{path}: no audit log")
    with fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rec = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return VerifyResult(False, n, "not a JSON record", lineno)
            if not isinstance(rec, dict) or "hash" not in rec:
                return VerifyResult(False, n, "record without a hash", lineno)
            if rec.get("prev") != prev:
                return VerifyResult(False, n, "chain broken: prev does not match the record before", lineno)
            if rec.get("seq") != seq + 1:
                return VerifyResult(False, n, f"sequence jumps from {seq} to {rec.get('seq')}", lineno)
            if chain_hash(prev, rec) != rec["hash"]:
                return VerifyResult(False, n, "record altered: hash mismatch", lineno)
            prev, seq, n = rec["hash"], seq + 1, n + 1
    head_file = path.with_name(path.name + ".head")
    try:
        head = orjson.loads(head_file.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return VerifyResult(False, n, f"{head_file}: head file missing or unreadable")
    if head.get("seq") != seq or head.get("hash") != prev:
        return VerifyResult(False, n, f"log ends at record {seq}, but the head says {head.get('seq')}: truncated?")
    return VerifyResult(True, n)
