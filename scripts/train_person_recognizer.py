"""Train a PERSON scorer: the NER path's (`--model spacy`, src/tutela/runtime/models/person_scorer.json) or
the default path's, without spaCy (`--model fast`, person_scorer_fast.json).

  .venv/bin/python scripts/train_person_recognizer.py --model fast [--data /work/shared/data] [--synthetic 800]

Data: Presidio's synthetic sentences split by template (`datasets.split3`): candidates of the *train*
templates are the training examples, with our own synthetic sentences (below: our templates, US Census names
from the shipped gazetteer's source list, including surnames past the gazetteer's cut, and hand-written
non-name capitalised words: cities, products, organisations, weekdays). Validation templates choose the
regularisation and the threshold (by PERSON F1 of the whole PII detector with the NER path); the test templates
are only reported. The fast model sees the same candidates without spaCy's entities (capitalised runs only)
and its own columns of the features (`person.FAST_FEATURES`: none of spaCy's). Seeds are fixed (sentences 13,
LightGBM 7, one thread, deterministic); the sha256 of each input file is recorded in the model's training
notes. spaCy entities are cached under $TUTELA_TRAIN_CACHE (default /tmp), outside the repository.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tutela.core.models import ModelCache
from tutela.runtime import datasets as ds
from tutela.runtime.evaluation import pii_overlap_scores
from tutela.runtime.ner import SpacyNer
from tutela.runtime.person import (
    FAST_SCORER,
    FEATURES,
    GAZETTEER,
    LOWER_WORD,
    MODEL_FORMAT,
    SPACY_SCORER,
    Gazetteer,
    PersonScorer,
    ScorerModel,
    candidates,
    features,
    scored,
    select,
)
from tutela.runtime.pii import analyze

MODELS = {"spacy": SPACY_SCORER, "fast": FAST_SCORER}
CENSUS_LAST = Path(os.environ.get("TUTELA_CENSUS_NAMES", "/tmp/pipnames/names-0.3.0/names")) / "dist.all.last"

# --- our own synthetic sentences ------------------------------------------------------------------------

POSITIVE = (
    "Please forward the invoice to {full} before {day}.",
    "{full} called about the delivery to {city}.",
    "Hi {first}, can you review the {product} rollout?",
    "Dear {title} {last},\nthank you for your letter.",
    "Meeting notes: {full}, {full2} and {first3} attended.",
    "I spoke with {first} yesterday and she agreed.",
    "The account belongs to {full}, who moved to {city} last year.",
    "Signed,\n{full}",
    "Best regards,\n{first} {initial}. {last}",
    "Customer name: {full}\nOrder: {product}",
    "Can you draft an email to {title} {full} about the {org} contract?",
    "My colleague {full} works at {org} in {city}.",
    "Ask {first} whether the {product} license was renewed.",
    "{last} said the numbers from {org} look wrong.",
    "According to {full}, the {org} office in {city} closes on {day}.",
    "Patient {full} was admitted on {day}.",
    "Summarise this thread between {first} and {first2}.",
    "User: my name is {full} and I can't log in.",
    "{full} ({city}) won the award.",
    "Thanks {first}!",
    "cc: {full}, {full2}",
    "The book by {full} was published in {city}.",
    "Tell {first} {last} that the {product} demo moved to {day}.",
    "Is {first} still the manager of the {city} branch?",
    "From: {full}\nTo: {full2}\nSubject: {product} update",
    "Our founders, {last}, {last2} and {last3}, met at {org}.",
    "Have you heard from {title} {last} since {day}?",
    "{first}'s laptop needs the {product} update.",
    "I am writing on behalf of {full}.",
    "Contact person: {first} {last}, {org}",
)
NEGATIVE = (
    "The {product} release is scheduled for {day} in {city}.",
    "We moved the servers from {city} to {city2} last {month}.",
    "Please compare {product} and {product2} for our team.",
    "{org} reported higher revenue in {month}.",
    "Book a flight to {city} on {day}, returning {day2}.",
    "What is the capital of {country}?",
    "The {org} office in {city} is closed on {day}.",
    "Install {product} on Windows and macOS.",
    "Our {month} newsletter covers {product}, {product2} and the {city} meetup.",
    "Summarise the report from {org} about {country}.",
    "Is {product} compatible with {product2}?",
    "Translate this into {language}: the weather in {city} is nice.",
    "Send the Q3 Budget Review to the Finance Team by {day}.",
    "The {city} Marathon starts at Central Park.",
    "Upgrade to {product} Pro before {month} {n}.",
    "{language} and {language2} are spoken in {country}.",
    "The Annual General Meeting of {org} takes place in {city}.",
    "Error: Connection Refused while calling the Payment Service.",
)
TITLES = ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "June", "July", "August", "September", "October", "November")
CITIES = (
    "Chicago", "Boston", "Denver", "Seattle", "Austin", "Portland", "London", "Paris", "Berlin", "Madrid", "Lisbon",
    "Vienna", "Prague", "Warsaw", "Oslo", "Dublin", "Toronto", "Sydney", "Tokyo", "Nairobi", "Lagos", "Mumbai",
    "Jackson", "Springfield", "Charlotte", "Victoria", "Florence", "Jordan", "Georgia", "Austin", "Lincoln", "Houston",
)  # fmt: skip
COUNTRIES = ("France", "Germany", "Brazil", "Kenya", "Japan", "Canada", "Poland", "Norway", "Chile", "India")
LANGUAGES = ("French", "German", "Spanish", "Polish", "Japanese", "Swahili", "Portuguese", "Hindi")
PRODUCTS = (
    "Slack", "Jira", "Excel", "PowerPoint", "Kubernetes", "Docker", "Salesforce", "Tableau", "Photoshop", "Zoom",
    "Outlook", "Android", "iPhone", "Chrome", "Firefox", "Windows Server", "Office 365", "Google Drive", "Notion",
    "Figma", "Terraform", "Postgres", "Redis", "Kafka", "Spark", "Apple Watch", "Galaxy Note", "Model Y",
)  # fmt: skip
ORGS = (
    "Acme Corp", "Globex", "Initech", "Northwind Traders", "Contoso", "Umbrella Health", "Blue Ridge Bank",
    "Stark Industries", "the Red Cross", "General Motors", "Deloitte", "Morgan Stanley", "Ford", "Wells Fargo",
    "Harvard University", "the World Bank", "Siemens", "Nestle", "Johnson & Johnson", "Procter & Gamble",
)  # fmt: skip


def _census(path: Path, limit: int | None = None) -> list[str]:
    rows = [ln.split()[0].title() for ln in path.read_text(encoding="ascii").splitlines() if ln.strip()]
    return rows[:limit] if limit else rows


def synthetic(rng: random.Random, n: int, gaz_spec: dict[str, Any]) -> list[tuple[str, list[tuple[int, int]]]]:
    """(text, person spans): our templates filled with Census names and hand-written non-name words. Half the
    surnames come from past the gazetteer's cut, so the model also meets names the gazetteer lacks."""
    firsts = [n.title() for n in gaz_spec["first"][:3000]]
    lasts_in = [n.title() for n in gaz_spec["last"]]
    lasts_out = _census(CENSUS_LAST)[len(lasts_in) :] if CENSUS_LAST.exists() else lasts_in
    out = []
    for i in range(n):
        tpl = rng.choice(POSITIVE if i % 3 else NEGATIVE)
        spans: list[tuple[int, int]] = []
        text = ""
        pos = 0
        while True:
            a = tpl.find("{", pos)
            if a < 0:
                text += tpl[pos:]
                break
            b = tpl.index("}", a)
            text += tpl[pos:a]
            key = tpl[a + 1 : b].rstrip("0123456789")
            last = rng.choice(lasts_out if rng.random() < 0.5 else lasts_in)
            value = {
                "full": f"{rng.choice(firsts)} {last}",
                "first": rng.choice(firsts),
                "last": last,
                "initial": rng.choice("ABCDEFGHJKLMNPRSTW"),
                "title": rng.choice(TITLES),
                "day": rng.choice(DAYS),
                "month": rng.choice(MONTHS),
                "city": rng.choice(CITIES),
                "country": rng.choice(COUNTRIES),
                "language": rng.choice(LANGUAGES),
                "product": rng.choice(PRODUCTS),
                "org": rng.choice(ORGS),
                "n": str(rng.randint(1, 28)),
            }[key]
            if key in ("full", "first", "last", "initial"):
                spans.append((len(text), len(text) + len(value)))
            text += value
            pos = b + 1
        # "{first} {initial}. {last}" is one name: merge person spans separated only by spaces and dots
        merged: list[tuple[int, int]] = []
        for s, e in spans:
            if merged and text[merged[-1][1] : s].strip(" .") == "":
                merged[-1] = (merged[-1][0], e)
            else:
                merged.append((s, e))
        out.append((text, merged))
    return out


# --- training ---------------------------------------------------------------------------------------------


def spacy_ents(texts: list[str], tag: str) -> list[list[tuple[str, int, int]]]:
    cache = Path(os.environ.get("TUTELA_TRAIN_CACHE", "/tmp")) / f"person_ents_{tag}.json"
    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()
    if cache.exists():
        data = json.loads(cache.read_text())
        if data["key"] == key:
            return [[(str(lab), int(a), int(b)) for lab, a, b in row] for row in data["ents"]]
    ner = SpacyNer()
    ents = [ner.entities(t) for t in texts]
    cache.write_text(json.dumps({"key": key, "ents": ents}))
    return ents


def examples(
    texts: list[str],
    golds: list[list[tuple[int, int]]],
    ents: list[list[tuple[str, int, int]]],
    gaz: Gazetteer,
    model: ScorerModel,
) -> tuple[np.ndarray, np.ndarray]:
    X, y = [], []
    for text, gold, es in zip(texts, golds, ents, strict=True):
        lower_words = frozenset(LOWER_WORD.findall(text))
        for c in candidates(text, es, model.cut_runs):
            X.append(features(text, c, gaz, lower_words))
            y.append(int(_positive(text, c.start, c.end, gold, model.cut_runs)))
    cols = [FEATURES.index(f) for f in model.features]
    return np.asarray(X, dtype=np.float64).reshape(-1, len(FEATURES))[:, cols], np.asarray(y)


def _positive(text: str, start: int, end: int, gold: list[tuple[int, int]], tight: bool) -> bool:
    """A candidate overlapping a name; `tight` (the fast model, whose candidates include a sentence-opening run
    with and without its first word): every word of it inside a name, so the model learns the tighter span."""
    if not tight:
        return any(start < e and s < end for s, e in gold)
    inside = [False] * (end - start)
    for s, e in gold:
        for i in range(max(s, start), min(e, end)):
            inside[i - start] = True
    words = [m for m in re.finditer(r"\w+", text[start:end])]
    return bool(words) and all(any(inside[m.start() : m.end()]) for m in words)


def gold_person(row: dict[str, Any]) -> list[tuple[int, int]]:
    return [(s["start_position"], s["end_position"]) for s in row["spans"] if s["entity_type"] == "PERSON"]


def person_f1(
    rows: list[dict[str, Any]], ents: list[list[tuple[str, int, int]]], scorer: PersonScorer, gaz: Gazetteer, thr: float
) -> dict[str, float | int]:
    """PERSON precision/recall/F1 of the PII heuristics plus the recogniser at `thr` (what the detector reports)."""
    preds = []
    for r, es in zip(rows, ents, strict=True):
        text = r["full_text"]
        kept = [("PERSON", s, e) for s, e, _ in select(scored(text, es, gaz, scorer), thr)]
        ms = analyze(text, ("PERSON",), 0.5, ner=lambda _t, k=kept: k)  # type: ignore[misc]
        preds.append([(m.entity, m.start, m.end) for m in ms])
    return pii_overlap_scores(rows, preds)["PERSON"]


def fit(X: np.ndarray, y: np.ndarray, model: ScorerModel, leaves: int, rounds: int) -> dict[str, Any]:
    import lightgbm as lgb

    params = {"objective": "binary", "num_leaves": leaves, "learning_rate": 0.05, "min_data_in_leaf": 10,
              "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1, "seed": 7, "verbose": -1,
              "num_threads": 1, "deterministic": True, "force_row_wise": True}  # fmt: skip
    booster = lgb.train(params, lgb.Dataset(X, y, feature_name=list(model.features)), rounds)
    return {
        "format": MODEL_FORMAT,
        "features": list(model.features),
        "threshold": 0.5,
        "lightgbm": booster.model_to_string(),
    }


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--synthetic", type=int, default=800)
    ap.add_argument("--model", choices=sorted(MODELS), default="spacy")
    args = ap.parse_args()
    model = MODELS[args.model]
    out = model.ref.path()
    base = ds.data_dir(args.data)
    rows = ds.presidio_synth(base)
    split = {
        s: [r for r in rows if ds.split3(f"template:{r['template_id']}") == s] for s in ("train", "validation", "test")
    }
    gaz_spec = ModelCache().get(GAZETTEER)
    gaz = Gazetteer(gaz_spec)
    if args.model == "spacy":
        ents = {s: spacy_ents([r["full_text"] for r in rs], s) for s, rs in split.items()}
    else:  # the default path: no spaCy, the candidates are the capitalised runs
        ents = {s: [[] for _ in rs] for s, rs in split.items()}
    texts = [r["full_text"] for r in split["train"]]
    golds = [gold_person(r) for r in split["train"]]
    X, y = examples(texts, golds, ents["train"], gaz, model)
    syn = synthetic(random.Random(13), args.synthetic, gaz_spec)
    if syn:
        syn_texts = [t for t, _ in syn]
        syn_ents = spacy_ents(syn_texts, f"synthetic{args.synthetic}") if args.model == "spacy" else [[]] * len(syn)
        Xs, ys = examples(syn_texts, [g for _, g in syn], syn_ents, gaz, model)
        X, y = np.vstack([X, Xs]), np.concatenate([y, ys])
    print(f"train candidates {len(y)} ({int(y.sum())} positive; {len(syn)} synthetic sentences)", flush=True)
    best: tuple[float, tuple[int, int], float, dict[str, Any]] | None = None
    for c in ((7, 100), (15, 200), (15, 400), (31, 200)):
        spec = fit(X, y, model, *c)
        scorer = PersonScorer(spec, model)
        for thr in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8):
            v = person_f1(split["validation"], ents["validation"], scorer, gaz, thr)
            print(f"leaves, rounds={c} thr={thr}: validation PERSON {v}", flush=True)
            if best is None or float(v["f1"]) > best[0]:
                best = (float(v["f1"]), c, thr, spec)
    assert best is not None
    f1, c, thr, spec = best
    spec["threshold"] = thr
    spec["training"] = {
        "data": "Presidio synthetic sentences, train templates (datasets.split3) + our synthetic sentences",
        "train_candidates": len(y),
        "synthetic_sentences": len(syn),
        "num_leaves, rounds": list(c),
        "validation_person": person_f1(split["validation"], ents["validation"], PersonScorer(spec, model), gaz, thr),
        "seeds": {"synthetic": 13, "lightgbm": 7},
        "inputs_sha256": {
            "presidio_synth_dev.json": sha256_of(base / "pii" / "presidio_synth_dev.json"),
            "census dist.all.last": sha256_of(CENSUS_LAST),
            "person_names.json": GAZETTEER.sha256,
        },
    }
    out.write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    if os.environ.get("TUTELA_SHOW_TEST") == "1":  # the test templates: looked at once, at the end
        test = person_f1(split["test"], ents["test"], PersonScorer(spec, model), gaz, thr)
        print(f"test templates PERSON {test}")
    print(f"chose leaves, rounds={c} thr={thr} (validation F1 {f1})")
    print(out, "sha256", hashlib.sha256(out.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()
