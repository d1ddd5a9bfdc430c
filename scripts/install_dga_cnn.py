"""Install the character-level DGA model trained by scripts/train_dga_charcnn.py into the package.

Copies the weights to src/tutela/dns/models/dga_cnn.safetensors, measures the LOW/MEDIUM/HIGH thresholds
on the validation split (popular + cloud validation names, judged ones) with the numpy port that serves
it, writes models/dga_cnn.json (thresholds, training log, data hashes) and the leave-family-out results
(training/dga_cnn_lofo.json, read by `tutela eval dns`), and updates models/pins.py. If torch is
importable, it also checks the numpy port against torch on the validation names.

v4 (a run with --ensemble): the v4-recipe model is stage 1 (dga_cnn.safetensors), the v3-recipe model of the
same run is stage 2 (dga_cnn2.safetensors); the gate is stage 1's logit at 1% validation FPR (its LOW level),
measured here with the numpy port, and the LOW/MEDIUM/HIGH thresholds are measured on the gated scores. The
leave-out results of the gated pair become training/dga_cnn_lofo.json, the v3 recipe alone
dga_cnn_lofo_baseline.json and stage 1 alone dga_cnn_lofo_stage1.json.

    .venv/bin/python scripts/install_dga_cnn.py RUN_DIR SPLITS.json
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from tutela.dns.charcnn import CharCnn, GatedCnn
from tutela.dns.models.pins import SHA256
from tutela.dns.training import train as T

PKG = Path(__file__).resolve().parents[1] / "src" / "tutela" / "dns"


def pairs(texts: list[str]) -> list[tuple[str, str]]:
    out = []
    for t in texts:
        label, _, suffix = t[1:-1].partition(".")
        out.append((label, suffix))
    return out


def main(run: Path, splits: Path) -> None:
    doc = json.loads(splits.read_text(encoding="utf-8"))
    log = json.loads((run / "dga_cnn_train.json").read_text(encoding="utf-8"))
    lofo = json.loads((run / "dga_cnn_lofo.json").read_text(encoding="utf-8"))
    assert log["splits_sha256"] == hashlib.sha256(splits.read_bytes()).hexdigest(), "splits file differs"
    weights = PKG / "models" / "dga_cnn.safetensors"
    shutil.copyfile(run / "dga_cnn.safetensors", weights)
    first = CharCnn(load_file(str(weights)))
    cnn: CharCnn | GatedCnn = first
    stage2 = None
    if "ensemble" in log:
        weights2 = PKG / "models" / "dga_cnn2.safetensors"
        shutil.copyfile(run / "dga_cnn_v3recipe.safetensors", weights2)
        z1 = first.logit_batch(pairs(doc["benign"]["val"]))
        gate = T.threshold_at(z1.tolist(), T.LEVEL_FPR["low"])
        cnn = GatedCnn(first, CharCnn(load_file(str(weights2))), gate)
        stage2 = {"gate_logit": gate, "gate_val_fpr": T.LEVEL_FPR["low"],
                  "stage2_share_val_benign": float((z1 >= gate).mean()),
                  "recipe": "stage 1: v4 recipe (extra synthetic kinds, suffix-swapped copies); stage 2: v3 recipe",
                  "weights_sha256": hashlib.sha256(weights2.read_bytes()).hexdigest(),
                  "train_check": log["ensemble"]}  # fmt: skip
    vb = cnn.logit_batch(pairs(doc["benign"]["val"]))
    p = 1 / (1 + np.exp(-vb))
    thresholds = {lvl: T.threshold_at(p.tolist(), fpr) for lvl, fpr in T.LEVEL_FPR.items()}
    one = np.array([cnn.logit_one(*x) for x in pairs(doc["benign"]["val"][:2000])])
    check = {"numpy_one_vs_batch_max_abs": float(np.abs(one - vb[:2000]).max())}
    try:
        import torch

        sys.path.insert(0, str(Path(__file__).parent))
        from train_dga_charcnn import CharCNN, encode

        cfg = log["chosen"]
        m = CharCNN(cfg["emb"], cfg["filters"], cfg["hidden"])
        from safetensors.torch import load_file as tload

        m.load_state_dict(tload(str(weights)))
        m.eval()
        X, N = encode(doc["benign"]["val"])
        with torch.no_grad():
            ref = m(X, N).numpy()
        check["numpy_vs_torch_max_abs_logit"] = float(
            np.abs(ref - first.logit_batch(pairs(doc["benign"]["val"]))).max()
        )
        check["torch"] = torch.__version__
    except ImportError:
        pass
    print(check, thresholds)
    meta = {
        "version": "4" if stage2 else "2",
        "kind": "charcnn",
        "input": "^label.suffix$, lower-cased, see tutela/dns/training/charset.py",
        "config": log["chosen"],
        "thresholds": thresholds,
        "level_fpr": T.LEVEL_FPR,
        "validation": {"benign": len(vb)},
        "numpy_check": check,
        "training": {k: log[k] for k in ("device", "torch", "seed", "seconds", "lofo_epochs", "splits_sha256")}
        | {"synthetic_per_kind": log.get("synthetic")},
        "variants": {k: max(h["val_tpr_at_fpr_0.1%"] for h in v["history"]) for k, v in log["variants"].items()},
        "data_sha256": log["data_sha256"],
        "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
    }
    if stage2:
        meta["stage2"] = stage2
        meta["v3recipe_check"] = log.get("v3recipe", {}).get("test_check")
    shas = dict(SHA256)
    shas["dga_cnn"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    if stage2:
        shas["dga_cnn2"] = stage2["weights_sha256"]
    shas["dga_cnn_meta"] = T._dump(PKG / "models" / "dga_cnn.json", meta)
    ens = run / "dga_cnn_lofo_ensemble.json"
    if stage2 and ens.is_file():
        stage1 = PKG / "training" / "dga_cnn_lofo_stage1.json"
        stage1.write_text(json.dumps(lofo, indent=1, sort_keys=True) + "\n")
        lofo = json.loads(ens.read_text(encoding="utf-8"))
    (PKG / "training" / "dga_cnn_lofo.json").write_text(json.dumps(lofo, indent=1, sort_keys=True) + "\n")
    baseline = run / "dga_cnn_lofo_baseline.json"  # the same folds without synthetic names (--baseline-lofo)
    if baseline.is_file():
        doc_b = json.loads(baseline.read_text(encoding="utf-8"))
        (PKG / "training" / "dga_cnn_lofo_baseline.json").write_text(json.dumps(doc_b, indent=1, sort_keys=True) + "\n")
    T.write_pins(PKG / "models" / "pins.py", shas)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
