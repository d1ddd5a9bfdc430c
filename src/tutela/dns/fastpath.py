"""The sensor's fast path: clean-allow verdicts keyed by a query's raw question bytes.

A question seen before (same bytes: name as sent, type, class) whose request-side verdict is a
fresh clean allow needs no parsing, no detector call and no subject object: the table gives back
what the forwarder needs (name, type, class) and until when the verdict holds (the verdict cache's
expiry). Only used when no request-side detector must see every query (`every_query_detectors`),
and only for plain questions (no compression pointer: the question ends at the first zero octet).
"""

from __future__ import annotations

import itertools
from typing import Any

from tutela.dns import wire

# raw question bytes -> (verdict valid until (monotonic), name, qtype, qclass)
FastEntry = tuple[float, str, int, int]


def drop_oldest(table: dict[Any, Any]) -> None:
    """Drop the oldest sixty-fourth of a full insertion-ordered table: a bounded, short pause."""
    for old in list(itertools.islice(table, max(1, len(table) // 64))):
        del table[old]


class FastPath:
    __slots__ = ("enabled", "max_size", "table")

    def __init__(self, max_size: int, *, enabled: bool = True) -> None:
        self.table: dict[bytes, FastEntry] = {}
        self.max_size = max(1, max_size)
        self.enabled = enabled

    def __len__(self) -> int:
        return len(self.table)

    def lookup(self, data: bytes, now: float) -> tuple[FastEntry, int] | None:
        """(entry, end of the question) for a plain standard query whose verdict is a fresh clean
        allow, else None (the slow path parses and judges it)."""
        zero = data.find(0, 12)
        if zero <= 0 or data[2] & 0xF8:  # no name end, or QR/opcode set
            return None
        entry = self.table.get(data[12 : zero + 5])
        if entry is None or entry[0] <= now or data[4:6] != b"\x00\x01" or len(data) > wire.MAX_MESSAGE:
            return None
        return entry, zero + 5

    def remember(self, data: bytes, q: wire.Question, valid_until: float) -> float:
        """Keep a clean allow for the query `data` (parsed as `q`) until `valid_until`; returns
        `valid_until` when kept, else 0.0 (off, or a compressed question only the slow path reads)."""
        if not self.enabled or q.end != data.find(0, 12) + 5:
            return 0.0
        table = self.table
        if len(table) >= self.max_size:
            drop_oldest(table)
        table[data[12 : q.end]] = (valid_until, q.name, q.qtype, q.qclass)
        return valid_until
