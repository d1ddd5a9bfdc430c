"""What stalls a server's event loop, kept off the data path and measured (the DNS sensor, the AI gateway).

Any stall of the loop delays every request in flight, and a few of them set the p99. Two parts, each
counting into a `StallCounters` the server exposes:

- `GcControl`: the cyclic GC. Long-lived container objects (caches, compiled profiles, modules) left in
  the GC's generations are traversed by every collection, and even young-generation passes over what
  survived a few seconds took tens of ms under load on the shared 2-core machine. Request paths that
  make no cyclic garbage can instead freeze the survivors every `freeze_s` without a collection
  (`gc.freeze()` moves lists, O(1), and resets the young count, so the automatic collections do not come
  due at normal load; refcounting still frees frozen objects), and every `full_s` everything is unfrozen
  and collected once, so cyclic garbage from elsewhere (exceptions, tasks) cannot pile up. Every
  collection is timed.
- `LagSampler`: a timer due every `tick_s`; how late it fires is how long the loop was busy or stalled,
  whatever the cause (GC, a thread holding the GIL, a burst of work, CPU contention).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
import time
from typing import Any

# Seconds; the last bucket is +Inf.
LAG_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
LAG_TICK_S = 0.005
GEN0_THRESHOLD = 50_000  # young collections this many allocations apart (default 700): fewer pauses


class StallCounters:
    """Cyclic GC runs and pauses, and event-loop lag: plain attributes updated on the loop's thread."""

    def __init__(self) -> None:
        self.gc_collections = [0, 0, 0]  # by generation
        self.gc_pause_s = 0.0
        self.gc_pause_max_s = 0.0
        self.gc_pause_max_by_gen = [0.0, 0.0, 0.0]
        self.gc_collected = 0  # unreachable objects the cyclic GC found (cyclic garbage made)
        self.lag = [0] * (len(LAG_BUCKETS) + 1)  # how late the lag timer fired, per bucket
        self.loop_lag_max_s = 0.0
        self.lag_sum_s = 0.0
        self.lag_tick_s = LAG_TICK_S  # the sampler's period (LagSampler sets it)

    def observe_gc(self, generation: int, pause_s: float, collected: int) -> None:
        gen = min(generation, 2)
        self.gc_collections[gen] += 1
        self.gc_collected += collected
        self.gc_pause_s += pause_s
        if pause_s > self.gc_pause_max_s:
            self.gc_pause_max_s = pause_s
        if pause_s > self.gc_pause_max_by_gen[gen]:
            self.gc_pause_max_by_gen[gen] = pause_s

    def observe_lag(self, seconds: float) -> None:
        self.lag[bisect.bisect_left(LAG_BUCKETS, seconds)] += 1
        self.lag_sum_s += seconds
        if seconds > self.loop_lag_max_s:
            self.loop_lag_max_s = seconds

    def to_dict(self) -> dict[str, Any]:
        ticks = sum(self.lag)
        return {
            "gc_collections": list(self.gc_collections),
            "gc_pause_s": round(self.gc_pause_s, 6),
            "gc_pause_max_s": round(self.gc_pause_max_s, 6),
            "gc_collected": self.gc_collected,
            "loop_lag_ticks": ticks,
            "loop_lag_over_1ms": ticks - sum(self.lag[: bisect.bisect_right(LAG_BUCKETS, 0.001)]),
            "loop_lag_max_s": round(self.loop_lag_max_s, 6),
            "loop_lag_sum_s": round(self.lag_sum_s, 6),
        }

    def render(self, prefix: str) -> list[str]:
        """Prometheus text lines (`prefix`_gc_*, `prefix`_loop_lag_*)."""
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP {prefix}_{name} {help_}")
            lines.append(f"# TYPE {prefix}_{name} {kind}")
            for labels, value in samples:
                lines.append(
                    f"{prefix}_{name}{labels} {value:g}"
                    if isinstance(value, float)
                    else f"{prefix}_{name}{labels} {value}"
                )

        metric(
            "gc_collections_total",
            "counter",
            "Cyclic garbage collections, by generation.",
            [(f'{{generation="{g}"}}', n) for g, n in enumerate(self.gc_collections)],
        )
        metric("gc_pause_seconds_total", "counter", "Time spent in GC.", [("", round(self.gc_pause_s, 6))])
        metric("gc_pause_seconds_max", "gauge", "Longest GC pause.", [("", round(self.gc_pause_max_s, 6))])
        metric(
            "gc_pause_seconds_max_by_generation",
            "gauge",
            "Longest GC pause, by generation.",
            [(f'{{generation="{g}"}}', round(v, 6)) for g, v in enumerate(self.gc_pause_max_by_gen)],
        )
        metric("gc_collected_total", "counter", "Cyclic garbage collected.", [("", self.gc_collected)])
        metric("loop_lag_seconds_max", "gauge", "Longest event-loop stall seen.", [("", round(self.loop_lag_max_s, 6))])
        lines.append(f"# HELP {prefix}_loop_lag_seconds How late a timer due every {self.lag_tick_s:g} s fired.")
        lines.append(f"# TYPE {prefix}_loop_lag_seconds histogram")
        cumulative = 0
        for bound, n in zip((*LAG_BUCKETS, float("inf")), self.lag, strict=True):
            cumulative += n
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'{prefix}_loop_lag_seconds_bucket{{le="{le}"}} {cumulative}')
        lines.append(f"{prefix}_loop_lag_seconds_sum {round(self.lag_sum_s, 6):g}")
        lines.append(f"{prefix}_loop_lag_seconds_count {cumulative}")
        return lines


def settle_gc(gen0_threshold: int = GEN0_THRESHOLD) -> None:
    """Long-lived objects (tables, models, modules) out of the cyclic GC's passes, and collections less
    often (the request path allocates no cycles), so a collection does not stall requests."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0_threshold, 50, 100)


class GcControl:
    """`freeze_s`: freeze survivors this often (0: never); `full_s`: a full collection this often (0: never)."""

    def __init__(self, counters: StallCounters, freeze_s: float, full_s: float) -> None:
        self.counters = counters
        self.freeze_s = freeze_s
        self.full_s = full_s
        self.full_at = 0.0  # monotonic time of the next full pass
        self._t0 = 0.0
        self._closing = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        settle_gc()
        gc.callbacks.append(self.observed)
        self.full_at = time.monotonic() + self.full_s
        if self.freeze_s:
            loop.call_later(self.freeze_s, self.tick)

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self.observed)

    def observed(self, phase: str, info: dict[str, int]) -> None:
        """Time every cyclic GC run (a gc.callbacks hook)."""
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        self.counters.observe_gc(info.get("generation", 0), time.perf_counter() - self._t0, info.get("collected", 0))

    def tick(self) -> None:
        """Freeze what survived since the last tick; a full pass when one is due."""
        if self._closing:
            return
        now = time.monotonic()
        if self.full_s and now >= self.full_at:
            gc.unfreeze()
            gc.collect()
            self.full_at = now + self.full_s
        gc.freeze()
        asyncio.get_running_loop().call_later(self.freeze_s, self.tick)


class LagSampler:
    def __init__(self, counters: StallCounters, tick_s: float = LAG_TICK_S) -> None:
        self.counters = counters
        self.tick_s = counters.lag_tick_s = tick_s
        self._due = 0.0
        self._closing = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._due = loop.time() + self.tick_s
        loop.call_at(self._due, self._tick)

    def close(self) -> None:
        self._closing = True

    def _tick(self) -> None:
        if self._closing:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.counters.observe_lag(max(0.0, now - self._due))
        self._due = now + self.tick_s
        loop.call_at(self._due, self._tick)
