"""Expected answer sets of protected names: pinned in config, or learned on first use, persisted.

Per name the baseline holds the address prefixes (/24 for IPv4, /48 for IPv6 unless pinned
wider), the origin ASNs (when an IP-to-ASN table is configured), the registrable domains of CNAME
targets, the NS and MX host sets (and their registrable domains), and the TTL range. Each aspect
learns from its first `learn_answers` observations; after that an answer outside the set is a
change, reported with what was expected before and what came now, and never absorbed (so the
second hijacked answer is flagged like the first).

The state is a bounded in-memory dict (least recently seen names are evicted first, pinned names
never), saved as JSON under TUTELA_HOME atomically.
"""

from __future__ import annotations

import bisect
import ipaddress
import json
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

ASPECTS = ("addr", "chain", "ns", "mx")
MAX_PREFIXES = 256
MAX_DOMAINS = 64
MAX_RECENT = 16
MAX_STATE_BYTES = 256 << 20


@lru_cache(maxsize=65536)
def prefix_of(address: str, v4: int = 24, v6: int = 48) -> str:
    """ "198.51.100.7" -> "198.51.100.0/24". Hot inline, hence sockets' parsers and a cache."""
    try:
        if ":" in address:
            n = int.from_bytes(socket.inet_pton(socket.AF_INET6, address), "big")
            n = n >> (128 - v6) << (128 - v6)
            return f"{socket.inet_ntop(socket.AF_INET6, n.to_bytes(16, 'big'))}/{v6}"
        n = int.from_bytes(socket.inet_pton(socket.AF_INET, address), "big")
        n = n >> (32 - v4) << (32 - v4)
        return f"{socket.inet_ntop(socket.AF_INET, n.to_bytes(4, 'big'))}/{v4}"
    except OSError:
        raise ValueError(f"not an IP address: {address!r}") from None


@dataclass
class Expected:
    """One name's expected answers. Sets are kept sorted lists on disk."""

    prefixes: set[str] = field(default_factory=set)
    asns: set[int] = field(default_factory=set)
    cname_domains: set[str] = field(default_factory=set)
    ns_hosts: set[str] = field(default_factory=set)
    ns_domains: set[str] = field(default_factory=set)
    mx_hosts: set[str] = field(default_factory=set)
    mx_domains: set[str] = field(default_factory=set)
    ttl_min: int | None = None
    ttl_max: int | None = None
    recent: list[str] = field(default_factory=list)  # the last addresses seen, for evidence
    seen: dict[str, int] = field(default_factory=dict)  # aspect -> observations learned
    pinned: bool = False
    first_seen: float = 0.0
    last_seen: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "prefixes": sorted(self.prefixes),
            "asns": sorted(self.asns),
            "cname_domains": sorted(self.cname_domains),
            "ns_hosts": sorted(self.ns_hosts),
            "ns_domains": sorted(self.ns_domains),
            "mx_hosts": sorted(self.mx_hosts),
            "mx_domains": sorted(self.mx_domains),
            "ttl_min": self.ttl_min,
            "ttl_max": self.ttl_max,
            "recent": self.recent,
            "seen": self.seen,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Expected:
        return cls(
            prefixes=set(list(d.get("prefixes", ()))[:MAX_PREFIXES]),
            asns={int(a) for a in list(d.get("asns", ()))[:MAX_DOMAINS]},
            cname_domains=set(list(d.get("cname_domains", ()))[:MAX_DOMAINS]),
            ns_hosts=set(list(d.get("ns_hosts", ()))[:MAX_DOMAINS]),
            ns_domains=set(list(d.get("ns_domains", ()))[:MAX_DOMAINS]),
            mx_hosts=set(list(d.get("mx_hosts", ()))[:MAX_DOMAINS]),
            mx_domains=set(list(d.get("mx_domains", ()))[:MAX_DOMAINS]),
            ttl_min=d.get("ttl_min"),
            ttl_max=d.get("ttl_max"),
            recent=[str(a) for a in list(d.get("recent", ()))[:MAX_RECENT]],
            seen={str(k): int(v) for k, v in dict(d.get("seen", {})).items() if k in ASPECTS},
            first_seen=float(d.get("first_seen", 0.0)),
            last_seen=float(d.get("last_seen", 0.0)),
        )


class AsnTable:
    """Longest-prefix-free range lookup: address -> origin ASN, from (prefix, asn) pairs.

    tutela ships no IP-to-ASN data (no public snapshot is available offline here): the pairs come
    from config (`asn_prefixes`) or from a file the operator supplies (`asn_table`, lines of
    `PREFIX ASN` or the iptoasn.com TSV `start end asn ...`).
    """

    def __init__(self, ranges: Iterable[tuple[int, int, int, int]] = ()) -> None:
        # (version, start, end, asn), sorted by (version, start); narrower ranges win on overlap
        self._ranges = sorted(ranges, key=lambda r: (r[0], r[1], -r[2]))
        self._starts = [(r[0], r[1]) for r in self._ranges]

    @classmethod
    def from_prefixes(cls, mapping: Mapping[int, Sequence[str]]) -> AsnTable:
        ranges = []
        for asn, prefixes in mapping.items():
            for p in prefixes:
                net = ipaddress.ip_network(p, strict=False)
                ranges.append((net.version, int(net.network_address), int(net.broadcast_address), int(asn)))
        return cls(ranges)

    @classmethod
    def from_file(cls, path: Path, extra: Mapping[int, Sequence[str]] | None = None) -> AsnTable:
        ranges = list(cls.from_prefixes(extra or {})._ranges)
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split("#", 1)[0].split()
                try:
                    if len(parts) >= 3 and not parts[0].count("/"):
                        a, b = ipaddress.ip_address(parts[0]), ipaddress.ip_address(parts[1])
                        if int(parts[2]) > 0:
                            ranges.append((a.version, int(a), int(b), int(parts[2])))
                    elif len(parts) >= 2:
                        net = ipaddress.ip_network(parts[0], strict=False)
                        asn = int(parts[1].upper().removeprefix("AS"))
                        ranges.append((net.version, int(net.network_address), int(net.broadcast_address), asn))
                except ValueError:
                    continue
        return cls(ranges)

    def __len__(self) -> int:
        return len(self._ranges)

    def lookup(self, address: str) -> int | None:
        if not self._ranges:
            return None
        try:
            addr = ipaddress.ip_address(address)
        except ValueError:
            return None
        key = (addr.version, int(addr))
        i = bisect.bisect_right(self._starts, key) - 1
        best: int | None = None
        # walk back over ranges that start before the address; the first containing one is the
        # narrowest among those that start latest (good enough for non-pathological tables)
        for j in range(i, max(-1, i - 64), -1):
            version, start, end, asn = self._ranges[j]
            if version != addr.version:
                break
            if start <= int(addr) <= end:
                best = asn
                break
        return best


class BaselineStore:
    """name -> Expected, bounded, with atomic JSON persistence. Thread-safe."""

    def __init__(self, path: Path | None, *, max_names: int = 50_000) -> None:
        self.path = path
        self.max_names = max_names
        self._names: OrderedDict[str, Expected] = OrderedDict()
        self._lock = threading.Lock()
        self.dirty = False
        self._loaded = False

    def load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.path is None:
            return
        try:
            if self.path.stat().st_size > MAX_STATE_BYTES:
                return
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return  # no state yet, or a damaged file: start learning again rather than fail
        names = data.get("names") if isinstance(data, dict) else None
        if not isinstance(names, dict):
            return
        for name, entry in list(names.items())[-self.max_names :]:
            try:
                self._names[name] = Expected.from_json(entry)
            except (TypeError, ValueError, AttributeError):
                continue

    def get(self, name: str, create: Callable[[], Expected] | None = None) -> Expected | None:
        with self._lock:
            entry = self._names.get(name)
            if entry is None and create is not None:
                entry = create()
                self._names[name] = entry
                self._evict()
            if entry is not None:
                self._names.move_to_end(name)
            return entry

    def _evict(self) -> None:
        while len(self._names) > self.max_names:
            for victim, entry in self._names.items():
                if not entry.pinned:
                    del self._names[victim]
                    break
            else:
                return

    def __len__(self) -> int:
        return len(self._names)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {n: e.to_json() for n, e in self._names.items() if not e.pinned or e.seen}

    def save(self, snapshot: dict[str, Any] | None = None) -> None:
        """Write the state; pass a `snapshot()` taken under the lock that guards the entries."""
        if self.path is None:
            return
        data = {"version": 1, "saved_at": time.time(), "names": self.snapshot() if snapshot is None else snapshot}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.path)
        self.dirty = False
