"""Budgets against denial of wallet: requests, tokens and cost per key and user per window.

Fixed windows, in memory (LocalWindows) or, with several worker processes, in a table they share
(shared_windows.py), so a caller's limits hold across the workers. A request is refused (429, with Retry-After) when
its key and user have used up the window's requests, tokens or cost; tokens and cost are counted
from the upstream's `usage` (or estimated at 4 characters a token when a stream reports none).
"""

from __future__ import annotations

import contextlib
import fnmatch
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from tutela.runtime.gateway.profiles import BudgetConfig, Price
from tutela.runtime.gateway.shared_windows import Window

MAX_WINDOWS = 100_000


class LocalWindows:
    """The windows of one process, in a dict (bounded: MAX_WINDOWS, expired ones evicted first)."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], Window] = {}

    @contextlib.contextmanager
    def hold(self, scope: str, who: str, now: float, window_s: float) -> Iterator[Window]:
        key = (scope, who)
        w = self._windows.get(key)
        if w is None or now - w.start >= window_s:
            if len(self._windows) >= MAX_WINDOWS:
                self._evict(now, window_s)
            w = self._windows[key] = Window(now)
        yield w

    def close(self) -> None:
        self._windows.clear()

    def _evict(self, now: float, window_s: float) -> None:
        old = [k for k, w in self._windows.items() if now - w.start >= window_s]
        for k in old or list(self._windows)[: MAX_WINDOWS // 10]:
            del self._windows[k]


class Windows(Protocol):
    def hold(self, scope: str, who: str, now: float, window_s: float) -> contextlib.AbstractContextManager[Window]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    retry_after: int


class Budgets:
    """`windows`: where the counters live (LocalWindows; SharedWindows when several workers serve)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, windows: Windows | None = None) -> None:
        self._clock = clock
        self.windows = windows or LocalWindows()

    def admit(self, scope: str, who: str, cfg: BudgetConfig) -> Refusal | None:
        """Count one request; refuse it when a limit of the window is used up."""
        if cfg.requests is None and cfg.tokens is None and cfg.cost is None:
            return None
        now = self._clock()
        with self.windows.hold(scope, who, now, cfg.window_s) as w:
            retry = max(1, int(cfg.window_s - (now - w.start)) + 1)
            if cfg.requests is not None and w.requests >= cfg.requests:
                return Refusal(f"rate limit: {cfg.requests} requests per {cfg.window_s:g} s", retry)
            if cfg.tokens is not None and w.tokens >= cfg.tokens:
                return Refusal(f"token budget used up: {cfg.tokens} tokens per {cfg.window_s:g} s", retry)
            if cfg.cost is not None and w.cost >= cfg.cost:
                return Refusal(f"cost budget used up: {cfg.cost:g} per {cfg.window_s:g} s", retry)
            w.requests += 1
        return None

    def spend(
        self,
        scope: str,
        who: str,
        cfg: BudgetConfig,
        *,
        model: str | None,
        prompt_tokens: int,
        completion_tokens: int,
        prices: Mapping[str, Price],
    ) -> float:
        """Add a request's usage; returns its cost."""
        price = price_for(model, prices)
        cost = (prompt_tokens * price.input_per_1k + completion_tokens * price.output_per_1k) / 1000
        if cfg.tokens is None and cfg.cost is None:
            return cost
        with self.windows.hold(scope, who, self._clock(), cfg.window_s) as w:
            w.tokens += prompt_tokens + completion_tokens
            w.cost += cost
        return cost


def price_for(model: str | None, prices: Mapping[str, Price]) -> Price:
    if model:
        if model in prices:
            return prices[model]
        for pattern, price in prices.items():
            if fnmatch.fnmatchcase(model, pattern):
                return price
    return prices.get("*", Price())
