"""Train the prompt-injection detector's two tiers and measure their thresholds on validation.

  .venv/bin/python scripts/train_runtime_injection.py [--data /work/shared/data] [--skip-semantic]

Training data (train splits only): S-Labs train, neuralchemy core-train, the train templates of the
Presidio synthetic PII sentences (benign hard negatives), benign documents made of the train BIPIA
contexts, the AgentDojo environments and package READMEs/METADATA on this machine, and document
positives made by inserting BIPIA train instructions and S-Labs train attacks into training documents.
Validation (thresholds): S-Labs validation and the validation Presidio templates for `prompt`; the
validation BIPIA contexts and held-out documents, with and without the validation BIPIA instructions,
for `document`. Never used here: S-Labs test, neuralchemy validation, the multilingual attacks, the
test BIPIA contexts and instructions, the test Presidio templates (they are the evaluation's; the
splits are `tutela.runtime.datasets.split3` / `bipia_attacks_split`, by source).

Writes src/tutela/runtime/models/injection_fast.json, injection_semantic.json (the prompt head) and
injection_meta.json (thresholds, data, figures), then trains the document head on the new fast tier with
scripts/train_runtime_document_head.py (injection_document.json, meta["document"]), and prints the sha256
values to pin.
Needs scikit-learn at training time only.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import runtime_lexicon

from tutela.runtime import datasets as ds
from tutela.runtime.features import linear_score, text_features
from tutela.runtime.injection import windows
from tutela.runtime.normalize import normalize

OUT = ROOT / "src" / "tutela" / "runtime" / "models"
CACHE = Path(os.environ.get("TUTELA_TRAIN_CACHE", "/tmp/tutela-train-cache"))


def folded(text: str) -> str:
    return normalize(text).folded.text


def chunks(text: str, rng: random.Random, lo: int = 200, hi: int = 900) -> list[str]:
    out, pos = [], 0
    while pos < len(text):
        size = rng.randint(lo, hi)
        piece = text[pos : pos + size]
        if len(piece) >= 80:
            out.append(piece)
        pos += size
    return out


def local_documents(rng: random.Random) -> list[str]:
    """Benign technical prose and code from this machine: Python package METADATA and READMEs."""
    texts: list[str] = []
    site = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"))
    for meta in sorted(site.glob("*.dist-info/METADATA")):
        body = meta.read_text(encoding="utf-8", errors="replace").split("\n\n", 1)[-1]
        texts.extend(chunks(body[:30000], rng))
    for readme in sorted(Path("/usr/share/doc").glob("*/README*"))[:300]:
        try:
            raw = readme.read_bytes()
            body = gzip.decompress(raw).decode("utf-8", "replace") if readme.suffix == ".gz" else raw.decode()
        except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile):
            continue
        texts.extend(chunks(body[:20000], rng))
    return texts


def fit_fast(x_texts: list[str], y: list[int], c: float, min_df: int = 2) -> tuple[dict[str, float], float]:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import normalize as l2

    vec = CountVectorizer(analyzer=text_features, binary=True, min_df=min_df, dtype=np.float32)
    xm = l2(vec.fit_transform(x_texts))
    clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    clf.fit(xm, y)
    coef = clf.coef_[0]
    vocab = vec.get_feature_names_out()
    keep = np.argsort(-np.abs(coef))[:80000]
    weights = {str(vocab[i]): round(float(coef[i]), 4) for i in keep if abs(coef[i]) >= 5e-4}
    return weights, float(clf.intercept_[0])


def units(text: str) -> list[str]:
    return [text[s:e] for s, e in windows(text, 300, 150, 400)]


def unit_scores(texts: list[str], weights: dict[str, float], bias: float) -> np.ndarray:
    """The fast tier's score as the detector computes it: the best sentence unit of each text."""
    return np.array(
        [max((linear_score(text_features(u), weights, bias) for u in units(t)), default=0.0) for t in texts]
    )


def top_units(text: str, weights: dict[str, float], bias: float, k: int) -> list[str]:
    us = units(text) or [text]
    return sorted(us, key=lambda u: -linear_score(text_features(u), weights, bias))[:k]


def f1_at(scores: np.ndarray, y: np.ndarray, thr: float) -> float:
    pred = scores >= thr
    tp = float((pred & (y == 1)).sum())
    fp = float((pred & (y == 0)).sum())
    fn = float((~pred & (y == 1)).sum())
    return 2 * tp / max(1.0, 2 * tp + fp + fn)


def best_threshold(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    grid = np.unique(np.round(scores, 3))
    best = max(grid, key=lambda t: f1_at(scores, y, t))
    return float(best), f1_at(scores, y, best)


def threshold_for_fpr(benign_scores: np.ndarray, fpr: float) -> float:
    return float(np.quantile(benign_scores, 1.0 - fpr)) + 1e-6


TRAIN_TOKENS = 128  # the run-time encoder's limit for windows
_EMB: dict[str, np.ndarray] = {}


def embed_texts(texts: list[str], tag: str) -> np.ndarray:
    """Sentence embeddings from the run-time encoder (ONNX Runtime), cached under /tmp per text."""
    from tutela.runtime.encoder import MiniLM

    cache_file = CACHE / "embeddings.npz"
    if not _EMB and cache_file.is_file():
        with np.load(cache_file) as z:
            keys = z["keys"]
            vecs = z["vecs"]
        _EMB.update({str(k): v for k, v in zip(keys, vecs, strict=True)})
    key = [hashlib.sha256(t.encode()).hexdigest()[:24] for t in texts]
    todo = sorted({k: t for k, t in zip(key, texts, strict=True) if k not in _EMB}.items())
    if todo:
        t0 = time.time()
        vecs = MiniLM(max_tokens=TRAIN_TOKENS, threads=2).encode([t for _, t in todo], batch_size=64)
        print(f"  embedded {len(todo)} {tag} texts in {time.time() - t0:.0f}s", flush=True)
        _EMB.update({k: v for (k, _), v in zip(todo, vecs, strict=True)})
        CACHE.mkdir(parents=True, exist_ok=True)
        ks = sorted(_EMB)
        np.savez(cache_file, keys=np.array(ks), vecs=np.stack([_EMB[k] for k in ks]))
    return np.stack([_EMB[k] for k in key]) if texts else np.zeros((0, 384), np.float32)


def attack_units(text: str, a_start: int, a_end: int) -> tuple[list[str], list[str]]:
    """The scoring units of a document with an inserted attack: (units overlapping the attack, the others)."""
    pos, neg = [], []
    for s, e in windows(text, 300, 150, 400):
        overlap = min(e, a_end) - max(s, a_start)
        if overlap >= min(20, a_end - a_start):
            pos.append(text[s:e])
        elif overlap <= 0:
            neg.append(text[s:e])
    return pos, neg


def doc_units(text: str, limit: int = 64) -> list[str]:
    return [text[s:e] for s, e in windows(text, 300, 150, 400)][:limit]


def fit_head(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, metric: Any) -> tuple[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    cands = []
    for c in (1.0, 10.0):
        clf = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(x, y)
        cands.append((metric(clf), f"logreg C={c}", clf))
    mlp = MLPClassifier(hidden_layer_sizes=(256,), alpha=1e-3, max_iter=300, random_state=0, early_stopping=True)
    mlp.fit(x, y)
    cands.append((metric(mlp), "mlp 256", mlp))
    for m, name, _ in cands:
        print(f"  head {name}: validation {m:.4f}", flush=True)
    _, name, clf = max(cands, key=lambda c: c[0])
    return name, clf


def head_json(name: str, clf: Any) -> str:
    if name.startswith("mlp"):
        layers = [
            {"w": w.T.round(6).tolist(), "b": b.round(6).tolist()}
            for w, b in zip(clf.coefs_, clf.intercepts_, strict=True)
        ]
    else:
        layers = [{"w": clf.coef_.round(6).tolist(), "b": clf.intercept_.round(6).tolist()}]
    return json.dumps({"kind": name, "layers": layers}, separators=(",", ":"))


def recall_at(pos: np.ndarray, neg: np.ndarray, fpr: float) -> tuple[float, float]:
    thr = threshold_for_fpr(neg, fpr)
    return float((pos >= thr).mean()), thr


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--skip-semantic", action="store_true")
    ap.add_argument("--semantic-prompts", type=int, default=9000, help="prompts sampled to train the prompt head")
    ap.add_argument("--document-fpr", type=float, default=0.02, help="benign-document FPR the threshold allows")
    ap.add_argument("--fast-c", type=float, nargs="+", default=[16.0], help="regularisation of the fast tier")
    ap.add_argument("--pii-weight", type=int, default=4, help="copies of each PII hard negative in training")
    ap.add_argument(
        "--lexicon-per-language",
        type=int,
        default=2000,
        help="train prompts translated word by word into each of de/fr/es/it/pt (scripts/runtime_lexicon.py)",
    )
    args = ap.parse_args()
    base = ds.data_dir(args.data)
    rng = random.Random(1234)

    train = [(t, y) for t, y in ds.slabs("train", base)]
    train += [(r["text"], int(r["label"])) for r in ds.neuralchemy("train", base)]
    # the same train prompts, both classes, crudely translated (lexicon word by word): multilingual cues
    translated = runtime_lexicon.augment(train, args.lexicon_per_language) if args.lexicon_per_language else []
    slabs_train_attacks = [t for t, y in ds.slabs("train", base) if y == 1]
    slabs_val = ds.slabs("validation", base)
    pii_train = [r["full_text"] for r in ds.presidio_split(base, "train")]
    pii_val = [r["full_text"] for r in ds.presidio_split(base, "validation")]
    bipia_train = [c for _, c in ds.bipia_contexts_split(base, "train")]
    bipia_val = [c for _, c in ds.bipia_contexts_split(base, "validation")]
    inst_train = [t for _, t in ds.bipia_attacks_split(base, "train")]
    inst_val = [t for _, t in ds.bipia_attacks_split(base, "validation")]

    other = ds.agentdojo_documents(base) + local_documents(rng)
    other = [d for d in other if len(d) >= 80]
    other_train = [d for d in other if ds.split_of(d) == "train"]
    other_val = [d for d in other if ds.split_of(d) == "validation"]
    doc_train = bipia_train + other_train
    print(
        f"prompts train={len(train)}; PII sentences train={len(pii_train)} val={len(pii_val)}; BIPIA contexts "
        f"train={len(bipia_train)} val={len(bipia_val)}, instructions train={len(inst_train)} val={len(inst_val)}; "
        f"other documents train={len(other_train)} val={len(other_val)}",
        flush=True,
    )

    # documents with an instruction inserted: the units that carry it are positives, the rest benign
    def inserted(docs: list[str], attacks: list[str], n: int, r: random.Random) -> list[tuple[str, int, int]]:
        out = []
        for _ in range(n):
            out.append(ds.embed(r.choice(docs), r.choice(attacks), r))
        return out

    rng_ins = random.Random(99)
    ins_train = inserted(bipia_train, inst_train, 1500, rng_ins) + inserted(other_train, inst_train, 500, rng_ins)
    ins_train += inserted(doc_train, slabs_train_attacks, 1000, rng_ins)
    pos_units: list[str] = []
    for text, a, b in ins_train:
        pos_units.extend(folded(u) for u in attack_units(text, a, b)[0])
    neg_units = [u for d in bipia_train for u in doc_units(folded(d))]
    rng_units = random.Random(77)
    other_units = [u for d in other_train for u in doc_units(folded(d))]
    neg_units += rng_units.sample(other_units, min(len(other_units), 8000))
    print(f"document units: {len(pos_units)} positive, {len(neg_units)} benign", flush=True)

    # the PII sentences are few (one template family) but must not look like injection: weighted by copies
    pii_w = [folded(t) for t in pii_train] * args.pii_weight
    train_texts = [folded(t) for t, _ in train + translated] + pii_w
    train_y = [y for _, y in train + translated] + [0] * len(pii_w)
    fast_texts = train_texts + pos_units + neg_units
    fast_y = train_y + [1] * len(pos_units) + [0] * len(neg_units)

    val_texts = [folded(t) for t, _ in slabs_val]
    val_y = np.array([y for _, y in slabs_val])
    val_pii = [folded(t) for t in pii_val]
    rng_val = random.Random(2024)
    val_doc_benign = [folded(d) for d in bipia_val] + [
        folded(d) for d in rng_val.sample(other_val, min(400, len(other_val)))
    ]
    val_doc_attack = [folded(ds.embed(d, rng_val.choice(inst_val), rng_val)[0]) for d in val_doc_benign]
    print(f"fast tier: {len(fast_texts)} texts", flush=True)

    best: tuple[float, float, dict[str, float], float] | None = None
    for c in args.fast_c:
        weights, bias = fit_fast(fast_texts, fast_y, c)
        s = unit_scores(val_texts, weights, bias)
        thr, f1 = best_threshold(s, val_y)
        fpr_pii = float((unit_scores(val_pii, weights, bias) >= thr).mean())
        rec, _ = recall_at(unit_scores(val_doc_attack, weights, bias), unit_scores(val_doc_benign, weights, bias), 0.01)
        print(f"fast C={c}: F1={f1:.4f} at {thr:.3f}; PII FPR {fpr_pii:.3f}; doc recall@1% {rec:.3f}", flush=True)
        if best is None or f1 - fpr_pii > best[0]:
            best = (f1 - fpr_pii, c, weights, bias)
    assert best is not None
    _, c_fast, weights, bias = best
    OUT.mkdir(parents=True, exist_ok=True)
    fast_path = OUT / "injection_fast.json"
    fast_path.write_text(json.dumps({"bias": bias, "weights": weights}, separators=(",", ":"), sort_keys=True))

    meta: dict[str, Any] = {
        "fast": {"C": c_fast, "features": len(weights)},
        "train": {
            "prompts": len(train),
            "translated_prompts": len(translated),
            "pii_sentences": len(pii_train),
            "bipia_contexts": len(bipia_train),
            "bipia_instructions": len(inst_train),
            "documents": len(doc_train),
            "document_attack_units": len(pos_units),
            "document_benign_units": len(neg_units),
            "sources": "S-Labs train, neuralchemy core-train (also word-by-word translated into de/fr/es/it/pt by "
            "scripts/runtime_lexicon.py), Presidio synthetic train templates, BIPIA train contexts and instructions, "
            "AgentDojo environments, local package docs",
            # the local documents depend on what is installed on the machine: record which ones were used
            "documents_sha256": hashlib.sha256("\x1e".join(other).encode()).hexdigest(),
        },
        "validation": {
            "prompts": "S-Labs validation, Presidio validation templates",
            "documents": len(val_doc_benign),
            "bipia_instructions": len(inst_val),
        },
    }
    fs_val = unit_scores(val_texts, weights, bias)
    fs_pii = unit_scores(val_pii, weights, bias)
    thr_prompt_fast, f1_fast = best_threshold(fs_val, val_y)
    fs_doc_b = unit_scores(val_doc_benign, weights, bias)
    fs_doc_a = unit_scores(val_doc_attack, weights, bias)
    thr_doc_fast = max(thr_prompt_fast, threshold_for_fpr(fs_doc_b, args.document_fpr))
    meta["fast"].update(
        {
            "threshold_prompt": round(thr_prompt_fast, 4),
            "threshold_document": round(thr_doc_fast, 4),
            "validation_f1_prompt": round(f1_fast, 4),
            "validation_pii_fpr": round(float((fs_pii >= thr_prompt_fast).mean()), 4),
            "validation_document_recall": round(float((fs_doc_a >= thr_doc_fast).mean()), 4),
            "validation_document_fpr": round(float((fs_doc_b >= thr_doc_fast).mean()), 4),
        }
    )
    # cascade band (prompts): below `low` lie 1% of validation attacks, above `high` 0.5% of validation benign
    pos = fs_val[val_y == 1]
    neg = np.concatenate([fs_val[val_y == 0], fs_pii])
    low = min(float(np.quantile(pos, 0.01)), thr_prompt_fast)
    high = max(float(np.quantile(neg, 0.995)), thr_prompt_fast)
    both = np.concatenate([pos, neg])
    meta["cascade"] = {
        "low": round(low, 4),
        "high": round(high, 4),
        "validation_share_uncertain": round(float(np.mean((both >= low) & (both < high))), 4),
    }

    if not args.skip_semantic:
        # --- the prompt head ---------------------------------------------------------------------
        rng_sem = random.Random(5)
        # English prompts only: with half the translated prompts added, the head's validation F1 fell (0.958 ->
        # 0.950, PII sentences flagged 0.108 -> 0.090 at a higher threshold) and the calibrated cascade with it
        # (0.971 -> 0.947 at PII FPR <= 3%); the translated rows help the n-gram tier, not MiniLM
        sem_prompts = rng_sem.sample(train, min(len(train), args.semantic_prompts))
        x_p = embed_texts([folded(t) for t, _ in sem_prompts] + pii_w, "prompt-train")
        y_p = np.array([y for _, y in sem_prompts] + [0] * len(pii_w))
        x_val = embed_texts(val_texts, "val")
        x_pii = embed_texts(val_pii, "pii-val")

        def prompt_metric(clf: Any) -> float:
            s = clf.predict_proba(x_val)[:, 1]
            thr, f1 = best_threshold(s, val_y)
            return f1 - float((clf.predict_proba(x_pii)[:, 1] >= thr).mean())

        name, clf = fit_head(x_p, y_p, x_val, val_y, prompt_metric)
        (OUT / "injection_semantic.json").write_text(head_json(name, clf))
        sv = clf.predict_proba(x_val)[:, 1]
        sp = clf.predict_proba(x_pii)[:, 1]
        thr_p, f1_p = best_threshold(sv, val_y)
        meta["semantic"] = {
            "head": name,
            "threshold_prompt": round(thr_p, 4),
            "validation_f1_prompt": round(f1_p, 4),
            "validation_pii_fpr": round(float((sp >= thr_p).mean()), 4),
            "prompt_texts": len(y_p),
        }
        comb = (sv + fs_val) / 2
        thr_c, f1_c = best_threshold(comb, val_y)
        meta["combined"] = {
            "threshold_prompt": round(thr_c, 4),
            "validation_f1_prompt": round(f1_c, 4),
            "validation_pii_fpr": round(float(((sp + fs_pii) / 2 >= thr_c).mean()), 4),
        }

    meta_path = OUT / "injection_meta.json"
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    if not args.skip_semantic:
        # the document head takes the fast tier's unit scores as features: it is trained on the tier just written
        import train_runtime_document_head

        train_runtime_document_head.train(base)  # rewrites its model and meta["document"], at its own FPR
        meta = json.loads(meta_path.read_text())
    for p in sorted(OUT.glob("injection_*.json")):
        print(p.name, hashlib.sha256(p.read_bytes()).hexdigest(), f"{p.stat().st_size / 1e6:.2f} MB")
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
