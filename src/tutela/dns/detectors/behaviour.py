"""Per-client behaviour: NXDOMAIN bursts and random-subdomain (water-torture) floods.

Both keep a bounded LRU of clients with fixed-size state each, so memory stays flat whatever
the traffic. Windows are fixed (tumbling) windows of `window_s` seconds.

- `dns.nxdomain_burst` (response side): a client that receives more than `threshold`
  NXDOMAIN answers in a window (DGA malware probing its domain list). Flags the answer that
  crosses the threshold, then at most one per `threshold` more, to keep events proportionate.
- `dns.random_subdomain` (request side): a client asking for more than `threshold` distinct
  names under one registrable domain in a window. Distinct names are counted with a 1024-bit
  linear-counting sketch per (client, domain), so a flood of a million names costs 128 bytes.
  Every query over the threshold is flagged, so the policy can block the rest of the flood.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field

from tutela.core.detector import DetectorConfig, ScanContext
from tutela.core.findings import Finding, Severity
from tutela.core.models import ModelCache
from tutela.dns.clients import ClientLRU
from tutela.dns.psl import Registrable
from tutela.dns.subjects import DnsQuery, DnsResponse

_BITS = 1024


class NxBurstConfig(DetectorConfig):
    window_s: float = Field(10.0, gt=0)
    threshold: int = Field(50, ge=1)
    max_clients: int = Field(65536, ge=16)
    severity: Severity = Severity.MEDIUM


class NxBurstDetector:
    id: ClassVar[str] = "dns.nxdomain_burst"
    version: ClassVar[str] = "1"
    pillar: ClassVar[str] = "dns"
    side: ClassVar[str] = "response"
    cacheable: ClassVar[bool] = False
    rcodes: ClassVar[frozenset[int]] = frozenset({3})  # only NXDOMAIN answers matter
    categories: ClassVar[tuple[str, ...]] = ("nxdomain-burst",)
    description: ClassVar[str] = "a client receiving a burst of NXDOMAIN answers (DGA probing)"
    Config: ClassVar[type[DetectorConfig]] = NxBurstConfig

    def __init__(self, config: NxBurstConfig, models: ModelCache) -> None:
        self.config = config
        self._clients: ClientLRU[list[float]] = ClientLRU(config.max_clients, lambda: [0.0, 0.0])

    def detect(self, subject: DnsResponse, ctx: ScanContext) -> Iterator[Finding]:
        if subject.rcode != 3:
            return
        client = subject.query.client
        state = self._clients.get(client)  # [window start, count]
        now = time.monotonic()
        if now - state[0] >= self.config.window_s:
            state[0], state[1] = now, 0
        state[1] += 1
        count = int(state[1])
        threshold = self.config.threshold
        if count > threshold and (count - threshold - 1) % threshold == 0:
            yield Finding.of(
                match=client,
                detector=self.id,
                detector_version=self.version,
                rule="burst",
                category="nxdomain-burst",
                severity=self.config.severity,
                confidence=min(1.0, count / (2 * threshold)),
                message=f"client {client} received {count} NXDOMAIN answers within {self.config.window_s:g} s",
                location=client,
                evidence={"client": client, "nxdomain": count, "window_s": self.config.window_s},
            )


class FloodConfig(DetectorConfig):
    window_s: float = Field(10.0, gt=0)
    threshold: int = Field(200, ge=10, le=2000)  # distinct names under one domain per window
    max_clients: int = Field(65536, ge=16)
    domains_per_client: int = Field(8, ge=1, le=256)
    severity: Severity = Severity.HIGH


class _ClientFlood:
    __slots__ = ("domains", "start")

    def __init__(self) -> None:
        self.start = 0.0
        self.domains: dict[str, int] = {}  # registrable domain -> bitmap of name hashes


def _estimate(bitmap: int) -> float:
    zeros = _BITS - bitmap.bit_count()
    if zeros == 0:
        return float(_BITS * 8)
    return -_BITS * math.log(zeros / _BITS)


class RandomSubdomainDetector:
    id: ClassVar[str] = "dns.random_subdomain"
    version: ClassVar[str] = "1"
    pillar: ClassVar[str] = "dns"
    side: ClassVar[str] = "request"
    cacheable: ClassVar[bool] = False
    run_on_cache_hit: ClassVar[bool] = False  # a repeated name is not a new distinct name
    categories: ClassVar[tuple[str, ...]] = ("random-subdomain",)
    description: ClassVar[str] = "random-subdomain (water-torture) floods of one domain by one client"
    Config: ClassVar[type[DetectorConfig]] = FloodConfig

    def __init__(self, config: FloodConfig, models: ModelCache, psl: Registrable | None = None) -> None:
        self.config = config
        self._psl = psl or Registrable()
        self._clients: ClientLRU[_ClientFlood] = ClientLRU(config.max_clients, _ClientFlood)

    def warmup(self) -> None:
        self._psl("example.com")

    def detect(self, subject: DnsQuery, ctx: ScanContext) -> Iterator[Finding]:
        name = subject.name
        domain = self._psl(name)
        if domain == name:
            return
        state = self._clients.get(subject.client)
        now = time.monotonic()
        if now - state.start >= self.config.window_s:
            state.start = now
            state.domains.clear()
        domains = state.domains
        bitmap = domains.get(domain)
        if bitmap is None:
            if len(domains) >= self.config.domains_per_client:
                domains.pop(next(iter(domains)))
            bitmap = 0
        bitmap |= 1 << (zlib.crc32(name.encode()) & (_BITS - 1))
        domains[domain] = bitmap
        if bitmap.bit_count() < self.config.threshold * 0.8:  # cheap pre-check: estimate >= popcount
            return
        distinct = _estimate(bitmap)
        if distinct <= self.config.threshold:
            return
        yield Finding.of(
            match=f"{subject.client} {domain}",
            detector=self.id,
            detector_version=self.version,
            rule="flood",
            category="random-subdomain",
            severity=self.config.severity,
            confidence=min(1.0, distinct / (2 * self.config.threshold)),
            message=(
                f"client {subject.client} asked for ~{distinct:.0f} distinct names under {domain} "
                f"within {self.config.window_s:g} s"
            ),
            location=domain,
            evidence={"client": subject.client, "domain": domain, "distinct_names": round(distinct)},
        )
