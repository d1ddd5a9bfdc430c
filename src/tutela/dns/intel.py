"""Domain intelligence for other pillars: the `domain_intel` capability (tutela.capabilities).

The runtime pillar's URL detector asks it about hosts found in prompts and answers, through the
core registry, never by importing the DNS pillar. It answers with the DNS models' verdict on the
name (DGA, tunneling) and, when a dangling-DNS scan was saved, whether the name is dangling.
"""

from __future__ import annotations

import threading
from typing import Any

from tutela.core.models import ModelCache


class DomainIntel:
    """`assess(host)` -> None for nothing known, else {"score": 0..1, "category", "reasons"}."""

    def __init__(self, models: ModelCache | None = None) -> None:
        self._models = models or ModelCache()
        self._scorer: Any = None
        self._lock = threading.Lock()

    def _name_scorer(self) -> Any:
        if self._scorer is None:
            with self._lock:
                if self._scorer is None:
                    from tutela.dns.batch import NameScorer

                    self._scorer = NameScorer("all", self._models)
        return self._scorer

    def assess(self, host: str) -> dict[str, Any] | None:
        host = host.strip().rstrip(".").lower()
        if not host or host.replace(".", "").isdigit() or ":" in host:
            return None  # addresses are the URL detector's own business
        row = self._name_scorer().score_batch([host])[0]
        if not row.get("level"):
            return None
        return {"score": row["score"], "category": row["category"], "reasons": row["reasons"]}
