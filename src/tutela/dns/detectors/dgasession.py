"""`dns.dga_session` (response side): a client that receives NXDOMAIN for several DGA-like domains.

DGA malware queries many generated names and almost all come back NXDOMAIN (unregistered). One such
name is only moderately suspicious to a per-name model, but several distinct ones answered NXDOMAIN to
one client within minutes point at an infected client, whatever the family. `dns.nxdomain_burst` counts
NXDOMAIN volume only (slow DGAs never reach it); this detector counts the distinct registrable domains
that the DGA model scores at or above `min_level`.

Per client (bounded `ClientLRU`, at most `max_domains` domains each): the registrable domains answered
NXDOMAIN at or above `min_level` within the last `window_s` seconds (sliding; a repeat refreshes its time
and is not counted again). A finding when the count reaches `threshold`, then one more per `threshold`
further new domains while the count stays at or above it. Names the model does not judge (no registrable
label, IDN, ignored suffixes such as .lan) never count, and only clients with a DGA-like NXDOMAIN get state.
A query the sensor blocks (dns.dga at HIGH, by default) never gets an upstream answer; the engine shows it
here as the NXDOMAIN the client receives (`sees_blocked`), so the most DGA-like names count as well.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from tutela.core.detector import DetectorConfig, ScanContext
from tutela.core.findings import Finding, Severity
from tutela.core.models import ModelCache
from tutela.dns.clients import ClientLRU
from tutela.dns.detectors.dga import DgaConfig, DgaDetector
from tutela.dns.scoring import LEVEL_CONFIDENCE
from tutela.dns.subjects import DnsResponse

_EVIDENCE_NAMES = 10  # at most this many domains in a finding's message and evidence


class DgaSessionConfig(DetectorConfig):
    window_s: float = Field(600.0, gt=0)
    # distinct DGA-like NXDOMAIN domains per client and window; LOW and 5: the operating point measured on the
    # leave-group-out folds (docs/eval/dns.md, "DGA sessions")
    threshold: int = Field(5, ge=2, le=256)
    min_level: Literal["low", "medium", "high"] = "low"  # the DGA model's level a name needs to count
    max_clients: int = Field(16384, ge=16)
    max_domains: int = Field(32, ge=2, le=1024)  # per client; the oldest go first
    cache_size: int = Field(16384, ge=0, le=10_000_000)  # per answered name: whether it counts (a repeat: a lookup)
    severity: Severity = Severity.HIGH
    # clients never judged: mail servers checking sender domains, resolvers that forward for many hosts
    ignore_clients: tuple[IPv4Network | IPv6Network, ...] = ()

    @model_validator(mode="after")
    def _room_for_threshold(self) -> DgaSessionConfig:
        if self.max_domains < self.threshold:
            raise ValueError(f"max_domains ({self.max_domains}) must be at least threshold ({self.threshold})")
        return self


class ClientSession:
    """One client's DGA-like NXDOMAIN domains in the window: domain -> (last seen, DGA level), oldest first."""

    __slots__ = ("domains", "fresh")

    def __init__(self) -> None:
        self.domains: dict[str, tuple[float, str]] = {}
        self.fresh = 0  # new domains counted since the last finding

    def observe(self, domain: str, level: str, now: float, window_s: float, max_domains: int) -> bool:
        """Record one domain at `now`; True when it is new to the window (a repeat only refreshes its time)."""
        domains = self.domains
        new = domains.pop(domain, None) is None
        domains[domain] = (now, level)  # re-inserted: the dict stays ordered by last sighting
        horizon = now - window_s
        while len(domains) > max_domains or next(iter(domains.values()))[0] < horizon:
            del domains[next(iter(domains))]
        if new:
            self.fresh += 1
        return new


class DgaSessionDetector:
    id: ClassVar[str] = "dns.dga_session"
    version: ClassVar[str] = "1"
    pillar: ClassVar[str] = "dns"
    side: ClassVar[str] = "response"
    cacheable: ClassVar[bool] = False
    rcodes: ClassVar[frozenset[int]] = frozenset({3})  # only NXDOMAIN answers matter
    sees_blocked: ClassVar[bool] = True  # names the sensor blocks (dns.dga at HIGH) count too: see the engine
    categories: ClassVar[tuple[str, ...]] = ("dga-session",)
    description: ClassVar[str] = "a client receiving NXDOMAIN for several DGA-like domains within a window"
    Config: ClassVar[type[DetectorConfig]] = DgaSessionConfig

    def __init__(self, config: DgaSessionConfig, models: ModelCache, clock: Callable[[], float] | None = None) -> None:
        self.config = config
        # the DGA model through the shared cache (loaded on first use or warmup), with dns.dga's judging rules; with
        # dns.dga's default cache size it shares dns.dga's verdicts, so a name judged at the request side is not
        # scored again on its NXDOMAIN answer
        self._dga = DgaDetector(DgaConfig(families=False), models)
        self._counted = lru_cache(maxsize=config.cache_size)(self._level_of) if config.cache_size else self._level_of
        self._min_conf = LEVEL_CONFIDENCE[config.min_level]
        self._clock = clock  # None: time.monotonic at each call, as the other behavioural detectors read it
        self._clients: ClientLRU[ClientSession] = ClientLRU(config.max_clients, ClientSession)
        self._ignored = lru_cache(maxsize=4096)(self._in_ignored) if config.ignore_clients else None

    def warmup(self) -> None:
        self._dga.warmup()

    def detect(self, subject: DnsResponse, ctx: ScanContext) -> Iterator[Finding]:
        if subject.rcode != 3:
            return
        counted = self._counted(subject.query.name)
        if counted is None:
            return
        cfg = self.config
        client = subject.query.client
        if self._ignored is not None and self._ignored(client):
            return
        state = self._clients.get(client)
        now = self._clock() if self._clock is not None else time.monotonic()
        if not state.observe(counted[0], counted[1], now, cfg.window_s, cfg.max_domains):
            return
        count = len(state.domains)
        if count < cfg.threshold or state.fresh < cfg.threshold:
            return
        state.fresh = 0
        yield self._finding(client, state, count)

    def _in_ignored(self, client: str) -> bool:
        try:
            address = ipaddress.ip_address(client)
        except ValueError:  # not an address (a replayed log's host name): judged
            return False
        return any(address in net for net in self.config.ignore_clients)

    def _level_of(self, name: str) -> tuple[str, str] | None:
        """(registrable domain, DGA level) of a name that counts, None for one that does not."""
        s = self._dga.verdict_score(name)
        if s.level is None or s.confidence < self._min_conf:
            return None
        return s.registrable, s.level

    def _finding(self, client: str, state: ClientSession, count: int) -> Finding:
        cfg = self.config
        recent = list(state.domains.items())[-_EVIDENCE_NAMES:]  # the newest, bounded
        names = ", ".join(d for d, _ in recent)
        more = f" (+{count - len(recent)} more)" if count > len(recent) else ""
        return Finding.of(
            match=client,
            detector=self.id,
            detector_version=self.version,
            rule="session",
            category="dga-session",
            severity=cfg.severity,
            # the common scale: HIGH (0.9) at the threshold, 1.0 at twice the threshold
            confidence=min(1.0, 0.9 + 0.1 * (count - cfg.threshold) / cfg.threshold),
            message=(
                f"client {client} received NXDOMAIN for {count} DGA-like domains within "
                f"{cfg.window_s:g} s: {names}{more}"
            ),
            location=client,
            evidence={
                "client": client,
                "count": count,
                "window_s": cfg.window_s,
                "domains": names,  # the newest, at most _EVIDENCE_NAMES registrable domains
                "levels": ", ".join(level for _, (_, level) in recent),  # their DGA levels, in the same order
            },
        )
