"""The document head's context features, and task-like instructions planted in held-out documents."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from tutela.core.detector import ScanContext
from tutela.core.models import ModelCache
from tutela.runtime import datasets as ds
from tutela.runtime.document_context import WIDTH, unit_features
from tutela.runtime.injection import InjectionDetector
from tutela.runtime.subjects import TextSubject

MODELS = ModelCache()


def test_an_out_of_place_unit_stands_apart_from_its_document() -> None:
    rng = np.random.default_rng(0)
    topic = rng.normal(size=384)
    doc = [topic + 0.3 * rng.normal(size=384) for _ in range(5)] + [rng.normal(size=384)]  # the last is unrelated
    e = np.stack([v / np.linalg.norm(v) for v in doc])
    x = unit_features(e, [0.1] * 5 + [0.9])
    assert x.shape == (6, WIDTH)
    cos, nearest, single, fast, fast_rel = x[:, 768], x[:, 769], x[:, 770], x[:, 772], x[:, 773]
    assert cos[5] < cos[:5].min() and nearest[5] < nearest[:5].min()
    assert not single.any()
    assert fast[5] == np.float32(0.9) and abs(fast_rel[5] - 0.8) < 1e-6 and abs(fast_rel[0] + 0.16) < 1e-6
    np.testing.assert_allclose(x[:, 384:768], e - (e.sum(0) - e) / 5, atol=1e-6)


def test_a_one_unit_document_has_no_context() -> None:
    e = np.eye(384, dtype=np.float32)[:1]
    x = unit_features(e, [0.5])
    assert x[0, 770] == 1.0 and not x[0, 768:770].any()  # flagged; no cosine to an empty context
    np.testing.assert_array_equal(x[0, 384:768], e[0])  # the difference to an empty context is the unit itself


TASK_LIKE = {
    "Information Retrieval",
    "Language Translation",
    "Learning and Tutoring",
    "Programming Help",
    "Content Creation",
    "Malware Distribution",
}


def test_task_like_instructions_planted_in_held_out_documents_are_found(llm_data: Path) -> None:
    """The categories that read like ordinary requests, test split only (contexts and wordings never trained on).
    Before the context head these were found 0-8% of the time (docs/eval/runtime.md)."""
    det = InjectionDetector(InjectionDetector.Config(tier="cascade"), MODELS)  # type: ignore[call-arg]
    contexts = [c for _, c in ds.bipia_contexts_split(llm_data, "test")]
    attacks = [t for cat, t in ds.bipia_attacks_split(llm_data, "test") if cat in TASK_LIKE]
    rng = random.Random(5)
    picked = rng.sample(contexts, 30)
    hits = 0
    for i, c in enumerate(picked):
        text, _, _ = ds.embed(c, attacks[i % len(attacks)], rng)
        hits += bool(list(det.detect(TextSubject(text, "document"), ScanContext())))
    assert hits >= 12  # >= 40% of 30 (0-8% before)
