"""The sensor's judge: detectors, verdict cache, policy and events, shared by inline and replay.

`DnsEngine.judge_query` runs the request-side detectors on a `DnsQuery`, `judge_response` the
response-side ones on a `DnsResponse`. Findings of cacheable detectors (those that depend only on
the name and type) are cached per (name, type) for `cache_ttl_s`; behavioural detectors run on
every query, or, when they set `run_on_cache_hit = False`, only when the name missed the cache
(a repeat of a recently judged name carries no signal for them). Replay and the inline
forwarder call the same two methods, so their verdicts agree.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from tutela.core.config import TutelaSettings
from tutela.core.detector import Detector, ScanContext
from tutela.core.errors import ConfigError
from tutela.core.findings import Action, DetectorFailure, Finding, Verdict
from tutela.core.models import ModelCache
from tutela.core.pipeline import DetectorSpec, build_detector
from tutela.core.policy import Policy, PolicyRule
from tutela.core.registry import DetectorRegistry
from tutela.core.store import EventWriter
from tutela.dns import wire
from tutela.dns.lists import NameSet
from tutela.dns.metrics import Metrics
from tutela.dns.settings import DnsSettings
from tutela.dns.subjects import DnsAnswer, DnsQuery, DnsResponse

PILLAR = "dns"
SIDES = ("request", "response")
# Appended after the user's policy rules: RPZ local data means "answer with this address".
BUILTIN_RULES = (PolicyRule(detector="dns.blocklist", rule="rpz.sinkhole", action=Action.SINKHOLE),)
_ALLOWLISTED = Verdict(action=Action.ALLOW, reasons=("allowlist",))
_TOP_NAMES = 10_000


def build_dns_detectors(
    settings: TutelaSettings, registry: DetectorRegistry, models: ModelCache
) -> list[Detector[Any]]:
    """The configured `detectors.dns` pipeline, or else every registered detector of the dns pillar
    with its default config (a registered one that cannot be built is skipped with a warning)."""
    specs = settings.detectors.get(PILLAR)
    explicit = specs is not None
    if specs is None:
        specs = tuple(DetectorSpec(id=n) for n in registry.for_pillar(PILLAR))
    out: list[Detector[Any]] = []
    for i, spec in enumerate(specs):
        if not spec.enabled:
            continue
        try:
            detector = build_detector(registry, spec, models, where=f"detectors.dns[{i}]")
        except Exception as exc:
            if explicit:
                raise
            print(f"tutela dns: skipping detector {spec.id}: {exc}", file=sys.stderr)
            continue
        if not getattr(detector, "active", True):
            continue  # configured to do nothing (e.g. dns.hijack with no protected zone)
        side = getattr(detector, "side", "request")
        if side not in SIDES:
            raise ConfigError(f"detector {spec.id} has side {side!r}; use 'request' or 'response'")
        out.append(detector)
    return out


def _run(detectors: Sequence[Detector[Any]], subject: Any, ctx: ScanContext, failures: list[DetectorFailure]) -> None:
    for detector in detectors:
        try:
            ctx.findings.extend(detector.detect(subject, ctx))
        except Exception as exc:  # a detector bug never loses the query
            failures.append(DetectorFailure.from_exception(detector.id, exc))


def _response(query: DnsQuery, rcode: int, answers: Sequence[Any]) -> DnsResponse:
    if type(answers) is tuple and (not answers or type(answers[0]) is DnsAnswer):
        return DnsResponse(query, rcode, answers)  # the sensor's memoised answers: already DnsAnswers
    return DnsResponse(
        query,
        rcode,
        tuple([a if isinstance(a, DnsAnswer) else DnsAnswer(a.name, a.rtype, a.ttl, a.data) for a in answers]),
    )


def _evict_oldest(cache: dict[Any, Any]) -> None:
    """Drop the oldest sixty-fourth of a full insertion-ordered cache: a bounded, short pause (the
    whole-key list this replaces cost milliseconds on 200k entries and showed in the p99)."""
    for old in list(itertools.islice(cache, max(1, len(cache) // 64))):
        del cache[old]


class TopStats:
    """Bounded counters behind `tutela dns top`: clients by queries, names by blocks."""

    def __init__(self, max_clients: int = 10_000) -> None:
        self.clients: Counter[str] = Counter()
        self.blocked: Counter[str] = Counter()
        self.max_clients = max_clients

    def query(self, client: str) -> None:
        clients = self.clients
        clients[client] += 1
        if len(clients) > self.max_clients:
            self.trim()

    def trim(self) -> None:
        """Keep the busiest half of the clients, in place (the sensor's fast path holds the Counter)."""
        clients = self.clients
        if len(clients) > self.max_clients:
            keep = clients.most_common(self.max_clients // 2)
            clients.clear()
            clients.update(dict(keep))

    def block(self, name: str) -> None:
        self.blocked[name] += 1
        if len(self.blocked) > _TOP_NAMES:
            self.blocked = Counter(dict(self.blocked.most_common(_TOP_NAMES // 2)))

    def snapshot(self, metrics: Metrics, n: int = 20) -> dict[str, Any]:
        return {
            "ts": time.time(),
            "uptime_s": round(time.time() - metrics.started, 1),
            "queries": sum(metrics.queries.values()),
            "verdicts": {f"{a}/{c}": v for (a, c), v in metrics.verdict_counts().items()},
            "top_clients": self.clients.most_common(n),
            "top_blocked": self.blocked.most_common(n),
        }


class DnsEngine:
    def __init__(
        self,
        settings: TutelaSettings,
        dns: DnsSettings,
        detectors: Sequence[Detector[Any]],
        *,
        writer: EventWriter | None = None,
        source: str = "dns-sensor",
    ) -> None:
        self.settings = settings
        self.dns = dns
        self.detectors = tuple(detectors)
        request = [d for d in self.detectors if getattr(d, "side", "request") == "request"]
        self.cached_detectors = tuple(d for d in request if getattr(d, "cacheable", True))
        live = [d for d in request if not getattr(d, "cacheable", True)]
        self.live_detectors = tuple(live)
        self.every_query_detectors = tuple(d for d in live if getattr(d, "run_on_cache_hit", True))
        response = [d for d in self.detectors if getattr(d, "side", "request") == "response"]
        self.response_detectors = tuple(response)
        self.response_cached = tuple(d for d in response if getattr(d, "cacheable", True))
        self.response_live = tuple(d for d in response if not getattr(d, "cacheable", True))
        # live response detectors that also count the sensor's own blocks (see _observe_block)
        self.block_observers = tuple(d for d in self.response_live if getattr(d, "sees_blocked", False))
        self._live_by_rcode: dict[int, tuple[Detector[Any], ...]] = {}
        self._rcache: dict[tuple[Any, ...], tuple[float, tuple[Finding, ...], tuple[DetectorFailure, ...]]] = {}
        user = settings.policy_for(PILLAR)
        self.policy = Policy(user.model_copy(update={"rules": (*user.rules, *BUILTIN_RULES)}))
        self.allow = NameSet(dns.allow)
        for path in dns.allow_files:
            self.allow.add_file(path)
        self._allow_any = len(self.allow) > 0
        self.writer = writer
        self.source = source
        self.metrics = Metrics()
        self.top = TopStats()
        self._cache: dict[tuple[str, int], tuple[float, tuple[Finding, ...], tuple[DetectorFailure, ...], Verdict]] = {}
        self._ttl = dns.cache_ttl_s if dns.cache_size else 0.0
        self.last_expiry = 0.0
        self._ctx = ScanContext()  # reused: judging is single-threaded (one event loop)
        self.passive: Any = None  # a PassiveDnsRecorder: every parsed answer is counted in passive DNS

    def _context(self, source: str, findings: tuple[Finding, ...] = ()) -> ScanContext:
        ctx = self._ctx
        ctx.source = source
        if findings:
            ctx.findings = list(findings)
        elif ctx.findings:
            ctx.findings = []
        if ctx.artefacts:
            ctx.artefacts = {}
        return ctx

    @classmethod
    def from_settings(
        cls,
        settings: TutelaSettings,
        registry: DetectorRegistry,
        *,
        writer: EventWriter | None = None,
        source: str = "dns-sensor",
        models: ModelCache | None = None,
    ) -> DnsEngine:
        dns = settings.section(PILLAR, DnsSettings)
        detectors = build_dns_detectors(settings, registry, models or ModelCache())
        return cls(settings, dns, detectors, writer=writer, source=source)

    # -- judging -----------------------------------------------------------------------------

    def _cached_part(
        self, q: DnsQuery
    ) -> tuple[tuple[Finding, ...], tuple[DetectorFailure, ...], Verdict, tuple[Detector[Any], ...]]:
        """Findings of the cacheable detectors (from the cache when fresh), their verdict, and
        which live detectors still have to run (on a hit, only those that need repeats)."""
        key = (q.name, q.qtype)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            self.metrics.cache_hits += 1
            self.last_expiry = hit[0]
            return hit[1], hit[2], hit[3], self.every_query_detectors
        self.metrics.cache_misses += 1
        ctx = self._context(q.client)
        failures: list[DetectorFailure] = []
        _run(self.cached_detectors, q, ctx, failures)
        findings, fails = tuple(ctx.findings), tuple(failures)
        verdict = self.policy.decide(findings, fails)
        self.last_expiry = now + self._ttl
        if self._ttl:
            cache = self._cache
            if len(cache) >= self.dns.cache_size:
                _evict_oldest(cache)
            cache[key] = (now + self._ttl, findings, fails, verdict)
        return findings, fails, verdict, self.live_detectors

    def judge_query(self, q: DnsQuery) -> Verdict:
        """The request-side verdict. Afterwards `last_expiry` says until when (monotonic) the
        cacheable part of it stays valid: the sensor's fast path reuses a clean allow until then."""
        self.top.query(q.client)
        if self._allow_any and q.name in self.allow:
            self.last_expiry = time.monotonic() + self._ttl
            return _ALLOWLISTED
        findings, fails, verdict, live = self._cached_part(q)
        if live:
            ctx = self._context(q.client, findings)
            failures = list(fails)
            _run(live, q, ctx, failures)
            if len(ctx.findings) != len(findings) or len(failures) != len(fails):
                verdict = self.policy.decide(tuple(ctx.findings), failures)
        if verdict.action is Action.BLOCK and self.block_observers:
            verdict = self._observe_block(q, verdict)
        return verdict

    def _observe_block(self, q: DnsQuery, verdict: Verdict) -> Verdict:
        """A blocked query never reaches upstream, so detectors that count what clients are told would miss the
        names blocked outright (dns.dga_session: a DGA name at HIGH); they see the block as the NXDOMAIN it
        is for the client (whatever `block_response` sends), and their findings join the verdict."""
        ctx = self._context(q.client, verdict.findings)
        failures = list(verdict.failures)
        _run(self.block_observers, DnsResponse(q, wire.NXDOMAIN), ctx, failures)
        if len(ctx.findings) == len(verdict.findings) and len(failures) == len(verdict.failures):
            return verdict
        return self.policy.decide(tuple(ctx.findings), failures)

    def judge_response(self, r: DnsResponse) -> Verdict:
        return self.judge_answer(r.query, r.rcode, r.answers, subject=r)

    def _live_for(self, rcode: int) -> tuple[Detector[Any], ...]:
        live = self._live_by_rcode.get(rcode)
        if live is None:
            live = tuple(
                d
                for d in self.response_live
                if getattr(d, "rcodes", None) is None or rcode in d.rcodes  # type: ignore[attr-defined]
            )
            self._live_by_rcode[rcode] = live
        return live

    def judge_answer(
        self,
        query: DnsQuery,
        rcode: int,
        answers: Sequence[Any],
        *,
        subject: DnsResponse | None = None,
        passive_keys: Sequence[Any] | None = None,
    ) -> Verdict:
        """Response-side verdict. `answers` are DnsAnswer or anything with name, rtype, ttl, data.
        Findings of cacheable response detectors are cached per (name, type, rcode, answer data
        without TTLs); the DnsResponse is only built when a detector has to run. `passive_keys`:
        the answer's passive-DNS keys when the caller has them (the sensor memoises them)."""
        if self._allow_any and query.name in self.allow:
            return _ALLOWLISTED
        if self.passive is not None and rcode == 0 and answers:  # recorded with or without response detectors
            if passive_keys is not None:
                self.passive.observe_keys(passive_keys)
            else:
                subject = subject or _response(query, rcode, answers)
                self.passive.observe(subject)
        if not self.response_detectors:
            return self.policy.decide()
        findings: tuple[Finding, ...] = ()
        fails: tuple[DetectorFailure, ...] = ()
        if self.response_cached:
            key = (query.name, query.qtype, rcode, tuple([(a.name, a.rtype, a.data) for a in answers]))
            now = time.monotonic()
            hit = self._rcache.get(key)
            if hit is not None and hit[0] > now:
                findings, fails = hit[1], hit[2]
            else:
                subject = subject or _response(query, rcode, answers)
                ctx = self._context(query.client)
                failures: list[DetectorFailure] = []
                _run(self.response_cached, subject, ctx, failures)
                findings, fails = tuple(ctx.findings), tuple(failures)
                if self._ttl:
                    cache = self._rcache
                    if len(cache) >= self.dns.cache_size:
                        _evict_oldest(cache)
                    cache[key] = (now + self._ttl, findings, fails)
        live = self._live_for(rcode)
        if live:
            subject = subject or _response(query, rcode, answers)
            ctx = self._context(query.client, findings)
            failures = list(fails)
            _run(live, subject, ctx, failures)
            findings, fails = tuple(ctx.findings), tuple(failures)
        if not findings and not fails:
            return self.policy.decide()
        return self.policy.decide(findings, fails)

    # -- acting --------------------------------------------------------------------------------

    def answer(self, verdict: Verdict, data: bytes, q: wire.Question) -> bytes | None:
        """The response that replaces forwarding (block, sinkhole), or None to forward."""
        action = verdict.action
        if action is Action.BLOCK:
            rcode = wire.NXDOMAIN if self.dns.block_response == "nxdomain" else wire.REFUSED
            return wire.make_error(data, q, rcode, ede=wire.EDE_BLOCKED)
        if action is Action.SINKHOLE:
            v4, v6 = self.dns.sinkhole_ipv4, self.dns.sinkhole_ipv6
            for f in verdict.findings:
                addr = f.evidence.get("sinkhole")
                if addr:
                    if ":" in addr:
                        v6 = addr
                    else:
                        v4 = addr
                    break
            return wire.make_sinkhole(data, q, v4, v6, self.dns.sinkhole_ttl)
        return None

    def record(self, q: DnsQuery, verdict: Verdict, stage: str, **attrs: Any) -> None:
        """Count the verdict; store an event for anything but a clean allow."""
        action = verdict.action
        m = self.metrics
        category = verdict.findings[0].category if verdict.findings else "-"
        m.verdicts[(action.value, category)] += 1
        if verdict.failures:
            m.detector_failures += len(verdict.failures)
        if action in (Action.BLOCK, Action.SINKHOLE):
            self.top.block(q.name)
        if self.writer is None:
            return
        if action is Action.ALLOW and not verdict.failures and not self.dns.log_allowed:
            return
        event_attrs: dict[str, Any] = {"qtype": q.qtype, "transport": q.transport, "stage": stage, "via": self.source}
        if verdict.reasons:
            event_attrs["reasons"] = list(verdict.reasons)
        event_attrs.update(attrs)
        self.writer.append(PILLAR, verdict, source=q.client or self.source, subject=q.name, attrs=event_attrs)
        m.events_dropped = self.writer.dropped

    def warmup(self) -> None:
        """Load what detectors load lazily (lists, tables, the PSL) before the first query."""
        for d in self.detectors:
            warm = getattr(d, "warmup", None)
            if callable(warm):
                warm()

    def close(self) -> None:
        for d in self.detectors:
            close = getattr(d, "close", None)
            if callable(close):
                try:
                    close()
                except Exception as exc:
                    print(f"tutela dns: {d.id} close failed: {exc}", file=sys.stderr)
