"""The answer cache wired into the sensor: lookups, serving with aged TTLs, storing clean upstream
answers, and counting what it serves in passive DNS.

`AnswerCache` (answercache.py) stores bytes and TTL offsets; this module adds what the sensor needs
around it. Passive DNS counts every answer served, cached or not: a hit only bumps the entry's
`served` count, and the counts are drained into the passive-DNS recorder once a second, in slices
of `DRAIN_SLICE` entries with the event loop free between them (a second's worth of distinct
answers drained at once stalled the loop for milliseconds). `ServedCounts` does that, for the
cache's hits and for repeated upstream answers alike.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from tutela.dns.answercache import AnswerCache
from tutela.dns.settings import DnsSettings

DRAIN_SLICE = 64  # served answers counted in passive DNS per loop callback (~0.1 ms: a short stall)
DRAIN_EVERY_S = 1.0


class ServedCounts:
    """Answers served since the last drain, counted in passive DNS once a second. Anything with
    `passive` (its passive-DNS keys) and `served` (an int) can be counted: the answer cache's
    entries and the sensor's memo of upstream answers. On the data path a serve costs one int
    add (plus one list append on the first serve since the last drain)."""

    def __init__(self, owner: Any = None) -> None:
        self._owner = owner  # the DnsEngine: its `passive` (a PassiveDnsRecorder or None) is set after it is built
        self.pending: list[Any] = []  # served since the last drain
        self._closing = False

    def note(self, entry: Any) -> None:
        if not entry.served:
            self.pending.append(entry)
        entry.served += 1

    def drain(self) -> None:
        """Count every served answer in passive DNS now (shutdown, tests)."""
        served, self.pending = self.pending, []
        self._drain_slice(served, 0, len(served))

    def _drain_slice(self, served: list[Any], start: int, stop: int) -> None:
        passive = self._owner.passive if self._owner is not None else None
        for entry in itertools.islice(served, start, stop):
            if passive is not None:
                passive.observe_keys(entry.passive, n=entry.served)
            entry.served = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.call_later(DRAIN_EVERY_S, self._drain_tick, None, 0)

    def close(self) -> None:
        self._closing = True
        self.drain()

    def _drain_tick(self, served: list[Any] | None, start: int) -> None:
        if served is None:
            served, self.pending = self.pending, []
        stop = min(start + DRAIN_SLICE, len(served))
        self._drain_slice(served, start, stop)
        if self._closing:
            self._drain_slice(served, stop, len(served))
            return
        loop = asyncio.get_running_loop()
        if stop < len(served):
            loop.call_soon(self._drain_tick, served, stop)
        else:
            loop.call_later(DRAIN_EVERY_S, self._drain_tick, None, 0)


class CachedAnswers:
    def __init__(self, dns: DnsSettings, owner: Any = None, counts: ServedCounts | None = None) -> None:
        self.cache = AnswerCache(
            dns.answer_cache_size, max_ttl=dns.answer_cache_max_ttl, max_negative_ttl=dns.answer_cache_max_negative_ttl
        )
        self._owner = owner  # the DnsEngine: its `passive` (a PassiveDnsRecorder or None) is set after it is built
        self.counts = counts if counts is not None else ServedCounts(owner)

    def lookup(self, key: bytes, now: float) -> Any:
        """The fresh entry for a query key (`data[2:]`), or None."""
        return self.cache.lookup(key, now)

    def serve(self, entry: Any, data: bytes, now: float) -> bytes:
        """The cached answer to the query `data` (its id, TTLs aged), counted for passive DNS."""
        body = entry.aged if entry.age == int(now - entry.stored) else self.cache.body(entry, now)
        if entry.passive:
            self.counts.note(entry)
        return data[:2] + body

    def store(self, key: bytes, response: bytes, question_end: int, now: float, records: Any, live: bool) -> Any:
        """Cache a clean upstream answer; `records` is the sensor's memo entry of its parsed answers
        ([rcode, answers, ..., passive keys]) or None; `live`: live response-side detectors must see
        every hit of it. Returns the entry (None when not cacheable)."""
        entry = self.cache.put(key, response, question_end, now)
        if entry is not None:
            entry.live = live
            entry.records = records
            if records is not None and self._owner is not None and self._owner.passive is not None:
                entry.passive = records[4]
        return entry

    # the passive-DNS counts of what it served (shared with the sensor's upstream answers)

    def drain(self) -> None:
        self.counts.drain()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.counts.start(loop)

    def close(self) -> None:
        self.counts.close()
