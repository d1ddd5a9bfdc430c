"""The batched, asynchronous event writer every pillar uses on its data path.

`append()` costs a small object and a list append under a lock: it never does I/O and never blocks
on the store, and an event's findings are serialised to JSON by the background thread, not by the
caller. A background thread writes a spool segment every `flush_interval` (<= 1 s, so a crash
loses at most that) and now and then ingests the spool into DuckDB if nobody else holds the store.
Several processes may each run a writer: segments never collide, and ingestion is serialised by
the store lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from tutela.core.findings import Verdict
from tutela.core.store import spool
from tutela.core.store.background import BackgroundFlusher
from tutela.core.store.store import EventStore

log = logging.getLogger(__name__)

_EMPTY = "[]"
_MEMO_SIZE = 4096


class _VerdictJson:
    """Serialised findings per verdict object. Verdicts are immutable and inline pillars reuse
    cached ones, so a repeated block costs a dict lookup instead of a JSON dump."""

    def __init__(self) -> None:
        self._memo: dict[int, tuple[Verdict, str, int | None, str | None]] = {}

    def __call__(self, verdict: Verdict) -> tuple[str, int | None, str | None]:
        hit = self._memo.get(id(verdict))
        if hit is not None and hit[0] is verdict:
            return hit[1], hit[2], hit[3]
        findings = verdict.findings
        payload: list[dict[str, Any]] = [f.to_dict() for f in findings]
        if verdict.failures:
            payload.append({"failures": [f.to_dict() for f in verdict.failures]})
        severity = int(max(f.severity for f in findings)) if findings else None
        category = findings[0].category if findings else "detector_failure"
        out = (orjson.dumps(payload).decode(), severity, category)
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.clear()
        self._memo[id(verdict)] = (verdict, *out)
        return out


_verdict_json = _VerdictJson()


def event_row(
    pillar: str,
    verdict: Verdict,
    *,
    source: str | None = None,
    subject: str | None = None,
    tenant: str | None = None,
    attrs: Mapping[str, Any] | None = None,
    ts_us: int | None = None,
) -> tuple[Any, ...]:
    """One event as a spool row. Subjects must already be redacted by the pillar."""
    if verdict.findings or verdict.failures:
        findings_json, severity, category = _verdict_json(verdict)
    else:
        findings_json, severity, category = _EMPTY, None, None
    return (
        ts_us if ts_us is not None else time.time_ns() // 1000,
        pillar,
        source,
        subject,
        verdict.action.value,
        severity,
        category,
        tenant,
        findings_json,
        orjson.dumps(attrs).decode() if attrs else None,
    )


class _Pending:
    """An event with findings, buffered as given: flush() (the writer's thread) turns it into a row, so the
    caller's data path does not serialise findings, which may compute their message and evidence only when
    read (a DNS model's explanation: dns/deferred.py). Verdicts and findings are immutable; attrs is copied."""

    __slots__ = ("attrs", "pillar", "source", "subject", "tenant", "ts_us", "verdict")

    def __init__(self, pillar: str, verdict: Verdict, source: str | None, subject: str | None,
                 tenant: str | None, attrs: Mapping[str, Any] | None) -> None:  # fmt: skip
        self.ts_us = time.time_ns() // 1000
        self.pillar, self.verdict, self.source, self.subject, self.tenant = pillar, verdict, source, subject, tenant
        self.attrs = dict(attrs) if attrs else None

    def row(self) -> tuple[Any, ...]:
        return event_row(self.pillar, self.verdict, source=self.source, subject=self.subject, tenant=self.tenant,
                         attrs=self.attrs, ts_us=self.ts_us)  # fmt: skip


class EventWriter(BackgroundFlusher):
    """Collects events in memory and spools them in the background. Use as a context manager."""

    thread_name = "tutela-event-writer"

    def __init__(
        self,
        home: Path,
        store_path: Path | None = None,
        *,
        flush_interval: float = 0.5,
        ingest_interval: float | None = 5.0,
        max_buffer: int = 1_000_000,
        segment_format: str = "arrow",
    ) -> None:
        super().__init__(flush_interval)
        self.home = Path(home)
        self.store_path = store_path or self.home / "events.duckdb"
        self.ingest_interval = ingest_interval
        self.max_buffer = max_buffer
        self.segment_format = segment_format  # "jsonl" for short-lived CLI writers: no pyarrow import
        self.dropped = 0  # events refused because the buffer was full; exported as a metric
        self.written = 0
        self._rows: list[tuple[Any, ...] | _Pending] = []
        self._lock = threading.Lock()
        self._last_ingest = time.monotonic()

    def start(self) -> None:
        if self.segment_format == "arrow":
            spool.load_arrow()  # now, not at the first flush: a crash then loses at most one interval
        super().start()

    def append_row(self, row: tuple[Any, ...] | _Pending) -> None:
        with self._lock:
            if len(self._rows) >= self.max_buffer:
                self.dropped += 1
                return
            self._rows.append(row)

    def append(
        self,
        pillar: str,
        verdict: Verdict,
        *,
        source: str | None = None,
        subject: str | None = None,
        tenant: str | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        if verdict.findings or verdict.failures:  # serialised by flush(), off the caller's path
            self.append_row(_Pending(pillar, verdict, source, subject, tenant, attrs))
        else:
            self.append_row(event_row(pillar, verdict, source=source, subject=subject, tenant=tenant, attrs=attrs))

    def flush(self) -> None:
        """Write what is buffered to a spool segment now."""
        with self._lock:
            buffered, self._rows = self._rows, []
        if not buffered:
            return
        made = [r if isinstance(r, tuple) else self._row(r) for r in buffered]
        rows = [r for r in made if r is not None]
        try:
            spool.write_segment(self.home, rows, fmt=self.segment_format)
        except Exception:
            with self._lock:  # keep them for the next try rather than lose them
                self._rows[:0] = rows
            raise
        self.written += len(rows)

    def _row(self, pending: _Pending) -> tuple[Any, ...] | None:
        try:
            return pending.row()
        except Exception as exc:  # a finding that cannot be serialised: drop this event, not the batch
            log.error("event dropped: its findings could not be serialised: %s", type(exc).__name__)
            self.dropped += 1
            return None

    def close(self, *, ingest: bool = True) -> None:
        super().close()
        if ingest:
            self._ingest(blocking=True)

    def _ingest(self, *, blocking: bool) -> None:
        try:
            EventStore(self.store_path, home=self.home).ingest(blocking=blocking)
        except Exception as exc:  # the spool keeps the events; the next ingest retries
            log.warning("event ingest deferred: %s", exc)
        self._last_ingest = time.monotonic()

    def tick(self) -> None:
        try:
            self.flush()
        except Exception as exc:  # disk full, permissions: flush() kept the rows, retry next tick
            log.error("event spool write failed: %s", exc)
            return
        due = self.ingest_interval is not None and time.monotonic() - self._last_ingest >= self.ingest_interval
        if due:
            self._ingest(blocking=False)
