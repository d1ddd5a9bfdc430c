"""Train the prompt-injection detector's two tiers and measure their thresholds on validation.

  .venv/bin/python scripts/train_runtime_injection.py [--data /work/shared/data] [--skip-semantic]

Training data (train splits only): S-Labs train, neuralchemy core-train, benign documents made of
the AgentDojo environments and of package READMEs/METADATA on this machine (technical prose and
code), and document positives made by inserting S-Labs train attacks into training documents.
Validation (thresholds): S-Labs validation for `prompt`; held-out documents with and without
S-Labs validation attacks for `document`. Never used here: S-Labs test, neuralchemy validation,
the multilingual attacks, BIPIA, Presidio sentences (they are the evaluation's).

Writes src/tutela/runtime/models/injection_fast.json, injection_semantic.json and
injection_meta.json (thresholds, data, figures), then prints the sha256 values to pin.
Needs scikit-learn at training time only.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tutela.runtime import datasets as ds
from tutela.runtime.features import linear_score, text_features
from tutela.runtime.injection import windows
from tutela.runtime.normalize import normalize

OUT = ROOT / "src" / "tutela" / "runtime" / "models"
CACHE = Path("/tmp/tutela-train-cache")


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


TRAIN_TOKENS = 96  # training texts are truncated here (run time: 128); prompts are shorter anyway


def embed_texts(texts: list[str], tag: str) -> np.ndarray:
    """Sentence embeddings from the run-time encoder (numpy), cached under /tmp by content."""
    from tutela.runtime.encoder import MiniLM

    key = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()[:16]
    path = CACHE / f"{tag}-{key}.npy"
    if path.is_file():
        return np.load(path)
    t0 = time.time()
    vecs = MiniLM(max_tokens=TRAIN_TOKENS).encode(texts, batch_size=32)
    print(f"  embedded {len(texts)} {tag} texts in {time.time() - t0:.0f}s", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--skip-semantic", action="store_true")
    ap.add_argument("--semantic-prompts", type=int, default=6000, help="prompts sampled to train the semantic head")
    args = ap.parse_args()
    base = ds.data_dir(args.data)
    rng = random.Random(1234)

    train = [(t, y) for t, y in ds.slabs("train", base)]
    train += [(r["text"], int(r["label"])) for r in ds.neuralchemy("train", base)]
    slabs_train_attacks = [t for t, y in ds.slabs("train", base) if y == 1]
    slabs_val = ds.slabs("validation", base)
    slabs_val_attacks = [t for t, y in slabs_val if y == 1]

    docs = ds.agentdojo_documents(base) + local_documents(rng)
    docs = [d for d in docs if len(d) >= 80]
    doc_train = [d for d in docs if ds.split_of(d) == "train"]
    doc_val = [d for d in docs if ds.split_of(d) == "validation"]
    print(f"prompts train={len(train)}; documents train={len(doc_train)} validation={len(doc_val)}", flush=True)
    # documents: benign chunks, and the same with an attack inserted (indirect injection)
    doc_pos = [ds.embed(d, rng.choice(slabs_train_attacks), rng)[0] for d in rng.sample(doc_train, len(doc_train) // 3)]
    train_texts = [folded(t) for t, _ in train] + [folded(d) for d in doc_train] + [folded(d) for d in doc_pos]
    train_y = [y for _, y in train] + [0] * len(doc_train) + [1] * len(doc_pos)

    # documents are scored sentence by sentence at run time (tutela.runtime.injection.windows): teach the
    # fast tier what benign document sentences look like (a separate rng keeps the semantic sample stable)
    rng_units = random.Random(77)
    unit_texts = [u for d in doc_train for u in units(folded(d))]
    unit_texts = rng_units.sample(unit_texts, min(len(unit_texts), 12000))
    fast_texts = train_texts + unit_texts
    fast_y = train_y + [0] * len(unit_texts)

    val_texts = [folded(t) for t, _ in slabs_val]
    val_y = np.array([y for _, y in slabs_val])
    val_doc_benign = [folded(d) for d in doc_val]
    val_doc_attack = [folded(ds.embed(d, rng.choice(slabs_val_attacks), rng)[0]) for d in doc_val]
    print(f"fast tier: {len(fast_texts)} texts ({len(unit_texts)} document sentences)", flush=True)

    best: tuple[float, float, dict[str, float], float] | None = None
    for c in (4.0, 16.0):
        weights, bias = fit_fast(fast_texts, fast_y, c)
        s = unit_scores(val_texts, weights, bias)
        thr, f1 = best_threshold(s, val_y)
        fpr_doc = float((unit_scores(val_doc_benign, weights, bias) >= thr).mean())
        print(f"fast C={c}: validation F1={f1:.4f} at {thr:.3f}; document FPR there {fpr_doc:.3f}", flush=True)
        if best is None or f1 > best[0]:
            best = (f1, c, weights, bias)
    assert best is not None
    _, c_fast, weights, bias = best
    OUT.mkdir(parents=True, exist_ok=True)
    fast_path = OUT / "injection_fast.json"
    fast_path.write_text(json.dumps({"bias": bias, "weights": weights}, separators=(",", ":"), sort_keys=True))

    meta: dict[str, Any] = {
        "fast": {"C": c_fast, "features": len(weights)},
        "train": {
            "prompts": len(train),
            "documents": len(doc_train),
            "document_attacks": len(doc_pos),
            "document_sentences": len(unit_texts),
            "sources": "S-Labs train, neuralchemy core-train, AgentDojo environments, local package docs",
            # the local documents depend on what is installed on the machine: record which ones were used
            "documents_sha256": hashlib.sha256("\x1e".join(docs).encode()).hexdigest(),
        },
        "validation": {"prompts": "S-Labs validation", "documents": len(doc_val)},
    }
    fs_val = unit_scores(val_texts, weights, bias)
    thr_prompt_fast, f1_fast = best_threshold(fs_val, val_y)
    fs_doc_b = unit_scores(val_doc_benign, weights, bias)
    fs_doc_a = unit_scores(val_doc_attack, weights, bias)
    thr_doc_fast = max(thr_prompt_fast, threshold_for_fpr(fs_doc_b, 0.01))
    meta["fast"].update(
        {
            "threshold_prompt": round(thr_prompt_fast, 4),
            "threshold_document": round(thr_doc_fast, 4),
            "validation_f1_prompt": round(f1_fast, 4),
            "validation_document_recall": round(float((fs_doc_a >= thr_doc_fast).mean()), 4),
            "validation_document_fpr": round(float((fs_doc_b >= thr_doc_fast).mean()), 4),
        }
    )
    # cascade band: below `low` lie 1% of validation attacks, above `high` 0.5% of validation benign texts
    pos = np.concatenate([fs_val[val_y == 1], fs_doc_a])
    neg = np.concatenate([fs_val[val_y == 0], fs_doc_b])
    low = min(float(np.quantile(pos, 0.01)), thr_prompt_fast)
    high = max(float(np.quantile(neg, 0.995)), thr_doc_fast)
    meta["cascade"] = {
        "low": round(low, 4),
        "high": round(high, 4),
        "validation_share_uncertain": round(
            float(np.mean((np.concatenate([pos, neg]) >= low) & (np.concatenate([pos, neg]) < high))), 4
        ),
    }

    if not args.skip_semantic:
        from sklearn.linear_model import LogisticRegression
        from sklearn.neural_network import MLPClassifier

        # documents are long: a sample of them keeps the CPU embedding time to minutes
        sem_docs = rng.sample(doc_train, min(800, len(doc_train)))
        sem_pos = rng.sample(doc_pos, min(400, len(doc_pos)))
        # and a sample of the prompts: the numpy encoder on a shared 2-core machine embeds ~20 texts/s
        rng_sem = random.Random(5)
        sem_prompts = rng_sem.sample(train, min(len(train), args.semantic_prompts))
        sem_docs, sem_pos = sem_docs[: args.semantic_prompts // 20], sem_pos[: args.semantic_prompts // 40]
        x_train = embed_texts([t for t, _ in sem_prompts] + sem_docs + sem_pos, "train")
        x_val = embed_texts([t for t, _ in slabs_val], "val")
        y_train = np.array([y for _, y in sem_prompts] + [0] * len(sem_docs) + [1] * len(sem_pos))
        meta["train"]["semantic_texts"] = len(y_train)
        cands = []
        for c in (1.0, 10.0):
            clf = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(x_train, y_train)
            s = clf.predict_proba(x_val)[:, 1]
            cands.append((best_threshold(s, val_y)[1], f"logreg C={c}", clf))
        mlp = MLPClassifier(hidden_layer_sizes=(256,), alpha=1e-3, max_iter=300, random_state=0, early_stopping=True)
        mlp.fit(x_train, y_train)
        s = mlp.predict_proba(x_val)[:, 1]
        cands.append((best_threshold(s, val_y)[1], "mlp 256", mlp))
        for f1, name, _ in cands:
            print(f"semantic {name}: validation F1={f1:.4f}", flush=True)
        f1, name, clf = max(cands, key=lambda c: c[0])
        if name.startswith("mlp"):
            layers = [
                {"w": w.T.round(6).tolist(), "b": b.round(6).tolist()}
                for w, b in zip(clf.coefs_, clf.intercepts_, strict=True)
            ]
        else:
            layers = [{"w": clf.coef_.round(6).tolist(), "b": clf.intercept_.round(6).tolist()}]
        sem_path = OUT / "injection_semantic.json"
        sem_path.write_text(json.dumps({"kind": name, "layers": layers}, separators=(",", ":")))
        sv = clf.predict_proba(x_val)[:, 1]
        thr_p, f1_p = best_threshold(sv, val_y)
        # documents: the cascade embeds the two best fast-tier sentences of a document
        top_b = [top_units(d, weights, bias, 2) for d in val_doc_benign[:400]]
        flat = [u for us in top_b for u in us]
        emb = embed_texts(flat, "docb-units")
        sem_units = clf.predict_proba(emb)[:, 1]
        fast_units = np.array([linear_score(text_features(u), weights, bias) for u in flat])
        sb, cb, k = [], [], 0
        for us in top_b:
            sl, fl = sem_units[k : k + len(us)], fast_units[k : k + len(us)]
            k += len(us)
            sb.append(float(sl.max()))
            cb.append(float(((sl + fl) / 2).max()))
        meta["semantic"] = {
            "head": name,
            "threshold_prompt": round(thr_p, 4),
            "threshold_document": round(max(thr_p, threshold_for_fpr(np.array(sb), 0.01)), 4),
            "validation_f1_prompt": round(f1_p, 4),
        }
        comb = (sv + fs_val) / 2
        thr_c, f1_c = best_threshold(comb, val_y)
        meta["combined"] = {
            "threshold_prompt": round(thr_c, 4),
            "threshold_document": round(max(thr_c, threshold_for_fpr(np.array(cb), 0.01)), 4),
            "validation_f1_prompt": round(f1_c, 4),
        }
    meta_path = OUT / "injection_meta.json"
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    for p in sorted(OUT.glob("injection_*.json")):
        print(p.name, hashlib.sha256(p.read_bytes()).hexdigest(), f"{p.stat().st_size / 1e6:.2f} MB")
    print(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
