"""Sensor counters and a latency histogram, exposed in Prometheus text format (version 0.0.4).

Plain attributes and dicts updated on the event loop thread: no locks, no client library.

The sensor's hot path (a repeated query answered from the answer cache, server.py) counts itself in
`hot` only (answers by rcode, each faster than the first latency bucket, their latencies summed in
`hot_latency_s`); slower ones go through `count_hot_late` and the usual counters. Every
total read from here (queries, allows, verdict-cache hits, rcodes, the latency histogram, answer
cache hits) adds the hot counts, so nothing is sampled or estimated.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from typing import Any

from tutela.core.stalls import StallCounters

RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
# Seconds; the last bucket is +Inf.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.started = time.time()
        self.queries_udp = 0
        self.queries_tcp = 0
        self.allowed = 0  # clean allows (no finding, no failure): the hot path counts them apart
        self.verdicts: Counter[tuple[str, str]] = Counter()  # (action, category) of the rest
        self.rcodes = [0] * 16  # responses sent to clients, by rcode
        self.cache_hits = 0
        self.cache_misses = 0
        self.malformed = 0
        self.upstream_timeouts = 0
        self.upstream_errors = 0
        self.detector_failures = 0
        self.tc_retries = 0
        self.overload_drops = 0
        self.tcp_clients = 0
        self.tcp_refused = 0
        self.pending = 0
        self.events_dropped = 0
        self.stalls = StallCounters()  # cyclic GC runs and event-loop lag (core/stalls.py)
        self.answer_cache: Any = None  # the sensor's AnswerCache, when on (hits, misses, entries)
        self.udp_batch: Any = None  # the sensor's BatchSocket, when on (truncated datagrams, send errors)
        self._latency = [0] * (len(BUCKETS) + 1)
        self._latency_sum = 0.0
        self._latency_count = 0
        self.hot = [0] * 16  # hot-path answers by rcode (each a query, a clean allow, a verdict and answer cache hit)
        self.hot_latency_s = 0.0  # their summed latency (each under BUCKETS[0])
        self.hot_late = 0  # hot-path answers slower than BUCKETS[0], counted the usual way as well
        self.hot_errors = 0  # Python errors on the unbatched hot path (the batched path counts its own)
        self.query_errors = 0  # queries whose handling raised on the batched path (reported, the batch went on)

    def count_hot_late(self, rcodes: bytes, seconds: float) -> None:
        """Hot-path answers (their rcodes) sent together, each `seconds` after its query was read,
        longer than the first latency bucket: counted the usual way, the batch in one go (a batch
        of 64 answers sent by one sendmmsg on loopback takes longer than the first bucket)."""
        n = len(rcodes)
        self.queries_udp += n
        self.allowed += n
        self.cache_hits += n
        counts = self.rcodes
        for rcode in set(rcodes):
            counts[rcode] += rcodes.count(rcode)
        self._latency[bisect.bisect_left(BUCKETS, seconds)] += n
        self._latency_sum += seconds * n
        self._latency_count += n
        self.hot_late += n

    def hot_hits(self) -> int:
        """Queries answered on the hot path."""
        return sum(self.hot) + self.hot_late

    def verdict_cache_hits(self) -> int:
        return self.cache_hits + sum(self.hot)

    def answer_cache_hits(self) -> int:
        cache = self.answer_cache
        return (cache.hits if cache is not None else 0) + self.hot_hits()

    @property
    def queries(self) -> dict[str, int]:
        return {"tcp": self.queries_tcp, "udp": self.queries_udp + sum(self.hot)}

    def verdict_counts(self) -> Counter[tuple[str, str]]:
        counts = Counter(self.verdicts)
        allowed = self.allowed + sum(self.hot)
        if allowed:
            counts[("allow", "-")] += allowed
        return counts

    def response_counts(self) -> list[int]:
        """Responses sent to clients, by rcode."""
        return [a + b for a, b in zip(self.rcodes, self.hot, strict=True)]

    def latency_histogram(self) -> tuple[list[int], float, int]:
        """(count per bucket, the last one +Inf; sum of seconds; count)."""
        fast = sum(self.hot)
        counts = list(self._latency)
        counts[0] += fast
        return counts, self._latency_sum + self.hot_latency_s, self._latency_count + fast

    def observe_latency(self, seconds: float) -> None:
        self._latency[bisect.bisect_left(BUCKETS, seconds)] += 1
        self._latency_sum += seconds
        self._latency_count += 1

    def render(self) -> str:
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                lines.append(f"{name}{labels} {value:g}" if isinstance(value, float) else f"{name}{labels} {value}")

        metric(
            "tutela_dns_queries_total",
            "counter",
            "Queries received, by transport.",
            [(f'{{transport="{t}"}}', n) for t, n in sorted(self.queries.items())] or [("", 0)],
        )
        metric(
            "tutela_dns_verdicts_total",
            "counter",
            "Verdicts, by action and finding category.",
            [(f'{{action="{a}",category="{c}"}}', n) for (a, c), n in sorted(self.verdict_counts().items())]
            or [("", 0)],
        )
        metric(
            "tutela_dns_responses_total",
            "counter",
            "Responses sent to clients, by rcode.",
            [(f'{{rcode="{RCODE_NAMES.get(r, str(r))}"}}', n) for r, n in enumerate(self.response_counts()) if n]
            or [("", 0)],
        )
        for name, help_, value in (
            ("tutela_dns_verdict_cache_hits_total", "Verdict cache hits.", self.verdict_cache_hits()),
            ("tutela_dns_verdict_cache_misses_total", "Verdict cache misses.", self.cache_misses),
            ("tutela_dns_malformed_total", "Malformed queries (FORMERR or dropped).", self.malformed),
            ("tutela_dns_upstream_timeouts_total", "Upstream attempts that timed out.", self.upstream_timeouts),
            ("tutela_dns_upstream_errors_total", "Upstream attempts that failed.", self.upstream_errors),
            (
                "tutela_dns_detector_failures_total",
                "Detector exceptions (query still answered).",
                self.detector_failures,
            ),
            ("tutela_dns_tc_retries_total", "Truncated upstream answers retried over TCP.", self.tc_retries),
            ("tutela_dns_overload_total", "Queries refused because too many were in flight.", self.overload_drops),
            ("tutela_dns_tcp_refused_total", "TCP clients refused over the limit.", self.tcp_refused),
            ("tutela_dns_events_dropped_total", "Events the store writer dropped.", self.events_dropped),
        ):
            metric(name, "counter", help_, [("", value)])
        lines.extend(self.stalls.render("tutela_dns"))
        cache = self.answer_cache
        if cache is not None:
            for name, help_, value in (
                (
                    "tutela_dns_answer_cache_hits_total",
                    "Queries answered from the answer cache.",
                    self.answer_cache_hits(),
                ),
                ("tutela_dns_answer_cache_misses_total", "Answer cache misses.", cache.misses),
                ("tutela_dns_answer_cache_evictions_total", "Answers evicted when full.", cache.evictions),
            ):
                metric(name, "counter", help_, [("", value)])
            metric("tutela_dns_answer_cache_entries", "gauge", "Answers cached.", [("", len(cache))])
        batch = self.udp_batch
        if batch is not None:
            for name, help_, value in (
                (
                    "tutela_dns_udp_truncated_total",
                    "Client datagrams larger than a receive slot, dropped.",
                    batch.truncated,
                ),
                ("tutela_dns_udp_send_errors_total", "UDP answers the kernel refused.", batch.send_errors),
                ("tutela_dns_udp_receive_errors_total", "Failed client socket reads.", batch.receive_errors),
            ):
                metric(name, "counter", help_, [("", value)])
        metric("tutela_dns_query_errors_total", "counter", "UDP queries whose handling failed (a bug; logged).",
               [("", self.query_errors)])  # fmt: skip
        hot_errors = self.hot_errors + (batch.hot_errors if batch is not None else 0)
        metric("tutela_dns_hot_errors_total", "counter", "Hot-path errors (the query then took the slow path).",
               [("", hot_errors)])  # fmt: skip
        metric("tutela_dns_pending", "gauge", "UDP queries in flight upstream.", [("", self.pending)])
        metric("tutela_dns_tcp_clients", "gauge", "Open TCP client connections.", [("", self.tcp_clients)])
        metric(
            "tutela_dns_uptime_seconds", "gauge", "Seconds since start.", [("", round(time.time() - self.started, 3))]
        )
        lines.append("# HELP tutela_dns_latency_seconds Time from query received to answer sent.")
        lines.append("# TYPE tutela_dns_latency_seconds histogram")
        cumulative = 0
        counts, total_s, count = self.latency_histogram()
        for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
            cumulative += n
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'tutela_dns_latency_seconds_bucket{{le="{le}"}} {cumulative}')
        lines.append(f"tutela_dns_latency_seconds_sum {total_s:.6f}")
        lines.append(f"tutela_dns_latency_seconds_count {count}")
        return "\n".join(lines) + "\n"
