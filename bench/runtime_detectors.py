"""Latency of the runtime detectors on one CPU core, for ~1,000-character prompts.

  .venv/bin/python bench/runtime_detectors.py [--n 300] [--data /work/shared/data]

Prompts are built from S-Labs test texts (benign and attacks) joined until ~1,000 characters.
Reports p50/p99 in milliseconds for: normalisation, the fast injection tier (normalise + windows +
score), the semantic tier on one 500-character window, and the whole default pipeline (all seven
runtime detectors, cascade injection tier, policy). Pinned to one core, BLAS single-threaded.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import json
import platform
import random
import statistics
import time
from collections.abc import Callable

from tutela.core.detector import ScanContext
from tutela.core.models import ModelCache
from tutela.runtime import datasets as ds
from tutela.runtime.injection import InjectionDetector
from tutela.runtime.normalize import normalize
from tutela.runtime.scanner import RuntimeScanner
from tutela.runtime.subjects import TextSubject


def prompts(n: int, data: str | None) -> list[str]:
    rows = ds.slabs("test", ds.data_dir(data))
    rng = random.Random(5)
    out = []
    for _ in range(n):
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < 1000:
            parts.append(rng.choice(rows)[0])
        out.append(" ".join(parts)[:1000])
    return out


def timeit(fn: Callable[[str], object], texts: list[str]) -> dict[str, float]:
    for t in texts[:10]:
        fn(t)  # warm up (model loads, caches)
    times = []
    for t in texts:
        t0 = time.perf_counter()
        fn(t)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[min(len(times) - 1, int(0.99 * len(times)))], 3),
        "mean_ms": round(statistics.fmean(times), 3),
        "n": len(times),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--data")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    texts = prompts(args.n, args.data)
    models = ModelCache()
    fast = InjectionDetector(InjectionDetector.Config(tier="fast"), models)  # type: ignore[call-arg]
    scanner = RuntimeScanner(models=models)
    results = {
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} CPUs (shared), Python "
        f"{platform.python_version()}",
        "prompt_chars": round(statistics.fmean(len(t) for t in texts)),
        "normalize": timeit(normalize, texts),
        "fast_tier": timeit(lambda t: fast.assess(TextSubject(t), ScanContext()), texts),
        "semantic_tier_one_window": timeit(lambda t: fast.semantic_scores([t[:500]]), texts[: max(20, args.n // 10)]),
        "pipeline": timeit(lambda t: scanner.scan(t, "prompt"), texts),
    }
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
