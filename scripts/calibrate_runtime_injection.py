"""Choose the cascade's prompt band, tier weighting and threshold through the detector, on validation data only.

  .venv/bin/python scripts/calibrate_runtime_injection.py [--data DIR] [--max-pii-fpr 0.03]

Run after scripts/train_runtime_injection.py and scripts/pin_runtime_models.py. The training script picks
the `combined` prompt threshold as if every prompt got both tiers, with the tiers averaged; at run time only
prompts in the cascade band [`low`, `high`) reach the prompt head. Here the detector's own units and scores
(the fast tier's best units, the prompt head on the best `semantic_windows` of them) are computed once for
S-Labs validation and the validation templates of the Presidio PII sentences, and the cascade is replayed for
every `low` and `high` (the band's edges), `fast_weight` (the band's score is fast_weight * fast + (1 - fast_weight) *
head; 0.5 is the plain mean, 0 the head alone) and threshold. The choice is the best S-Labs validation F1
among those that flag at most `--max-pii-fpr` of the PII sentences (benign prompts that carry PII must pass;
the issue's target is 3%). No test set is read.
It also sets the fast tier's own prompt threshold (`fast.threshold_prompt`, what `tier: fast` uses, the gateway's
inline default): the lowest that flags at most `--max-fast-fpr` (1%) of the benign validation prompts (S-Labs
validation benign and the validation PII sentences, pooled); the F1-optimal one is kept as `threshold_prompt_f1`.
Writes injection_meta.json (`cascade.low`, `cascade.fast_weight`, `combined.threshold_prompt`,
`combined.calibration`, `fast.threshold_prompt`, `fast.validation_alone`); re-pin afterwards
(scripts/pin_runtime_models.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tutela.core.detector import ScanContext
from tutela.core.models import ModelCache
from tutela.runtime import datasets as ds
from tutela.runtime.evaluation import recall_at_fpr
from tutela.runtime.injection import InjectionDetector
from tutela.runtime.subjects import TextSubject

META = ROOT / "src" / "tutela" / "runtime" / "models" / "injection_meta.json"
LOWS = (0.01, 0.02, 0.04, 0.07)
# the band's upper edge: the training script's (0.5% of benign validation prompts above it), or wider, so that
# the prompt head also judges prompts the fast tier finds obvious (it pays only with a head that is right there)
HIGHS = (0.95, 0.98)
WEIGHTS = (0.0, 0.2, 0.3, 0.4, 0.5)


def fast_alone(
    sv: list[tuple[list[float], list[float]]],
    y: list[int],
    sp: list[tuple[list[float], list[float]]],
    max_fpr: float,
    thr_f1: float,
) -> dict[str, Any]:
    """The fast tier's operating point when it runs alone (`tier: fast`, the gateway's inline default): the
    lowest threshold that flags at most `max_fpr` of the benign validation prompts (S-Labs validation benign
    and the validation PII sentences, pooled), never below the F1-optimal one; with its validation recall."""
    fast = [r[0][0] for r in sv]
    benign = [f for f, label in zip(fast, y, strict=True) if label == 0]
    pii = [r[0][0] for r in sp]
    attacks = [f for f, label in zip(fast, y, strict=True) if label == 1]
    pooled = sorted(benign + pii, reverse=True)
    k = int(max_fpr * len(pooled))  # at most k benign prompts may score >= the threshold
    thr = round(max(pooled[k] + 1e-4 if k < len(pooled) else 0.0, thr_f1), 4)

    def rate(scores: list[float], t: float) -> float:
        return round(sum(s >= t for s in scores) / max(1, len(scores)), 4)

    return {
        "threshold_prompt": thr,
        "threshold_prompt_f1": thr_f1,
        "validation_alone": {
            "how": f"lowest threshold flagging <= {max_fpr} of S-Labs validation benign + validation PII sentences",
            "recall": rate(attacks, thr), "benign_fpr": rate(benign + pii, thr), "slabs_fpr": rate(benign, thr),
            "pii_fpr": rate(pii, thr), "f1_threshold_recall": rate(attacks, thr_f1),
            "f1_threshold_slabs_fpr": rate(benign, thr_f1), "f1_threshold_pii_fpr": rate(pii, thr_f1),
        },
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--max-pii-fpr", type=float, default=0.03)
    ap.add_argument("--highs", type=float, nargs="+", default=list(HIGHS), help="wider upper edges tried")
    ap.add_argument("--max-fast-fpr", type=float, default=0.01, help="benign FPR of the fast tier used alone")
    args = ap.parse_args()
    base = ds.data_dir(args.data)
    det = InjectionDetector(InjectionDetector.Config(tier="cascade"), ModelCache())  # type: ignore[call-arg]
    meta = json.loads(META.read_text())
    # the training script's edge (0.5% of benign validation prompts above it): also where the fast tier alone is
    # confident enough for a HIGH finding, whatever band the cascade takes
    high0 = float(meta["fast"].get("threshold_high_severity", meta["cascade"]["high"]))
    highs = sorted({high0} | {h for h in args.highs if h > high0})
    k = det.config.semantic_windows

    def units(texts: list[str]) -> list[tuple[list[float], list[float]]]:
        """Per text: the fast scores of its best units, and the prompt head's scores of those (if in any band)."""
        out = []
        for t in texts:
            wins = det.score_windows(TextSubject(t, "prompt"), ScanContext())
            top = sorted(wins, key=lambda w: -w.fast)[:k]
            if not top:
                out.append(([0.0], [0.0]))
                continue
            fast = [w.fast for w in top]
            sem = det.semantic_scores([w.text for w in top]) if min(LOWS) <= fast[0] < max(highs) else [0.0] * len(top)
            out.append((fast, sem))
        return out

    val = ds.slabs("validation", base)
    y = [label for _, label in val]
    sv = units([t for t, _ in val])
    sp = units([r["full_text"] for r in ds.presidio_split(base, "validation")])

    def flags(
        rows: list[tuple[list[float], list[float]]], low: float, high: float, wf: float, thr: float
    ) -> list[bool]:
        out = []
        for fast, sem in rows:
            if fast[0] >= high or fast[0] < low:
                out.append(fast[0] >= high)
            else:
                out.append(max(wf * f + (1 - wf) * s for f, s in zip(fast, sem, strict=True)) >= thr)
        return out

    def recall_1pct(low: float, high: float, wf: float, thr: float) -> float:
        """S-Labs validation recall at 1% FPR of the cascade's scores (fast alone outside the band), as the
        evaluation ranks them (`thr` plays no part: the signature matches the grid's points)."""
        scores = [
            fast[0] if fast[0] >= high or fast[0] < low
            else max(wf * f + (1 - wf) * s for f, s in zip(fast, sem, strict=True))
            for fast, sem in sv
        ]  # fmt: skip
        return recall_at_fpr(scores, y)

    def f1(low: float, high: float, wf: float, thr: float) -> float:
        f = flags(sv, low, high, wf, thr)
        tp = sum(a and b == 1 for a, b in zip(f, y, strict=True))
        fp = sum(a and b == 0 for a, b in zip(f, y, strict=True))
        fn = sum((not a) and b == 1 for a, b in zip(f, y, strict=True))
        return 2 * tp / max(1, 2 * tp + fp + fn)

    def pii_fpr(low: float, high: float, wf: float, thr: float) -> float:
        f = flags(sp, low, high, wf, thr)
        return sum(f) / max(1, len(f))

    before = (float(meta["cascade"]["low"]), float(meta["cascade"]["high"]),
              float(meta["cascade"].get("fast_weight", 0.5)), float(meta["combined"]["threshold_prompt"]))  # fmt: skip
    grid = [
        (low, high, wf, round(0.2 + 0.01 * i, 2)) for low in LOWS for high in highs for wf in WEIGHTS for i in range(76)
    ]
    ok = [g for g in grid if pii_fpr(*g) <= args.max_pii_fpr] or [before]
    # ties: the narrower band (higher low, lower high), the higher threshold
    best = max(ok, key=lambda g: (round(f1(*g), 4), g[0], -g[1], g[3]))
    low, high, wf, thr = best
    for h in highs:  # what each upper edge gives at its best, for the record
        at = [g for g in ok if g[1] == h]
        if at:
            g = max(at, key=lambda g: (round(f1(*g), 4), g[0], g[3]))
            print(f"high {h}: best F1 {f1(*g):.4f} at {g}, PII FPR {pii_fpr(*g):.4f}, recall at 1% FPR "
                  f"{recall_1pct(*g):.4f}", file=sys.stderr)  # fmt: skip
    meta["fast"]["threshold_high_severity"] = high0
    meta["cascade"]["low"] = low
    meta["cascade"]["high"] = high
    meta["cascade"]["fast_weight"] = wf
    both = [r[0][0] for r in sv + sp]
    meta["cascade"]["validation_share_uncertain"] = round(sum(low <= f < high for f in both) / len(both), 4)
    meta["combined"]["threshold_prompt"] = thr
    # the fast tier alone (`tier: fast`): its own operating point; the cascade's `high` edge stays above it, so
    # what the cascade lets the fast tier flag alone is flagged by `tier: fast` as well
    meta["fast"].update(
        fast_alone(
            sv,
            y,
            sp,
            args.max_fast_fpr,
            float(meta["fast"].get("threshold_prompt_f1", meta["fast"]["threshold_prompt"])),
        )
    )
    meta["combined"]["calibration"] = {
        "how": f"cascade replayed on S-Labs validation and Presidio validation templates over low {list(LOWS)}, "
        f"high {highs}, fast_weight {list(WEIGHTS)} and thresholds 0.20-0.95; best F1 with PII FPR "
        f"<= {args.max_pii_fpr}",
        "before": {"low": before[0], "high": before[1], "fast_weight": before[2], "threshold": before[3],
                   "f1": round(f1(*before), 4), "pii_fpr": round(pii_fpr(*before), 4),
                   "recall_at_1pct_fpr": recall_1pct(*before)},
        "after": {"low": low, "high": high, "fast_weight": wf, "threshold": thr, "f1": round(f1(*best), 4),
                  "pii_fpr": round(pii_fpr(*best), 4), "recall_at_1pct_fpr": recall_1pct(*best)},
        "share_combined": round(sum(low <= r[0][0] < high for r in sv) / len(sv), 4),
    }  # fmt: skip
    if meta["fast"]["threshold_prompt"] > high:
        meta["cascade"]["high"] = meta["fast"]["threshold_prompt"]
        print("note: cascade.high raised to the fast tier's threshold", file=sys.stderr)
    META.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    print(json.dumps({"cascade": meta["cascade"], "combined": meta["combined"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
