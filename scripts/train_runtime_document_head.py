"""Train the document head of the injection detector (with document context) and its document threshold.

  .venv/bin/python scripts/train_runtime_document_head.py [--data /work/shared/data]

Keeps the fast tier and the prompt head of scripts/train_runtime_injection.py as they are (it reads
injection_fast.json); rewrites injection_document.json and the `document` section of injection_meta.json.

Why a separate head recipe: BIPIA's task-like planted instructions ("How do solar panels work?", "Draft an
introduction for an essay about climate change.") read like ordinary requests; a per-unit head trained on 3
wordings per category learned those wordings, not the kind (found 0-8% on the test set). This head sees each unit
relative to its document (`tutela.runtime.document_context`) and is trained on more planted text: besides the BIPIA
train instructions and S-Labs train attacks, ordinary requests (benign S-Labs / neuralchemy *train* prompts that
ask or instruct something) planted into train documents count as injections, because a request addressed to the
assistant inside an e-mail or a table is what an indirect injection is, whatever it asks.

Training: units of train documents (BIPIA train contexts, AgentDojo/local documents hashed to train), each
labelled by whether it overlaps the planted text. Validation (the threshold, at 1% validation-document FPR,
and the scoring rule, by BIPIA + S-Labs documents found there): the same
validation documents as scripts/train_runtime_injection.py builds (validation BIPIA contexts + held-out
AgentDojo/local documents, with and without a validation BIPIA instruction or S-Labs validation attack).
Never used: any test split. Embeddings are cached under $TUTELA_TRAIN_CACHE (outside the repository).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

import train_runtime_injection as tri

from tutela.runtime import datasets as ds
from tutela.runtime.document_context import NAME, unit_features
from tutela.runtime.features import LinearScorer
from tutela.runtime.injection import windows

# what counts as an ordinary request among benign train prompts: a question, or an opening verb/word of one
_REQUEST = re.compile(
    r"^(what|how|why|who|where|when|which|can|could|would|should|is|are|do|does|write|explain|describe|give|list|"
    r"tell|provide|compare|translate|create|draft|summari[sz]e|show|help|suggest|recommend|make|generate|compose|"
    r"outline|teach|define|find|calculate)\b",
    re.I,
)
RULES = ("semantic", "mean", "max")  # a unit's score: the head alone, mean(head, fast), max(head, fast)


def requests(base: Path) -> list[str]:
    prompts = [t for t, y in ds.slabs("train", base) if y == 0]
    prompts += [r["text"] for r in ds.neuralchemy("train", base) if r["label"] == 0]
    kept = {t.strip() for t in prompts if 15 <= len(t.strip()) <= 200}
    return sorted(t for t in kept if _REQUEST.match(t) or t.endswith("?"))


def labelled(text: str, a: int = -1, b: int = -1) -> tuple[list[str], list[int]]:
    """A document's units (folded, as the detector scores them) and labels: 1 carries the planted text, 0 does
    not, -1 touches it only partly (left out of training)."""
    us, lab = [], []
    for s, e in windows(text, 300, 150, 400)[:64]:
        overlap = min(e, b) - max(s, a) if a >= 0 else 0
        us.append(tri.folded(text[s:e]))
        lab.append(1 if a >= 0 and overlap >= min(20, b - a) else (-1 if overlap > 0 else 0))
    return us, lab


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--document-fpr", type=float, default=0.01, help="benign validation-document FPR allowed")
    ap.add_argument("--hidden", type=int, default=128)
    args = ap.parse_args()
    print(json.dumps(train(ds.data_dir(args.data), args.document_fpr, args.hidden), indent=2))
    return 0


def train(base: Path, document_fpr: float = 0.01, hidden: int = 128) -> dict[str, Any]:
    """Train the head on the fast tier in the package, write it and meta["document"]; return that section."""
    models = tri.OUT
    fast_model = json.loads((models / "injection_fast.json").read_text())
    fast = LinearScorer(fast_model["weights"], float(fast_model["bias"]))

    rng = random.Random(1234)
    slabs_train_attacks = [t for t, y in ds.slabs("train", base) if y == 1]
    slabs_val_attacks = [t for t, y in ds.slabs("validation", base) if y == 1]
    bipia_train = [c for _, c in ds.bipia_contexts_split(base, "train")]
    bipia_val = [c for _, c in ds.bipia_contexts_split(base, "validation")]
    inst_train = [t for _, t in ds.bipia_attacks_split(base, "train")]
    inst_val = [t for _, t in ds.bipia_attacks_split(base, "validation")]
    other = [d for d in ds.agentdojo_documents(base) + tri.local_documents(rng) if len(d) >= 80]
    other_train = [d for d in other if ds.split_of(d) == "train"]
    other_val = [d for d in other if ds.split_of(d) == "validation"]
    doc_train = bipia_train + other_train
    asks = requests(base)

    planted: list[tuple[list[str], list[int]]] = []
    r = random.Random(99)
    for pool, n, texts in (
        (bipia_train, 1500, inst_train),
        (other_train, 500, inst_train),
        (doc_train, 1000, slabs_train_attacks),
    ):
        for _ in range(n):
            planted.append(labelled(*ds.embed(r.choice(pool), r.choice(texts), r)))
    r = random.Random(31)
    for pool, n in ((bipia_train, 1500), (other_train, 500)):
        for _ in range(n):
            planted.append(labelled(*ds.embed(r.choice(pool), r.choice(asks), r)))
    r = random.Random(77)
    planted += [labelled(d) for d in bipia_train + r.sample(other_train, min(len(other_train), 1500))]

    rv = random.Random(2024)  # the validation documents of scripts/train_runtime_injection.py
    val_benign = bipia_val + rv.sample(other_val, min(400, len(other_val)))
    val = {"benign": [labelled(d)[0] for d in val_benign], "bipia": [], "slabs": []}
    for d in val_benign:
        val["bipia"].append(labelled(ds.embed(d, rv.choice(inst_val), rv)[0])[0])
    for d in val_benign[:300]:
        val["slabs"].append(labelled(ds.embed(d, rv.choice(slabs_val_attacks), rv)[0])[0])

    every = sorted({u for us, _ in planted for u in us} | {u for docs in val.values() for us in docs for u in us})
    t0 = time.time()
    emb = dict(zip(every, tri.embed_texts(every, "document units"), strict=True))
    scores = {u: fast.score(u) for u in every}
    print(f"{len(planted)} train documents, {len(every)} distinct units ({time.time() - t0:.0f}s)", flush=True)

    def features(us: list[str]) -> np.ndarray:
        return unit_features(np.stack([emb[u] for u in us]), np.array([scores[u] for u in us]))

    x = np.vstack([features(us) for us, _ in planted])
    y = np.concatenate([np.array(lab) for _, lab in planted])
    x, y = x[y >= 0], y[y >= 0]
    print(f"units: {int(y.sum())} carry planted text, {int((y == 0).sum())} do not", flush=True)

    from sklearn.neural_network import MLPClassifier

    t0 = time.time()
    clf = MLPClassifier(
        hidden_layer_sizes=(hidden,), alpha=1e-3, max_iter=200, random_state=0, early_stopping=True
    ).fit(x, y)
    print(f"trained in {time.time() - t0:.0f}s", flush=True)

    def doc_scores(docs: list[list[str]], rule: str) -> np.ndarray:
        out = []
        for us in docs:
            head = clf.predict_proba(features(us))[:, 1]
            f = np.array([scores[u] for u in us])
            s = head if rule == "semantic" else (head + f) / 2 if rule == "mean" else np.maximum(head, f)
            out.append(float(s.max()))
        return np.array(out)

    doc_meta: dict[str, Any] = {"head": f"mlp {hidden}", "features": NAME}
    best, best_recall = "", -1.0
    for rule in RULES:
        s = {k: doc_scores(v, rule) for k, v in val.items()}
        thr = tri.threshold_for_fpr(s["benign"], document_fpr)
        entry = {
            "threshold": round(thr, 4),
            "validation_fpr": round(float((s["benign"] >= thr).mean()), 4),
            "validation_bipia_recall": round(float((s["bipia"] >= thr).mean()), 4),
            "validation_slabs_recall": round(float((s["slabs"] >= thr).mean()), 4),
        }
        print(f"document scoring {rule}: {entry}", flush=True)
        doc_meta[rule] = entry
        recall = entry["validation_bipia_recall"] + entry["validation_slabs_recall"]
        if recall > best_recall:
            best, best_recall = rule, recall
    doc_meta["combine"] = best
    doc_meta["threshold_document"] = doc_meta[best]["threshold"]
    doc_meta["units"] = len(y)
    doc_meta["train"] = {
        "documents": len(planted),
        "planted_requests": len(asks),
        "documents_sha256": hashlib.sha256("\x1e".join(other).encode()).hexdigest(),
        "seeds": "documents 1234, planted 99 / 31, benign sample 77, validation 2024, mlp random_state 0",
    }
    spec = json.loads(tri.head_json(doc_meta["head"], clf))
    spec["features"] = NAME
    (models / "injection_document.json").write_text(json.dumps(spec, separators=(",", ":")))
    meta_path = models / "injection_meta.json"
    meta = json.loads(meta_path.read_text())
    meta["document"] = doc_meta
    meta["semantic"]["threshold_document"] = doc_meta["semantic"]["threshold"]
    meta["combined"]["threshold_document"] = doc_meta["mean"]["threshold"]
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    for p in (models / "injection_document.json", meta_path):
        print(p.name, hashlib.sha256(p.read_bytes()).hexdigest())
    return doc_meta


if __name__ == "__main__":
    raise SystemExit(main())
