"""The DGA network pair in C vs its numpy twin, on every name of the shared data's DGA and Tranco files.

    .venv/bin/python scripts/charcnn_native_check.py [--data ../shared/data]

Prints the largest absolute logit difference of each network (C `logit_one` vs `logit_one_numpy`, the query
path; C `logit_batch` vs `logit_batch_numpy`, `tutela dns score`) and every name whose confidence level
differs between the two, for the gated pair with its shipped thresholds. Exits 1 if a level differs on the
one-name path (bit-identical there); numpy's batches sum in another order (sgemm, varying with the batch's
size), so a batch can differ on a name whose score is a threshold (docs/models/dns.md, Serving).
A development check (the test suite runs a sample: tests/dns_models/test_charcnn_native.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def shared_names(data: Path) -> list[str]:
    """Tranco's domains, then every DGA family's, in file order, without duplicates."""
    dns = data / "dns"
    out = [line.split(",", 1)[1].strip() for line in (dns / "benign/tranco_top_50k.csv").read_text().splitlines()]
    for path in sorted((dns / "dga").glob("*.txt")):
        out += path.read_text(encoding="utf-8", errors="replace").split()
    return list(dict.fromkeys(n for n in out if n))


def main() -> int:
    import numpy as np

    from tutela.core.models import ModelCache
    from tutela.dns.charcnn import GatedCnn
    from tutela.dns.scoring import DnsScorer, _sigmoid, dga_judged
    from tutela.dns.splitcache import RegistrableSplitter

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    gated, cal = DnsScorer(ModelCache())._dga_model()
    assert isinstance(gated, GatedCnn) and gated.first.native is not None, "the C extension is not built"
    split = RegistrableSplitter()
    parts = [p for p in map(split, shared_names(args.data)) if dga_judged(p)]
    pairs = [(p.label, p.suffix) for p in parts]
    print(f"{len(pairs)} judged names (Tranco top 50k + every DGA family file)")

    def level(z: float) -> str | None:
        return cal.level(cal.confidence(_sigmoid(z)))

    flips = 0
    for kind, native, twin in (("one name", "logit_one", "logit_one_numpy"),
                               ("batch", "logit_batch", "logit_batch_numpy")):  # fmt: skip
        logits = {}
        for side, method in (("C", native), ("numpy", twin)):
            nets = [getattr(gated.first, method), getattr(gated.second, method)]
            if kind == "one name":
                logits[side] = [np.array([f(*n) for n in pairs]) for f in nets]
            else:
                logits[side] = [f(pairs) for f in nets]
        for i in range(2):
            diff = np.abs(logits["C"][i] - logits["numpy"][i])
            print(f"{kind:8s} network {i + 1}: max |C - numpy| logit {diff.max():.3g} (mean {diff.mean():.3g})")
        levels = {}
        for side, (z1, z2) in logits.items():
            z = np.where(z1 < gated.gate, z1, (z1 + z2) / 2.0)
            levels[side] = [level(float(v)) for v in z]
        for p, a, b in zip(parts, levels["C"], levels["numpy"], strict=True):
            if a != b:
                flips += kind == "one name"
                print(f"  level differs ({kind}): {p.registrable}: C {a}, numpy {b}")
        print(f"{kind:8s} levels: {sum(v is not None for v in levels['C'])} flagged, "
              f"{sum(a != b for a, b in zip(levels['C'], levels['numpy'], strict=True))} differ")  # fmt: skip
    return 1 if flips else 0


if __name__ == "__main__":
    sys.exit(main())
