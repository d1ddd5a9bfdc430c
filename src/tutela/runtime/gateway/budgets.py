"""Budgets against denial of wallet: requests, tokens and cost per key and user per window.

Fixed windows, in memory, per gateway process. A request is refused (429, with Retry-After) when
its key and user have used up the window's requests, tokens or cost; tokens and cost are counted
from the upstream's `usage` (or estimated at 4 characters a token when a stream reports none).
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Mapping
from dataclasses import dataclass

from tutela.runtime.gateway.profiles import BudgetConfig, Price

MAX_WINDOWS = 100_000


@dataclass
class _Window:
    start: float
    requests: int = 0
    tokens: int = 0
    cost: float = 0.0


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    retry_after: int


class Budgets:
    def __init__(self, clock: object = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[tuple[str, str], _Window] = {}

    def _window(self, scope: str, who: str, cfg: BudgetConfig) -> _Window:
        now = self._clock()  # type: ignore[operator]
        key = (scope, who)
        w = self._windows.get(key)
        if w is None or now - w.start >= cfg.window_s:
            if len(self._windows) >= MAX_WINDOWS:
                self._evict(now, cfg.window_s)
            w = self._windows[key] = _Window(start=now)
        return w

    def _evict(self, now: float, window_s: float) -> None:
        old = [k for k, w in self._windows.items() if now - w.start >= window_s]
        for k in old or list(self._windows)[: MAX_WINDOWS // 10]:
            del self._windows[k]

    def admit(self, scope: str, who: str, cfg: BudgetConfig) -> Refusal | None:
        """Count one request; refuse it when a limit of the window is used up."""
        if cfg.requests is None and cfg.tokens is None and cfg.cost is None:
            return None
        w = self._window(scope, who, cfg)
        retry = max(1, int(cfg.window_s - (self._clock() - w.start)) + 1)  # type: ignore[operator]
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
        w = self._window(scope, who, cfg)
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
