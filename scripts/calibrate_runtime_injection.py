"""Choose the cascade's prompt threshold through the detector itself, on validation data only.

  .venv/bin/python scripts/calibrate_runtime_injection.py [--data DIR] [--max-pii-fpr 0.02]

Run after scripts/train_runtime_injection.py and scripts/pin_runtime_models.py. The training script picks
the `combined` prompt threshold for the best F1 as if every prompt got both tiers; at run time only prompts
in the cascade band do. Here the real detector (tier cascade) scores S-Labs validation and the validation
templates of the Presidio PII sentences, and the threshold becomes the one with the best S-Labs F1 among
those that flag at most `--max-pii-fpr` of the PII sentences (benign prompts that carry PII must pass).
Writes injection_meta.json (`combined.threshold_prompt`, `combined.calibration`); re-pin afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tutela.core.detector import ScanContext
from tutela.core.models import ModelCache
from tutela.runtime import datasets as ds
from tutela.runtime.injection import InjectionDetector
from tutela.runtime.subjects import TextSubject

META = ROOT / "src" / "tutela" / "runtime" / "models" / "injection_meta.json"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--max-pii-fpr", type=float, default=0.02)
    args = ap.parse_args()
    base = ds.data_dir(args.data)
    det = InjectionDetector(InjectionDetector.Config(tier="cascade"), ModelCache())  # type: ignore[call-arg]

    def scored(texts: list[str]) -> list[tuple[float, str]]:
        out = []
        for t in texts:
            s, tier, _ = det.assess(TextSubject(t, "prompt"), ScanContext())
            out.append((s, tier))
        return out

    val = ds.slabs("validation", base)
    sv = scored([t for t, _ in val])
    y = [label for _, label in val]
    sp = scored([r["full_text"] for r in ds.presidio_split(base, "validation")])
    meta = json.loads(META.read_text())
    thr_fast = float(meta["fast"]["threshold_prompt"])

    def flags(rows: list[tuple[float, str]], thr: float) -> list[bool]:
        return [s >= (thr if tier == "combined" else thr_fast) for s, tier in rows]

    def f1(thr: float) -> float:
        f = flags(sv, thr)
        tp = sum(a and b == 1 for a, b in zip(f, y, strict=True))
        fp = sum(a and b == 0 for a, b in zip(f, y, strict=True))
        fn = sum((not a) and b == 1 for a, b in zip(f, y, strict=True))
        return 2 * tp / max(1, 2 * tp + fp + fn)

    def pii_fpr(thr: float) -> float:
        f = flags(sp, thr)
        return sum(f) / max(1, len(f))

    grid = sorted({round(s, 3) for s, tier in sv + sp if tier == "combined"} | {meta["combined"]["threshold_prompt"]})
    ok = [t for t in grid if pii_fpr(t) <= args.max_pii_fpr] or [max(grid)]
    best = max(ok, key=f1)
    before = float(meta["combined"]["threshold_prompt"])
    meta["combined"]["threshold_prompt"] = round(best, 4)
    meta["combined"]["calibration"] = {
        "how": f"cascade detector on S-Labs validation and Presidio validation templates; best F1 with PII FPR <= "
        f"{args.max_pii_fpr}",
        "before": {"threshold": before, "f1": round(f1(before), 4), "pii_fpr": round(pii_fpr(before), 4)},
        "after": {"threshold": round(best, 4), "f1": round(f1(best), 4), "pii_fpr": round(pii_fpr(best), 4)},
        "share_combined": round(sum(tier == "combined" for _, tier in sv) / len(sv), 4),
    }
    META.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    print(json.dumps(meta["combined"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
