"""PERSON recogniser: candidate spans scored by a small learned model, with or without spaCy.

Every span that could be a name is a candidate: runs of capitalised words (initials and name particles
inside) and, on the NER path, spaCy's entities with a name-like label, cut to their words (spaCy's
en_core_web_sm alone finds 65% of the names in Presidio's synthetic sentences, and wrongly labels many as
ORG/GPE). Each candidate gets a few generic features (shape, position, US Census first-name / surname ranks,
common English word ranks, a surname-ending list, cue words either side and, on the NER path, spaCy's label),
and small gradient-boosted trees (LightGBM's text model inside a sha256-pinned JSON, never pickle) score it;
non-overlapping candidates at or above the threshold chosen on validation templates are names. Two models
share the candidates and the features: `SPACY_SCORER` (the NER path, `ner: auto|spacy`) and `FAST_SCORER`
(the default path, no spaCy: trained without the spaCy features). See docs/models/runtime-person.md.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tutela.core.features import require
from tutela.core.models import ModelCache, ModelFormat, ModelRef
from tutela.runtime.pii import DisjointSpans
from tutela.runtime.pii import _words as words

_PKG = "tutela.runtime.models"
GAZETTEER = ModelRef(
    "runtime-person-names",
    "1",
    "04491f97b9f4054f7439ed991a67b29775da15b58b2dc2d2eef7e211c7d9f33b",
    ModelFormat.JSON,
    _PKG,
    "person_names.json",
)
MODEL = ModelRef(
    "runtime-person-scorer",
    "1",
    "5c8173a4c6be8613e715299126ad70d2f63ff9ad3c71dcf1cff95237d3c97e9a",
    ModelFormat.JSON,
    _PKG,
    "person_scorer.json",
)
FAST_MODEL = ModelRef(
    "runtime-person-scorer-fast",
    "1",
    "66b39b9635990b65b5ed3f12f69bd4a236196af74cbf072bb27314e0a3d7a445",
    ModelFormat.JSON,
    _PKG,
    "person_scorer_fast.json",
)
MODEL_FORMAT = "tutela-person-lightgbm/1"
MAX_CANDIDATES = 4000  # per text (a long document has hundreds); past this the rest gets no PERSON from the model
MAX_TOKENS = 5  # tokens in one capitalised run

# a word: letters (any script), inner apostrophes / hyphens; an initial is one capital with an optional dot
_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*\.?")
# spaCy labels whose spans can be names (a name mislabelled as an organisation, a place, a work)
_NAMEISH = words("PERSON ORG GPE LOC FAC NORP PRODUCT WORK_OF_ART EVENT LANGUAGE")
_NAME_CHARS = re.compile(r"(?:[^\W\d_]|[ .'’-])+")
_PARTICLES = words("van von der den de del della da di du le la bin ibn al el dos das ter ten y")
_TITLES = words("mr mrs ms miss mx dr prof sir madam mister dame lord lady rev fr sr")
# capitalised words that open a sentence or a greeting, never a name: dropped from a run's start
_LEADERS = words(
    """the a an this that these those there here what when where which who whom whose why how please thank
    thanks hello hi hey dear yes no ok okay oh and but or so if then also my our your his her their its i we you
    he she it they is are was were do does did have has had can could will would should may might must let
    maybe unlike like after before since while during for from to in on at by with about as of not just
    ask tell email call send forward remind invite message text ping contact meet notify cc bcc welcome
    congratulations happy good morning regards sincerely best cheers greetings kind warm"""
)
_RUN_OPENERS = _LEADERS | _TITLES  # words dropped from the start of a capitalised run
_CALENDAR = words(
    """monday tuesday wednesday thursday friday saturday sunday january february march april may june july august
    september october november december today tomorrow yesterday christmas easter"""
)
_PERSON_BEFORE = words(
    """name named called call dear hi hello hey thanks thank sincerely regards signed by with from to ask tell
    told meet met contact cc author patient customer employee manager wife husband son daughter friend brother
    sister mother father mom dad boss colleague neighbor neighbour uncle aunt cousin user agent doctor nurse
    teacher mr mrs ms dr"""
)
_PLACE_BEFORE = words("in at near into across toward towards via visiting city street country")
_PERSON_AFTER = words(
    """said says wrote writes told asked lives lived works worked is was has had will would joined called sent
    replied answered thinks thought wants wanted likes loves"""
)
_ORG_AFTER = words(
    """inc ltd llc corp corporation company co group bank university college school hospital street st avenue
    ave road rd city county river airport hotel foundation institute ministry department"""
)
_SURNAME_ENDINGS = (
    "son", "sen", "ez", "es", "ski", "ska", "sky", "ová", "ova", "ov", "ev", "ić", "vić", "vich", "escu", "poulos",
    "idis", "akis", "ian", "yan", "stein", "berg", "mann", "er", "ek", "ák", "nen", "la", "ini", "elli", "etti",
    "ino", "ato", "oglu", "oğlu", "shvili", "dze", "moto", "yama", "kawa", "da", "ta", "wa", "ko",
)  # fmt: skip

# every feature `features` computes; each model names the ones it was trained on, in this order
FEATURES = (
    "ner_person_exact", "ner_person_overlap", "ner_org", "ner_place", "ner_norp", "ner_other", "ner_none",
    "tokens", "initials", "particles", "non_ascii", "all_caps", "sentence_start", "line_start",
    "first_is_first_name", "last_is_surname", "first_name_any", "surname_any", "gazetteer_fraction",
    "calendar", "surname_ending", "before_title", "before_person_cue", "before_place", "before_colon",
    "after_person_verb", "after_org_word", "after_possessive", "after_comma", "in_quotes", "max_token_len",
    "word_lower_elsewhere", "before_possessive", "after_colon", "digit_near", "whole_line", "ner_person_cue",
    "gazetteer_no_ner", "common_first", "common_last", "common_max",
    # added for the model without spaCy: context spaCy's label used to carry
    "before_determiner", "before_of", "before_lower", "before_common", "after_common", "line_caps",
)  # fmt: skip
_SPACY_ONLY = frozenset(f for f in FEATURES if f.startswith("ner_") or f == "gazetteer_no_ner")
SPACY_FEATURES = FEATURES[: FEATURES.index("common_max") + 1]  # what the NER path's model was trained on
FAST_FEATURES = tuple(f for f in FEATURES if f not in _SPACY_ONLY)
_DETERMINERS = words("the a an this that these those our your their its each every any no another")


@dataclass(frozen=True, slots=True)
class Candidate:
    start: int
    end: int
    labels: frozenset[str]  # spaCy labels of entities with exactly this span
    overlap_labels: frozenset[str]  # spaCy labels of entities overlapping it


class Gazetteer:
    """First names and surnames with a rank score in (0, 1]: 1 for the most frequent, falling with log rank."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        if spec.get("format") != "tutela-person-names/1":
            raise ValueError("not a tutela-person-names/1 file")
        self.first = _ranked(spec["first"])
        self.last = _ranked(spec["last"])
        self.common = _ranked(spec["common"])


def _ranked(names: Sequence[str]) -> dict[str, float]:
    scale = math.log(len(names) + 1)
    return {str(n): 1.0 - math.log(i + 1) / scale for i, n in enumerate(names)}


def candidates(text: str, ents: Sequence[tuple[str, int, int]], cut_runs: bool = False) -> list[Candidate]:
    """spaCy's name-like entities and capitalised word runs, deduplicated, at most MAX_CANDIDATES. With
    `cut_runs`, a word ending in 's ends its run and the 's is left out ("Emmie Ström's Cautionary
    Tales" gives "Emmie Ström"), and so does a word with a full stop that is no initial or title ("Tales. Ask
    James" is two runs), and a run of two or more words opening a sentence is also a candidate without its first
    word; the NER path's model was trained without these, beside spaCy's spans."""
    trimmed = _trimmed(text, ents)
    spans: dict[tuple[int, int], None] = dict.fromkeys((s, e) for _, s, e in trimmed)
    words = [m.span() for m in _WORD.finditer(text)]
    j = 0  # the word after the last run: runs never overlap
    for i in [i for i, (s, _) in enumerate(words) if text[s].isupper()]:  # the capitalised words open runs
        if i < j:
            continue
        if len(spans) >= MAX_CANDIDATES:
            break
        run = [i]
        j = i + 1
        while j < len(words) and len(run) < MAX_TOKENS:
            if cut_runs and _run_ends(text, words[j - 1]):
                break
            gap = text[words[j - 1][1] : words[j][0]]
            word = text[words[j][0] : words[j][1]]
            if gap not in (" ", "") or not (word[0].isupper() or word in _PARTICLES):
                break
            run.append(j)
            j += 1
        while run and text[words[run[-1]][0] : words[run[-1]][1]] in _PARTICLES:
            run.pop()
        k = 0
        while k < len(run) and _bare(text, words[run[k]]) in _RUN_OPENERS:
            k += 1
        if run[k:]:
            first, last = words[run[k]], words[run[-1]]
            end = last[1] - (1 if text[last[1] - 1] == "." and last[1] - last[0] > 2 else 0)
            if cut_runs and _possessive(text, last):
                end = last[1] - 2
            spans[(first[0], end)] = None
            if cut_runs and k == 0 and len(run) >= 2 and _opens_sentence(text, first[0]):
                # a sentence's first word may be an ordinary one ("Yesterday Maria Gonzalez"): the run without
                # it is a candidate too, and the model picks between the two
                spans[(words[run[k + 1]][0], end)] = None
    exact: dict[tuple[int, int], set[str]] = {}
    for lab, a, b in trimmed:
        exact.setdefault((a, b), set()).add(lab)
    # spaCy's entities do not overlap: sorted by start, their ends are sorted too, so the ones overlapping a
    # candidate are one slice, found by bisection (a long text has thousands)
    ordered = sorted(ents, key=lambda t: t[1])
    starts = [a for _, a, _ in ordered]
    ends = [b for _, _, b in ordered]
    out = []
    for s, e in list(spans)[:MAX_CANDIDATES]:
        over = ordered[bisect.bisect_right(ends, s) : bisect.bisect_left(starts, e)]
        out.append(Candidate(s, e, frozenset(exact.get((s, e), ())), frozenset(lab for lab, _, _ in over)))
    return out


def _opens_sentence(text: str, start: int) -> bool:
    head = text[max(0, start - 8) : start].rstrip(" \t\"'“(")
    return not head or head[-1] in ".!?:\n"


def _possessive(text: str, span: tuple[int, int]) -> bool:
    return span[1] - span[0] > 3 and text[span[1] - 2 : span[1]] in ("'s", "’s")


def _run_ends(text: str, span: tuple[int, int]) -> bool:
    """A possessive, or a full stop after a word that is no initial ("D.") or title ("Dr.")."""
    if _possessive(text, span):
        return True
    return text[span[1] - 1] == "." and span[1] - span[0] > 2 and _bare(text, span) not in _TITLES


def _trimmed(text: str, ents: Sequence[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """spaCy's name-like entities cut to their words: in tables and lists its spans can take in cell borders,
    numbers and padding; one holding anything but words, spaces, dots and apostrophes between its words (a line
    break, a cell border, a digit, "&") is dropped."""
    out = []
    for label, s, e in ents:
        if label not in _NAMEISH:
            continue
        words_in = list(_WORD.finditer(text, s, e))
        if not words_in:
            continue
        a, b = words_in[0].start(), words_in[-1].end()
        if not _NAME_CHARS.fullmatch(text, a, b):
            continue
        out.append((label, a, b - (1 if text[b - 1] == "." and b - a > 2 else 0)))
    return out


def _bare(text: str, span: tuple[int, int]) -> str:
    return text[span[0] : span[1]].rstrip(".").lower()


# the word before / after a span, a few non-word characters between (pos/endpos bound the search as a slice would)
_WORD_BEFORE = re.compile(r"([^\W\d_]+)[^\w\n]{0,3}$")
_WORD_AFTER = re.compile(r"[^\w\n]{0,3}([^\W\d_]+)")
LOWER_WORD = re.compile(r"\b[a-z]{2,}\b")  # a text's lower-case words (`features`' lower_words)


def _word_before(text: str, start: int) -> str:
    """The word before `start` as written (a few non-word characters between allowed, never a line break)."""
    m = _WORD_BEFORE.search(text, max(0, start - 40), start)
    return m.group(1) if m else ""


_LINE_WORD = re.compile(r"[^\W\d_]+")
CAPS_WINDOW = 60  # characters either side of a candidate, on its line, for the share of capitalised words


def _line_caps(text: str, start: int, end: int) -> float:
    """Share of capitalised words near the candidate on its line, the candidate left out (titles, headers and
    lists of products are mostly capitalised; prose is not)."""
    a = max(text.rfind("\n", 0, start) + 1, start - CAPS_WINDOW)
    b = text.find("\n", end)
    b = min(len(text) if b < 0 else b, end + CAPS_WINDOW)
    ws = _LINE_WORD.findall(text, a, start) + _LINE_WORD.findall(text, end, b)
    return sum(1 for w in ws if w[0].isupper()) / len(ws) if ws else 0.0


def _word_after(text: str, end: int) -> str:
    m = _WORD_AFTER.match(text, end, end + 40)
    return m.group(1).lower() if m else ""


def features(text: str, cand: Candidate, gaz: Gazetteer, lower_words: frozenset[str]) -> list[float]:
    span = text[cand.start : cand.end]
    toks = [t.rstrip(".") for t in span.split() if t.rstrip(".")]
    names = [t.lower() for t in toks if len(t) > 1 and t.lower() not in _PARTICLES]
    first_rank = gaz.first.get(names[0], 0.0) if names else 0.0
    last_rank = gaz.last.get(names[-1], 0.0) if names else 0.0
    in_gaz = [n for n in names if n in gaz.first or n in gaz.last]
    before = text[max(0, cand.start - 3) : cand.start]
    after = text[cand.end : cand.end + 3]
    head = text[: cand.start].rstrip(" \t")
    prev = _word_before(text, cand.start)
    wb, wa = prev.lower(), _word_after(text, cand.end)
    labels, over = cand.labels, cand.overlap_labels
    return [
        float("PERSON" in labels),
        float("PERSON" in over),
        float(bool(over & {"ORG"})),
        float(bool(over & {"GPE", "LOC", "FAC"})),
        float(bool(over & {"NORP", "LANGUAGE"})),
        float(bool(over - {"PERSON", "ORG", "GPE", "LOC", "FAC", "NORP", "LANGUAGE"})),
        float(not over),
        float(len(toks)),
        float(sum(1 for t in toks if len(t) == 1)),
        float(sum(1 for t in toks if t.lower() in _PARTICLES)),
        float(not span.isascii()),
        float(span.isupper() and len(span) > 1),
        float(not head or head[-1] in ".!?\"'"),
        float(not head or head[-1] == "\n"),
        first_rank,
        last_rank,
        max((gaz.first.get(n, 0.0) for n in names), default=0.0),
        max((gaz.last.get(n, 0.0) for n in names), default=0.0),
        len(in_gaz) / max(1, len(names)),
        float(any(n in _CALENDAR for n in names)),
        float(bool(names) and names[-1].endswith(_SURNAME_ENDINGS)),
        float(wb in _TITLES),
        float(wb in _PERSON_BEFORE),
        float(wb in _PLACE_BEFORE),
        float(":" in before),
        float(wa in _PERSON_AFTER),
        float(wa in _ORG_AFTER),
        float(after[:2] in ("'s", "’s")),
        float(after[:1] == ","),
        float(before[-1:] in "\"“'" and after[:1] in "\"”'" if before and after else False),
        float(max((len(t) for t in toks), default=0)),
        float(any(n in lower_words for n in names)),
        float(text[max(0, cand.start - 4) : cand.start].rstrip().endswith(("'s", "’s"))),
        float(after[:1] == ":"),
        float(any(ch.isdigit() for ch in text[max(0, cand.start - 6) : cand.start] + text[cand.end : cand.end + 6])),
        float((not head or head[-1] == "\n") and text[cand.end : cand.end + 1] in ("", "\n")),
        float("PERSON" in over and (wb in _PERSON_BEFORE or wb in _TITLES or wa in _PERSON_AFTER)),
        float(not over and bool(in_gaz)),
        gaz.common.get(names[0], 0.0) if names else 0.0,
        gaz.common.get(names[-1], 0.0) if names else 0.0,
        max((gaz.common.get(n, 0.0) for n in names), default=0.0),
        float(wb in _DETERMINERS),
        float(wb == "of"),
        float(prev[:1].islower()),
        gaz.common.get(wb, 0.0),
        gaz.common.get(wa, 0.0),
        _line_caps(text, cand.start, cand.end),
    ]


@dataclass(frozen=True, slots=True)
class ScorerModel:
    """A shipped scorer: its pinned file, the features it was trained on, and the extra bringing LightGBM."""

    ref: ModelRef
    features: tuple[str, ...]
    extra: str
    cut_runs: bool  # how its candidates were made (see `candidates`)


SPACY_SCORER = ScorerModel(MODEL, SPACY_FEATURES, "ner", False)  # the NER path: spaCy's labels among the features
FAST_SCORER = ScorerModel(FAST_MODEL, FAST_FEATURES, "runtime", True)  # the default path: no spaCy


class PersonScorer:
    """Gradient-boosted trees over the model's columns of `features` (LightGBM's text model inside the pinned
    JSON, with the validation-chosen threshold). `proba(rows)` scores all candidates of a text in one call."""

    def __init__(self, spec: Mapping[str, Any], model: ScorerModel = SPACY_SCORER) -> None:
        if spec.get("format") != MODEL_FORMAT or tuple(spec.get("features", ())) != model.features:
            raise ValueError(f"not a {MODEL_FORMAT} model for these features")
        lgb = require("lightgbm", model.extra)
        self.booster = lgb.Booster(model_str=str(spec["lightgbm"]))
        if self.booster.num_feature() != len(model.features):
            raise ValueError("the trees do not match the features")
        self.threshold = float(spec["threshold"])
        # `features` computes every feature; the model reads its own, by name
        self.columns = [FEATURES.index(f) for f in model.features]
        self.cut_runs = model.cut_runs

    def proba(self, rows: Sequence[Sequence[float]]) -> list[float]:
        if not rows:
            return []
        import numpy as np

        X = np.asarray(rows, dtype=np.float64)[:, self.columns]
        out: list[float] = self.booster.predict(X, num_threads=1).tolist()
        return out


def scored(
    text: str, ents: Sequence[tuple[str, int, int]], gaz: Gazetteer, scorer: PersonScorer
) -> list[tuple[Candidate, float]]:
    """Every candidate of `text` with its probability of being a name."""
    lower_words = frozenset(LOWER_WORD.findall(text))
    cands = candidates(text, ents, scorer.cut_runs)
    probs = scorer.proba([features(text, c, gaz, lower_words) for c in cands])
    return list(zip(cands, probs, strict=True))


def select(scored_cands: Sequence[tuple[Candidate, float]], threshold: float) -> list[tuple[int, int, float]]:
    """Non-overlapping candidates at or above `threshold`, the most probable first."""
    ranked = sorted(((c, p) for c, p in scored_cands if p >= threshold), key=lambda cp: (-cp[1], cp[0].start))
    free = DisjointSpans()
    return sorted((c.start, c.end, round(p, 4)) for c, p in ranked if free.add(c.start, c.end))


class PersonRecognizer:
    """`find(text, ents)` -> [(start, end, probability)]: non-overlapping names at or above the threshold.
    Cheap to construct; the gazetteer and the model load (pinned) on first use through the ModelCache."""

    def __init__(self, models: ModelCache, threshold: float | None = None, model: ScorerModel = SPACY_SCORER) -> None:
        self._models = models
        self._threshold = threshold
        self._model = model

    def _parts(self) -> tuple[Gazetteer, PersonScorer]:
        gaz = self._models.derived(GAZETTEER, "gazetteer", Gazetteer)
        scorer = self._models.derived(self._model.ref, "scorer", lambda spec: PersonScorer(spec, self._model))
        return gaz, scorer

    def scored(self, text: str, ents: Sequence[tuple[str, int, int]]) -> list[tuple[Candidate, float]]:
        gaz, scorer = self._parts()
        return scored(text, ents, gaz, scorer)

    def find(self, text: str, ents: Sequence[tuple[str, int, int]]) -> list[tuple[int, int, float]]:
        thr = self._threshold if self._threshold is not None else self._parts()[1].threshold
        return select(self.scored(text, ents), thr)


def no_entities(_text: str) -> list[tuple[str, int, int]]:
    """The default path's stand-in for spaCy: no entities, so the candidates are the capitalised runs."""
    return []


class PersonNer:
    """`entities(text)` for the PII detector: spaCy's entities (`ner`, any label; `no_entities` on the default
    path) rescored by the recogniser, returned as ("PERSON", start, end) for the names it keeps."""

    def __init__(self, ner: Callable[[str], Sequence[tuple[str, int, int]]], recognizer: PersonRecognizer) -> None:
        self._ner = ner
        self._recognizer = recognizer

    def entities(self, text: str) -> list[tuple[str, int, int]]:
        return [("PERSON", s, e) for s, e, _ in self._recognizer.find(text, self._ner(text))]
