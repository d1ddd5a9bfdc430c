"""Custom topics by embedding similarity, with the real MiniLM encoder."""

from __future__ import annotations

import pytest

from tutela.core.detector import ScanContext
from tutela.core.models import ModelCache
from tutela.runtime.subjects import TextSubject
from tutela.runtime.topics import TopicDetector

TOPICS = {
    "medical_advice": ("What dose of ibuprofen should I take for a headache?", "Can I take antibiotics for the flu?"),
    "competitors": ("How does your product compare with AcmeCloud?", "Is AcmeCloud cheaper than you?"),
}


@pytest.mark.slow
def test_topics_match_paraphrases_and_not_unrelated_text() -> None:
    det = TopicDetector(TopicDetector.Config(topics=TOPICS, threshold=0.5), ModelCache())  # type: ignore[call-arg]
    text = "Thanks for the invoice. By the way, how many milligrams of paracetamol can I safely take per day?"
    found = list(det.detect(TextSubject(text), ScanContext()))
    assert [f.rule for f in found] == ["topic.medical_advice"]
    assert found[0].span is not None and "paracetamol" in text[found[0].span.start : found[0].span.end]
    assert list(det.detect(TextSubject("Please translate 'good morning' into French."), ScanContext())) == []


def test_no_topics_configured_is_free() -> None:
    det = TopicDetector(TopicDetector.Config(), ModelCache())
    assert list(det.detect(TextSubject("anything"), ScanContext())) == []
    assert det._encoder is None
