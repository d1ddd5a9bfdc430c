"""Per-client, per-domain window state for tunnel sessions, bounded in memory.

Keys are (client, registrable domain). Each key keeps at most `max_events` recent queries that have a
subdomain part, within `window_s` seconds; at most `max_keys` keys are kept (least recently seen are
dropped first). So memory is bounded by max_keys x max_events small tuples (~230 bytes each; 10,000 x 32
by default, ~74 MB at worst), whatever the traffic. Not thread-safe: callers serialise (TunnelDetector
holds a lock).

What a window measures: subdomain fan-out (distinct subdomains), bytes per minute carried in
subdomains, the record-type mix (TXT, NULL, CNAME, MX, ... are what tunnels ask for), the mean label
entropy and the mean per-query tunnel confidence. `observe()` returns the evidence and a session level.
Pure and clock-injected: testable without a sensor (see tests/dns_models/test_window.py). The data path's
update (`observe_reportable`) runs in C where tutela._native.tunnelwindow is built, on this same state;
`observe_reportable_python` is its reference (tests/dns_models/test_tunnelwindow_native.py; TUTELA_PURE_PYTHON=1).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from tutela._native import load

_NATIVE = load("tunnelwindow")  # observe_reportable in C (tutela/_native/tunnelwindow.c); None: Python

# Record types tunnels use to carry data downstream (TXT, NULL, CNAME, MX, KEY, SRV, ANY, private use).
TUNNEL_QTYPES = frozenset({16, 10, 5, 15, 25, 33, 255, 65399})


@dataclass(frozen=True, slots=True)
class WindowEvidence:
    queries: int
    distinct_subdomains: int
    bytes_per_minute: float
    tunnel_qtype_share: float
    mean_entropy: float
    mean_confidence: float
    points: int
    level: str | None
    changed: bool = True  # the level differs from this key's previous observation

    def as_evidence(self) -> dict[str, str]:
        return {
            "queries": str(self.queries),
            "distinct_subdomains": str(self.distinct_subdomains),
            "bytes_per_minute": f"{self.bytes_per_minute:.0f}",
            "tunnel_qtype_share": f"{self.tunnel_qtype_share:.2f}",
            "mean_entropy": f"{self.mean_entropy:.2f}",
            "mean_confidence": f"{self.mean_confidence:.2f}",
        }

    def explain(self) -> str:
        return (
            f"{self.queries} queries, {self.distinct_subdomains} distinct subdomains, "
            f"{self.bytes_per_minute:.0f} bytes/min in names, {self.tunnel_qtype_share:.0%} TXT/NULL/CNAME/MX, "
            f"mean entropy {self.mean_entropy:.1f}, mean per-query confidence {self.mean_confidence:.2f}"
        )


class _Key:
    """One (client, domain) window: recent events plus running totals, so an update is O(1)."""

    __slots__ = ("bytes", "confidence", "digests", "entropy", "events", "level", "qtypes")

    def __init__(self) -> None:
        self.events: deque[tuple[float, int, int, bool, float, float]] = deque()
        self.digests: dict[int, int] = {}
        self.bytes = 0
        self.qtypes = 0
        self.entropy = 0.0
        self.confidence = 0.0
        self.level: str | None = None

    def push(self, event: tuple[float, int, int, bool, float, float]) -> None:
        self.events.append(event)
        self.digests[event[2]] = self.digests.get(event[2], 0) + 1
        self.bytes += event[1]
        self.qtypes += event[3]
        self.entropy += event[4]
        self.confidence += event[5]

    def pop(self) -> None:
        event = self.events.popleft()
        left = self.digests[event[2]] - 1
        if left:
            self.digests[event[2]] = left
        else:
            del self.digests[event[2]]
        self.bytes -= event[1]
        self.qtypes -= event[3]
        self.entropy -= event[4]
        self.confidence -= event[5]


class TunnelWindow:
    def __init__(
        self,
        *,
        window_s: float = 60.0,
        max_events: int = 32,
        max_keys: int = 10_000,
        min_rate_span_s: float = 10.0,
        bytes_per_minute: float = 1000.0,
        fan_out: int = 6,
        entropy: float = 3.3,
    ) -> None:
        self.window_s = window_s
        self.max_events = max_events
        self.max_keys = max_keys
        self.min_rate_span_s = min_rate_span_s
        self.bytes_per_minute = bytes_per_minute
        self.fan_out = fan_out
        self.entropy = entropy
        self._keys: OrderedDict[tuple[str, str], _Key] = OrderedDict()
        # what the C update reads, in one tuple (one argument, not seven attribute lookups per query)
        self._params = (window_s, max_events, max_keys, min_rate_span_s, bytes_per_minute, fan_out, entropy)

    def __len__(self) -> int:
        return len(self._keys)

    def observe(
        self, client: str, registrable: str, sub: str, qtype: int, entropy: float, confidence: float, now: float
    ) -> WindowEvidence:
        key = (client, registrable)
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _Key()
            if len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key)
        # a keyed hash per process (str hash is salted): distinct-subdomain counting without keeping names
        state.push((now, len(sub), hash(sub), qtype in TUNNEL_QTYPES, entropy, confidence))
        horizon = now - self.window_s
        events = state.events
        while len(events) > self.max_events or (events and events[0][0] < horizon):
            state.pop()
        return self._evidence(state, now)

    def observe_reportable(
        self, client: str, registrable: str, sub: str, qtype: int, entropy: float, confidence: float, now: float
    ) -> WindowEvidence | None:
        """observe_reportable_python(), in C where the extension is built (the same state, the same result)."""
        if _NATIVE is not None:
            ev = _NATIVE.observe_reportable(
                self._keys, self._params, _Key, WindowEvidence, TUNNEL_QTYPES,
                client, registrable, sub, qtype, entropy, confidence, now,
            )  # fmt: skip
            if ev is not NotImplemented:  # NotImplemented: a number that is not a float (a test's clock)
                return ev  # type: ignore[no-any-return]
        return self.observe_reportable_python(client, registrable, sub, qtype, entropy, confidence, now)

    def observe_reportable_python(
        self, client: str, registrable: str, sub: str, qtype: int, entropy: float, confidence: float, now: float
    ) -> WindowEvidence | None:
        """observe(), for the data path: the same state update and level, but evidence is built only when a
        caller reports it, i.e. the level is HIGH or has just changed to LOW or MEDIUM; None otherwise. The push
        and pops are inlined, the running totals kept in locals (this runs on every query, verdict-cache hits
        included)."""
        key = (client, registrable)
        keys = self._keys
        state = keys.get(key)
        if state is None:
            state = keys[key] = _Key()
            if len(keys) > self.max_keys:
                keys.popitem(last=False)
        else:
            keys.move_to_end(key)
        digest = hash(sub)
        size = len(sub)
        tunnel_qtype = qtype in TUNNEL_QTYPES
        events = state.events
        events.append((now, size, digest, tunnel_qtype, entropy, confidence))
        digests = state.digests
        digests[digest] = digests.get(digest, 0) + 1
        # the running totals in locals, added to and then taken from in _Key.push/pop's order (the same floats)
        total_bytes = state.bytes + size
        qtypes = state.qtypes + tunnel_qtype
        total_entropy = state.entropy + entropy
        total_confidence = state.confidence + confidence
        horizon = now - self.window_s
        max_events = self.max_events
        n = len(events)
        while events and (n > max_events or events[0][0] < horizon):  # at steady state: one pop per push
            old = events.popleft()
            n -= 1
            left = digests[old[2]] - 1
            if left:
                digests[old[2]] = left
            else:
                del digests[old[2]]
            total_bytes -= old[1]
            qtypes -= old[3]
            total_entropy -= old[4]
            total_confidence -= old[5]
        state.bytes = total_bytes
        state.qtypes = qtypes
        state.entropy = total_entropy
        state.confidence = total_confidence
        if n < 3:  # every level needs 3 queries
            state.level = None
            return None
        # _points() and _level() inlined, the same arithmetic (the WindowEvidence below recomputes nothing)
        conf = total_confidence / n
        points = 2 if conf >= 0.7 else 1 if conf >= 0.5 else 0
        distinct = len(digests)
        if distinct >= self.fan_out and distinct >= 0.8 * n:
            points += 1
        span = now - events[0][0]
        if span < self.min_rate_span_s:  # max(span, min_rate_span_s), as _points() takes it
            span = self.min_rate_span_s
        bpm = total_bytes * 60.0 / span
        if bpm >= self.bytes_per_minute:
            points += 1
        qshare = qtypes / n
        if qshare >= 0.5:
            points += 1
        ent = total_entropy / n
        if ent >= self.entropy:
            points += 1
        level = None if points < 2 else "low" if points == 2 else "medium" if points == 3 or n < 4 else "high"
        changed = level != state.level
        state.level = level
        if level is None or (level != "high" and not changed):
            return None  # nothing a caller reports: no evidence built
        return WindowEvidence(n, distinct, bpm, qshare, ent, conf, points, level, changed)

    def _points(self, state: _Key, now: float) -> tuple[int, int, float, float, float, float, float]:
        n = len(state.events)
        distinct = len(state.digests)
        span = max(now - state.events[0][0], self.min_rate_span_s)
        bpm = state.bytes * 60.0 / span
        qshare = state.qtypes / n
        ent = state.entropy / n
        conf = state.confidence / n
        points = 0
        if conf >= 0.7:
            points += 2
        elif conf >= 0.5:
            points += 1
        if distinct >= self.fan_out and distinct >= 0.8 * n:
            points += 1
        if bpm >= self.bytes_per_minute:
            points += 1
        if qshare >= 0.5:
            points += 1
        if ent >= self.entropy:
            points += 1
        return points, distinct, bpm, qshare, ent, conf, span

    def _evidence(self, state: _Key, now: float) -> WindowEvidence:
        n = len(state.events)
        points, distinct, bpm, qshare, ent, conf, _span = self._points(state, now)
        level = _level(points, n)
        changed = level != state.level
        state.level = level
        return WindowEvidence(n, distinct, bpm, qshare, ent, conf, points, level, changed)


def _level(points: int, n: int) -> str | None:
    if points >= 4 and n >= 4:
        return "high"
    if points >= 3 and n >= 3:
        return "medium"
    if points >= 2 and n >= 3:
        return "low"
    return None
