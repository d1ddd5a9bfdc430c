"""The injection detector's fast tier of two source trees, side by side in one process, on one core.

  .venv/bin/python bench/ab_fast_tier.py --base /work/main/src --new src [--n 200] [--rounds 3] [--data DIR]

For an A/B of a change against main before the suite's runtime_detectors run (which measures one tree). Each
tree's `tutela` is imported on its own (the `tutela` modules are taken out of sys.modules between the two imports,
so each tree's objects keep their own modules) and its detector (tier fast) warmed up; then, per round, every
prompt of bench/runtime_detectors.py (~1,000 characters from S-Labs test texts) is assessed by both trees in turn,
base first on even prompts and new first on odd ones. Prints each round's p50 / p99 per tree and the median over
rounds, with the load average; fails if a score differs by more than 1e-9 or a best window moves. Writes nothing.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def load_tree(src: Path) -> dict[str, ModuleType]:
    """The modules the fast tier needs, imported from `src` alone."""
    for name in [m for m in sys.modules if m == "tutela" or m.startswith("tutela.")]:
        del sys.modules[name]
    sys.path.insert(0, str(src))
    try:
        names = ("tutela.core.models", "tutela.core.detector", "tutela.runtime.injection", "tutela.runtime.subjects")
        mods = {n: importlib.import_module(n) for n in names}
    finally:
        sys.path.remove(str(src))
    where = Path(mods["tutela.runtime.injection"].__file__ or "").resolve()
    if not where.is_relative_to(src.resolve()):
        raise SystemExit(f"{src}: tutela was imported from {where} (an installed copy shadows the tree)")
    return mods


def assessor(mods: dict[str, ModuleType]) -> Callable[[str], Any]:
    inj = mods["tutela.runtime.injection"]
    det = inj.InjectionDetector(inj.InjectionDetector.Config(tier="fast"), mods["tutela.core.models"].ModelCache())
    subject, ctx = mods["tutela.runtime.subjects"].TextSubject, mods["tutela.core.detector"].ScanContext
    return lambda text: det.assess(subject(text), ctx())


def _where(assessed: Any) -> tuple[Any, ...]:
    """The tier and the best window's place, of an `assess` result."""
    _, tier, win = assessed
    return (tier, None) if win is None else (tier, win.where, win.start, win.end)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="the src folder of the tree compared against")
    ap.add_argument("--new", type=Path, required=True, help="the src folder of the changed tree")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    fns = {"base": assessor(load_tree(args.base)), "new": assessor(load_tree(args.new))}
    sys.path.insert(0, str(ROOT))
    from bench.runtime_detectors import pct, prompts  # the new tree's datasets module: the same prompts
    from tutela.runtime import datasets as ds

    texts = prompts(args.n, ds.data_dir(args.data))
    for text in texts:
        a, b = fns["base"](text), fns["new"](text)  # warm-up, and the check that nothing moved
        if abs(a[0] - b[0]) > 1e-9 or _where(a) != _where(b):
            raise SystemExit(f"the trees disagree on {text[:60]!r}: {a[:2]} vs {b[:2]}")
    p50: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(args.rounds):
        times: dict[str, list[float]] = {k: [] for k in fns}
        for i, text in enumerate(texts):
            for name in ("base", "new") if i % 2 == 0 else ("new", "base"):
                t0 = time.perf_counter()
                fns[name](text)
                times[name].append((time.perf_counter() - t0) * 1000)
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
        for name, ts in times.items():
            p50[name].append(statistics.median(ts))
            med, p99 = statistics.median(ts), pct(ts, 0.99)
            print(f"round {r + 1} {name:4s} p50 {med:.3f} ms  p99 {p99:.3f} ms  load {load}")
    for name, vals in p50.items():
        print(f"{name:4s} fast tier p50, median of {args.rounds} rounds: {statistics.median(vals):.3f} ms "
              f"({min(vals):.3f}-{max(vals):.3f})")  # fmt: skip
    print(f"new / base: {statistics.median(p50['new']) / statistics.median(p50['base']):.3f}; {len(texts)} prompts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
