"""The sensor's answer cache: upstream answers kept by the exact query bytes, TTL-respecting, bounded.

Key: the client's query without its id (`data[2:]`): flags (RD, CD, AD), counts, the question in its
exact case and the whole additional section (EDNS UDP size, DO bit, options such as cookies or
client subnet). Two queries with equal keys get byte-identical answers from the upstream apart from
TTLs, so a hit returns the stored answer with the client's id and every TTL decremented by the
entry's age (the decremented copy is rebuilt at most once per second of age). A key with a client
cookie is per client, so cookie-bearing queries (dig's default) rarely hit: correct, not fast.

What is cached: NOERROR answers with records (for at most the smallest TTL of the answer, authority
and additional sections, OPT excluded, capped at `max_ttl`), and negative answers (NXDOMAIN, NODATA)
that carry an SOA, for min(SOA TTL, SOA MINIMUM) capped at `max_negative_ttl` (RFC 2308). Never:
truncated answers, other rcodes, TTL 0, anything malformed. The sensor only inserts answers whose
response-side verdict was a clean allow, and it judges request and live response-side detectors
again on every hit (see server.py), so caching never skips a verdict.

Bounded by `max_size` entries (about 0.4 KiB each for a typical answer): when full, the oldest
sixty-fourth are dropped in one go (insertion order), so an eviction costs a fraction of a
millisecond, never a full pass.
"""

from __future__ import annotations

import itertools
import struct
from typing import Any

_TTL = struct.Struct("!I")
_RR_FIXED = struct.Struct("!HHIH")
_OPT, _SOA = 41, 6
_MAX_RECORDS = 256


class _Entry:
    __slots__ = (
        "age",
        "aged",
        "body",
        "expires",
        "live",
        "offsets",
        "passive",
        "rcode",
        "records",
        "served",
        "stored",
        "ttls",
        "until",
    )

    def __init__(self, body: bytes, stored: float, expires: float, offsets: tuple[int, ...], ttls: tuple[int, ...]):
        self.body = body  # the answer without its 2-byte id
        self.stored = stored
        self.expires = expires
        self.offsets = offsets  # of each TTL field in body
        self.ttls = ttls
        self.age = 0  # whole seconds of age `aged` was built for
        self.aged = body
        self.rcode = body[1] & 0x0F
        self.records: Any = None  # the parsed answers, for live response-side detectors on hits
        self.passive: Any = ()  # passive-DNS keys of the answer, counted on every hit
        self.served = 0  # hits since the sensor last counted them in passive DNS
        self.live = False  # a live response-side detector must see every hit (set by the sensor)
        self.until = 0.0  # the sensor's hot path may serve it until then (monotonic; set by the sensor)


def _skip_name(data: bytes, pos: int) -> int:
    size = len(data)
    for _ in range(128):
        if pos >= size:
            raise ValueError("name past the end")
        n = data[pos]
        if n == 0:
            return pos + 1
        if n & 0xC0 == 0xC0:
            return pos + 2
        if n & 0xC0:
            raise ValueError("bad label")
        pos += n + 1
    raise ValueError("name too long")


def ttl_layout(response: bytes, question_end: int) -> tuple[tuple[int, ...], tuple[int, ...], int] | None:
    """(TTL offsets, TTLs, cache lifetime in seconds) of a response whose question ends at
    `question_end`, or None when it must not be cached. Offsets are into the whole message."""
    if len(response) < 12 or response[2] & 0x02:  # truncated
        return None
    rcode = response[3] & 0x0F
    if rcode not in (0, 3):
        return None
    an, ns, ar = struct.unpack_from("!HHH", response, 6)
    if an + ns + ar > _MAX_RECORDS:
        return None
    offsets: list[int] = []
    ttls: list[int] = []
    soa_minimum = None
    pos = question_end
    try:
        for i in range(an + ns + ar):
            pos = _skip_name(response, pos)
            rtype, _rclass, ttl, rdlen = _RR_FIXED.unpack_from(response, pos)
            if pos + 10 + rdlen > len(response):
                return None
            if rtype != _OPT:
                offsets.append(pos + 4)
                ttls.append(ttl)
                if rtype == _SOA and an <= i < an + ns and rdlen >= 20:
                    soa_minimum = _TTL.unpack_from(response, pos + 10 + rdlen - 4)[0]
            pos += 10 + rdlen
    except (ValueError, struct.error):
        return None
    if pos != len(response):
        return None  # trailing garbage: leave it to the client
    if an and rcode == 0:
        lifetime = min(ttls)
    elif soa_minimum is not None:  # NXDOMAIN or NODATA with an SOA (RFC 2308)
        lifetime = -min(min(ttls), soa_minimum)  # negative: capped by max_negative_ttl
    else:
        return None
    return tuple(offsets), tuple(ttls), lifetime


class AnswerCache:
    __slots__ = ("_entries", "evictions", "hits", "inserts", "max_negative_ttl", "max_size", "max_ttl", "misses")

    def __init__(self, max_size: int = 100_000, *, max_ttl: int = 86_400, max_negative_ttl: int = 3_600) -> None:
        self._entries: dict[bytes, _Entry] = {}
        self.max_size = max_size
        self.max_ttl = max_ttl
        self.max_negative_ttl = max_negative_ttl
        self.hits = self.misses = self.inserts = self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: bytes, now: float) -> _Entry | None:
        """The fresh entry for a query key (`data[2:]`), or None."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        if entry.expires <= now:
            del self._entries[key]
            self.misses += 1
            return None
        self.hits += 1
        return entry

    @staticmethod
    def body(entry: _Entry, now: float) -> bytes:
        """The entry's answer (without id) with TTLs decremented by its age in whole seconds."""
        age = int(now - entry.stored)
        if age != entry.age:
            buf = bytearray(entry.body)
            for off, ttl in zip(entry.offsets, entry.ttls, strict=True):
                _TTL.pack_into(buf, off - 2, ttl - age if ttl > age else 0)
            entry.aged = bytes(buf)
            entry.age = age
        return entry.aged

    def put(self, key: bytes, response: bytes, question_end: int, now: float) -> _Entry | None:
        if not self.max_size:
            return None
        layout = ttl_layout(response, question_end)
        if layout is None:
            return None
        offsets, ttls, lifetime = layout
        lifetime = min(-lifetime, self.max_negative_ttl) if lifetime < 0 else min(lifetime, self.max_ttl)
        if lifetime <= 0:
            return None
        entries = self._entries
        if len(entries) >= self.max_size and key not in entries:
            drop = list(itertools.islice(entries, max(1, self.max_size // 64)))
            for old in drop:
                del entries[old]
            self.evictions += len(drop)
        entry = _Entry(response[2:], now, now + lifetime, offsets, ttls)
        entries[key] = entry
        self.inserts += 1
        return entry

    def clear(self) -> None:
        self._entries.clear()
