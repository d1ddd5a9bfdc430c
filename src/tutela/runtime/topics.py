"""Custom topics: flag texts close in meaning to topic examples (all-MiniLM-L6-v2 cosine similarity).

Configured per deployment, off unless topics are given:

    detectors:
      runtime:
        - id: runtime.topics
          params:
            topics: {competitors: ["Compare us with AcmeCorp", "Is AcmeCorp cheaper?"],
                     medical_advice: ["What dose of ibuprofen should I take?"]}
            threshold: 0.6

The text is scored in the injection detector's units (sentences), so a topic mentioned once in a long
document is found; the best-matching unit is the span. Costs one encoder pass per unit (tens of ms each
on CPU): use it on prompts, or on short documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import Field

from tutela.core.detector import DetectorConfig, ScanContext
from tutela.core.findings import Finding, Severity, Span
from tutela.core.models import ModelCache
from tutela.runtime.detectors import normalized
from tutela.runtime.injection import windows
from tutela.runtime.subjects import TextSubject


class TopicConfig(DetectorConfig):
    topics: dict[str, tuple[str, ...]] = Field(default_factory=dict, description="topic name -> example texts")
    threshold: float = Field(0.6, ge=0.0, le=1.0, description="cosine similarity to report a topic")
    max_units: int = Field(16, ge=1, le=256)


class TopicDetector:
    id: ClassVar[str] = "runtime.topics"
    version: ClassVar[str] = "1"
    pillar: ClassVar[str] = "runtime"
    categories: ClassVar[tuple[str, ...]] = ("topic",)
    description: ClassVar[str] = "custom topics matched by sentence-embedding similarity to configured examples"
    Config: ClassVar[type[DetectorConfig]] = TopicConfig

    def __init__(self, config: Any, models: ModelCache) -> None:
        self.config = config
        self.models = models
        self._encoder: Any = None
        self._topics: list[tuple[str, Any]] | None = None

    def _encode(self, texts: list[str]) -> Any:
        if self._encoder is None:
            from tutela.runtime.encoder import WEIGHTS, MiniLM

            self._encoder = MiniLM(max_tokens=128, weights=lambda: self.models.get(WEIGHTS))
        return self._encoder.encode(texts)

    def _topic_vectors(self) -> list[tuple[str, Any]]:
        if self._topics is None:
            self._topics = [(name, self._encode(list(ex))) for name, ex in self.config.topics.items() if ex]
        return self._topics

    def detect(self, subject: TextSubject, ctx: ScanContext) -> Iterator[Finding]:
        if not self.config.topics:
            return
        view = normalized(subject, ctx).text
        units = windows(view.text, 300, 150, self.config.max_units)
        if not units:
            return
        vecs = self._encode([view.text[s:e] for s, e in units])
        for name, examples in self._topic_vectors():
            sims = vecs @ examples.T  # unit vectors: cosine similarity
            best = float(sims.max())
            if best < self.config.threshold:
                continue
            u = int(sims.max(axis=1).argmax())
            start, end = view.original_span(*units[u])
            yield Finding.of(
                match=f"{name}:{view.text[units[u][0] : units[u][1]]}",
                detector=self.id,
                detector_version=self.version,
                rule=f"topic.{name}",
                category="topic",
                severity=Severity.MEDIUM,
                confidence=round(min(1.0, max(0.0, best)), 4),
                message=f"text matches topic {name!r} (similarity {best:.2f})",
                span=Span(start, end),
                evidence={"topic": name, "similarity": round(best, 4)},
            )
