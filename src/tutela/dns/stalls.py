"""What stalls the sensor's event loop, kept off the data path and measured.

Any stall of the loop delays every query in flight, and at 5,000 queries/s a few of them set the
p99. Two parts:

- `GcControl`: the cyclic GC. The caches hold hundreds of thousands of container objects; left in
  the GC's generations, every collection traverses them (seconds of stall per generation-1 pass
  with a million distinct names), and even young-generation passes over what survived a few
  seconds took 20-290 ms at 5,000 queries/s on the shared 2-core machine: the p99 tail. The data
  path makes no cyclic garbage (`tutela_dns_gc_collected_total` stayed 0 over hundreds of young
  collections under load), so every `dns.gc_freeze_s` the survivors are frozen without a
  collection (`gc.freeze()` moves lists, O(1), and resets the young count, so the automatic
  collections do not come due at normal load; refcounting still frees frozen objects when a cache
  evicts them). Every `dns.gc_full_s` everything is unfrozen and collected once, so cyclic garbage
  from elsewhere (exceptions, TCP tasks) cannot pile up. Every collection is timed
  (`tutela_dns_gc_*`).
- `LagSampler`: a timer due every LAG_TICK_S; how late it fires is how long the loop was busy or
  stalled, whatever the cause (GC, a thread holding the GIL, a burst of detector work, CPU
  contention): `tutela_dns_loop_lag_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time

from tutela.dns.metrics import LAG_TICK_S, Metrics
from tutela.dns.settings import DnsSettings


def settle_gc() -> None:
    """Lists, tables, models and the PSL are long-lived: keep them out of the cyclic GC's passes,
    and collect less often (the hot path allocates no cycles), so a collection does not stall queries."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


class GcControl:
    def __init__(self, settings: DnsSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.full_at = 0.0  # monotonic time of the next full pass
        self._t0 = 0.0
        self._closing = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        settle_gc()
        gc.callbacks.append(self.observed)
        self.full_at = time.monotonic() + self.settings.gc_full_s
        if self.settings.gc_freeze_s:
            loop.call_later(self.settings.gc_freeze_s, self.tick)

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self.observed)

    def observed(self, phase: str, info: dict[str, int]) -> None:
        """Time every cyclic GC run (a gc.callbacks hook)."""
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        pause = time.perf_counter() - self._t0
        m = self.metrics
        gen = min(info.get("generation", 0), 2)
        m.gc_collections[gen] += 1
        m.gc_collected += info.get("collected", 0)
        m.gc_pause_s += pause
        if pause > m.gc_pause_max_s:
            m.gc_pause_max_s = pause
        if pause > m.gc_pause_max_by_gen[gen]:
            m.gc_pause_max_by_gen[gen] = pause

    def tick(self) -> None:
        """Freeze what survived since the last tick; a full pass when one is due."""
        if self._closing:
            return
        now = time.monotonic()
        if self.settings.gc_full_s and now >= self.full_at:
            gc.unfreeze()
            gc.collect()
            self.full_at = now + self.settings.gc_full_s
        gc.freeze()
        asyncio.get_running_loop().call_later(self.settings.gc_freeze_s, self.tick)


class LagSampler:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._due = 0.0
        self._closing = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._due = loop.time() + LAG_TICK_S
        loop.call_at(self._due, self._tick)

    def close(self) -> None:
        self._closing = True

    def _tick(self) -> None:
        if self._closing:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.metrics.observe_lag(max(0.0, now - self._due))
        self._due = now + LAG_TICK_S
        loop.call_at(self._due, self._tick)
