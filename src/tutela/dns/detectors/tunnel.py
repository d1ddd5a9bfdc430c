"""`dns.tunnel`: DNS tunnels and exfiltration, per query and per client/domain session.

Per query: the tunnel model scores the subdomain part (left of the registrable domain), so the
first packet of a tunnel can be caught: rule `tunnel.query.<level>`.
Per session: a bounded `TunnelWindow` per (client, registrable domain) adds subdomain fan-out,
bytes per minute, the record-type mix and label entropy: rule `tunnel.session.<level>`; this is
what blocks a live session whose single queries look harmless. Evidence never holds the queried
name (it may carry exfiltrated data), only the registrable domain and sizes.

Sensor wiring: the inline sensor runs every "dns" detector whose `side` is "request" on each
`DnsQuery`. This one sets `cacheable = False` and `run_on_cache_hit = True`, so it also runs on
verdict-cache hits (a repeated name still counts in the window). The window needs `DnsQuery.client`
(empty = one shared client) and `qtype`. Time comes from `self.clock` (time.monotonic by default;
tests inject their own).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any, ClassVar, Literal

from pydantic import Field

from tutela.core.detector import DetectorConfig, ScanContext
from tutela.core.findings import Finding, Severity
from tutela.core.models import ModelCache
from tutela.dns.deferred import HEAD_FIELDS, DeferredFinding
from tutela.dns.lexical import entropy
from tutela.dns.names import NameParts, NameSplitter
from tutela.dns.scoring import LEVEL_CONFIDENCE, LEVEL_SEVERITY, LEVELS, DnsScorer, Score
from tutela.dns.subjects import DnsQuery
from tutela.dns.window import TunnelWindow, WindowEvidence

Level = Literal["low", "medium", "high"]


class TunnelConfig(DetectorConfig):
    min_level: Level = "low"
    window: bool = True
    window_s: float = Field(60.0, gt=0, le=3600)
    # memory bound of the window: at most max_keys x max_events events, ~230 bytes each (~74 MB by default)
    max_keys: int = Field(10_000, ge=1, le=10_000_000)
    max_events: int = Field(32, ge=4, le=4096)
    cache_size: int = Field(65536, ge=0, le=10_000_000)
    ignore_suffixes: tuple[str, ...] = ("arpa",)


class TunnelDetector:
    id: ClassVar[str] = "dns.tunnel"
    version: ClassVar[str] = "1"
    pillar: ClassVar[str] = "dns"
    side: ClassVar[str] = "request"
    categories: ClassVar[tuple[str, ...]] = ("tunnel",)
    # The window keeps per-client/per-domain state: the sensor must not serve this detector's findings from
    # its verdict cache, and must run it on cache hits too (a repeated name still counts in the window).
    # The per-query score is cached here, by subdomain, so a hit costs a split, an LRU lookup and the window.
    cacheable: ClassVar[bool] = False
    run_on_cache_hit: ClassVar[bool] = True
    description: ClassVar[str] = "DNS tunnelling and exfiltration: per-query model plus per-client/domain window"
    Config: ClassVar[type[DetectorConfig]] = TunnelConfig

    def __init__(
        self,
        config: TunnelConfig,
        models: ModelCache,
        splitter: NameSplitter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.scorer = DnsScorer(models, splitter)
        self.clock = clock
        self._min_conf = LEVEL_CONFIDENCE[config.min_level]
        self._ignore = frozenset(config.ignore_suffixes)
        self._lock = threading.Lock()  # the window is shared state; detect() may run on several threads
        self.window = TunnelWindow(window_s=config.window_s, max_events=config.max_events, max_keys=config.max_keys)
        # The per-query model reads only the subdomain part, so verdicts are cached by it: "www", "mail",
        # "api" and the like are scored once for every domain.
        self._score_sub = lru_cache(maxsize=config.cache_size)(self._score_sub_uncached) if config.cache_size else None
        # the per-name part of detect(), cached or not, chosen once (the hit path is one call, not a test and two)
        self._static = lru_cache(maxsize=config.cache_size)(self._per_name) if config.cache_size else self._per_name
        self._windowed = config.window
        self._observe = self.window.observe_reportable

    def warmup(self) -> None:
        """Load the PSL and the models before the sensor listens (the first query must not pay for it)."""
        self.scorer.split.warmup()
        self.scorer.warmup()
        self.scorer.tunnel(self.scorer.split("a.warmup.example.com"))

    def _score_sub_uncached(self, sub: str) -> Score:
        return self.scorer.tunnel_sub(sub)

    def judges(self, parts: NameParts) -> bool:
        """False for names without a subdomain part or under an ignored top-level suffix."""
        return bool(parts.sub) and parts.suffix.rpartition(".")[2] not in self._ignore

    def score(self, name: str) -> Score:
        parts = self.scorer.split(name)
        return self._score_parts(parts)

    def _score_parts(self, parts: NameParts) -> Score:
        if self._score_sub is None:
            return self.scorer.tunnel(parts)
        s = self._score_sub(parts.sub)
        return s._replace(registrable=parts.registrable) if s.level is not None else s

    def _per_name(self, name: str) -> tuple[str, str, tuple[Finding, ...], float, float] | None:
        """What depends on the name alone: its registrable domain and subdomain part, the per-query findings,
        label entropy and confidence (cached per name, so a repeated name only updates the window)."""
        parts = self.scorer.split(name)
        if not self.judges(parts):
            return None
        s = self._score_parts(parts)
        found: tuple[Finding, ...] = ()
        if s.level is not None and s.confidence >= self._min_conf:
            # the policy reads the rule and confidence now; the explanation is computed when the event is written
            sub_len = len(parts.sub)
            found = (DeferredFinding.positional(lambda: self._details(s, sub_len), *self._head_fields(s)),)
        ent = s.features[3] if s.features else entropy(parts.sub.replace(".", ""))
        return parts.registrable, parts.sub, found, ent, s.confidence

    def detect(self, subject: DnsQuery, ctx: ScanContext) -> Iterable[Finding]:
        static = self._static(subject.name)
        if static is None:
            return ()
        registrable, sub, found, ent, confidence = static
        if not self._windowed:
            return found
        with self._lock:
            ev = self._observe(subject.client, registrable, sub, subject.qtype, ent, confidence, self.clock())
        if ev is None:  # the usual case: nothing to report
            return found
        # a HIGH session finding on every query (each is blocked); lower levels only when they change
        if (
            ev.level is not None
            and (ev.level == "high" or ev.changed)
            and LEVELS.index(ev.level) >= LEVELS.index(self.config.min_level)
        ):
            return [*found, self._session_finding(subject.client, registrable, ev)]
        return found

    def query_finding(self, s: Score, sub_len: int) -> Finding:
        message, evidence = self._details(s, sub_len)
        return Finding.of(message=message, evidence=evidence, **self._head(s))

    def _head(self, s: Score) -> dict[str, Any]:
        return dict(zip(HEAD_FIELDS, self._head_fields(s), strict=True))

    def _head_fields(self, s: Score) -> tuple[str, str, str, str, str, Severity, float]:
        level = s.level
        assert level is not None
        return (s.registrable, self.id, self.version, f"tunnel.query.{level}", "tunnel", LEVEL_SEVERITY[level],
                round(s.confidence, 6))  # fmt: skip

    @staticmethod
    def _details(s: Score, sub_len: int) -> tuple[str, dict[str, str]]:
        explanation = s.explanation  # built from the features on each access: once here
        message = f"query under {s.registrable} looks like tunnelled data ({explanation})"
        evidence = {"registrable": s.registrable, "level": str(s.level), "probability": f"{s.p:.6f}",
                    "subdomain_length": str(sub_len), "explanation": explanation}  # fmt: skip
        return message, evidence

    def _session_finding(self, client: str, registrable: str, ev: WindowEvidence) -> Finding:
        """A live tunnel's every query is blocked with one of these: the text is written when the event is."""
        assert ev.level is not None

        def details() -> tuple[str, dict[str, str]]:  # ev is a frozen snapshot of the window
            message = f"client session with {registrable} looks like a DNS tunnel ({ev.explain()})"
            return message, {"registrable": registrable, "level": str(ev.level), **ev.as_evidence()}

        return DeferredFinding.positional(
            details,
            f"{client}\x1f{registrable}",
            self.id,
            self.version,
            f"tunnel.session.{ev.level}",
            "tunnel",
            LEVEL_SEVERITY[ev.level],
            LEVEL_CONFIDENCE[ev.level],
        )
