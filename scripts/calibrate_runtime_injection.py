"""After training: measure the cascade band on validation data and pin the models' sha256.

  .venv/bin/python scripts/calibrate_runtime_injection.py [--data /work/shared/data]

The cascade sends a text to the semantic tier only when the fast tier's best window scores inside
[low, high): low is the fast score under which 1% of validation attacks fall, high the score above
which 0.5% of validation benign texts (S-Labs validation benign + held-out documents) fall. Both go
into injection_meta.json ("cascade"). Then the sha256 of the three JSON files is written into
src/tutela/runtime/injection.py's ModelRefs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tutela.runtime import datasets as ds
from tutela.runtime.features import linear_score, text_features
from tutela.runtime.injection import windows
from tutela.runtime.normalize import normalize

MODELS = ROOT / "src" / "tutela" / "runtime" / "models"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    args = ap.parse_args()
    base = ds.data_dir(args.data)
    fast = json.loads((MODELS / "injection_fast.json").read_text())
    weights, bias = fast["weights"], float(fast["bias"])

    def best(text: str) -> float:
        folded = normalize(text).folded.text
        return max(linear_score(text_features(folded[s:e]), weights, bias) for s, e in windows(folded, 500, 250, 64))

    val = ds.slabs("validation", base)
    rng = random.Random(99)
    docs = [d for d in ds.agentdojo_documents(base) if ds.split_of(d) == "validation"]
    attacks = [t for t, y in val if y == 1]
    pos = [best(t) for t in attacks] + [best(ds.embed(d, rng.choice(attacks), rng)[0]) for d in docs]
    neg = [best(t) for t, y in val if y == 0] + [best(d) for d in docs]
    meta_path = MODELS / "injection_meta.json"
    meta = json.loads(meta_path.read_text())
    low = float(np.quantile(pos, 0.01))
    high = float(np.quantile(neg, 0.995))
    thr = meta["fast"]["threshold_prompt"]
    meta["cascade"] = {
        "low": round(min(low, thr), 4),
        "high": round(max(high, meta["fast"]["threshold_document"]), 4),
        "validation_share_uncertain": round(
            float(np.mean([(min(low, thr) <= s < max(high, thr)) for s in pos + neg])), 4
        ),
    }
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    print(json.dumps(meta["cascade"]))

    src = ROOT / "src" / "tutela" / "runtime" / "injection.py"
    code = src.read_text()
    for name in ("injection_fast.json", "injection_semantic.json", "injection_meta.json"):
        path = MODELS / name
        if not path.is_file():
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        code = re.sub(
            rf'("[0-9a-f]{{64}}",\n    ModelFormat\.JSON,\n    _PKG,\n    "{re.escape(name)}")',
            lambda m, d=digest: f'"{d}"' + m.group(1)[66:],
            code,
        )
        print(name, digest)
    src.write_text(code)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
