"""Latency of the runtime detectors on one CPU core, for ~1,000-character prompts (issue 6).

  .venv/bin/python bench/runtime_detectors.py [--n 300] [--rounds 3] [--data /work/shared/data]

Prompts are built from S-Labs test texts (benign and attacks) joined until ~1,000 characters. Per round,
each measure runs over every prompt (A/B interleaved per prompt where two backends are compared), and the
suite reports the median over rounds of each round's p50 / p99, with the spread:
  normalize                     the shared normalisation
  fast tier                     normalise + windows + the lexical model (injection detector, tier fast)
  fast tier, reference scoring  the same, scored as the model is trained (`text_features` set, then
                                `linear_score` over the 80,000-entry table): the path before LinearScorer
  semantic, one window          MiniLM + head on the first 500 characters: ONNX Runtime vs numpy
  pipeline                      all seven runtime detectors, cascade injection tier, policy (prompt kind),
                                PII as by default (`ner: off`: PERSON from the model without spaCy) and with spaCy NER
  document pipeline             the same for a ~2,000-character document (every sentence unit embedded)
Pinned to one core, BLAS and ONNX Runtime single-threaded.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import Table, package_versions, spread, write_result  # noqa: E402
from tutela.core.detector import ScanContext  # noqa: E402
from tutela.core.models import ModelCache  # noqa: E402
from tutela.runtime import datasets as ds  # noqa: E402
from tutela.runtime.encoder import WEIGHTS, MiniLM  # noqa: E402
from tutela.runtime.features import linear_score, text_features  # noqa: E402
from tutela.runtime.injection import FAST, InjectionDetector  # noqa: E402
from tutela.runtime.ner import installed as ner_installed  # noqa: E402
from tutela.runtime.normalize import normalize  # noqa: E402
from tutela.runtime.scanner import DEFAULT_DETECTORS, RuntimeScanner, specs_for  # noqa: E402
from tutela.runtime.subjects import TextSubject  # noqa: E402


def prompts(n: int, base: Path, size: int = 1000, seed: int = 5) -> list[str]:
    rows = ds.slabs("test", base)
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < size:
            parts.append(rng.choice(rows)[0])
        out.append(" ".join(parts)[:size])
    return out


def documents(n: int, base: Path) -> list[str]:
    ctx = [c for _, c in ds.bipia_contexts_split(base, "test")]
    rng = random.Random(9)
    out = []
    for _ in range(n):
        parts: list[str] = []
        while sum(len(p) for p in parts) < 2000:
            parts.append(rng.choice(ctx))
        out.append("\n".join(parts)[:2000])
    return out


class _ReferenceScorer:
    """The fast tier's score as training computes it: the feature set, then one lookup per feature."""

    def __init__(self, weights: Any, bias: float) -> None:
        self.weights, self.bias = weights, bias

    def score(self, text: str) -> float:
        return linear_score(text_features(text), self.weights, self.bias)


def pct(times: list[float], q: float) -> float:
    s = sorted(times)
    return s[min(len(s) - 1, int(q * len(s)))]


def interleaved(
    measures: dict[str, tuple[Callable[[str], Any], list[str]]], rounds: int
) -> tuple[list[list[Any]], dict[str, Any]]:
    """Table rows and raw figures: per round, text i through every measure before text i+1 (A/B fair on a
    shared machine); each measure's p50 / p99 as the median over rounds, with the spread."""
    for fn, items in measures.values():
        for t in items[:5]:
            fn(t)  # warm up: model loads, caches
    per_round: dict[str, list[tuple[float, float]]] = {k: [] for k in measures}
    for _ in range(rounds):
        times: dict[str, list[float]] = {k: [] for k in measures}
        longest = max(len(items) for _, items in measures.values())
        for i in range(longest):
            for name, (fn, items) in measures.items():
                if i < len(items):
                    t0 = time.perf_counter()
                    fn(items[i])
                    times[name].append((time.perf_counter() - t0) * 1000)
        for name, ts in times.items():
            per_round[name].append((statistics.median(ts), pct(ts, 0.99)))
    rows = []
    raw: dict[str, Any] = {}
    for name, vals in per_round.items():
        p50 = spread([a for a, _ in vals])
        p99 = spread([b for _, b in vals])
        raw[name] = {"p50": p50, "p99": p99, "n": len(measures[name][1])}
        rows.append([name, len(measures[name][1]), round(p50["median"], 2), f"{p50['min']:.2f}–{p50['max']:.2f}",
                     round(p99["median"], 2), f"{p99['min']:.2f}–{p99['max']:.2f}"])  # fmt: skip
    return rows, raw


def latency_table(rounds: int, rows: list[list[Any]], note: str) -> Table:
    return Table(
        f"Milliseconds per text, {rounds} rounds (median of the rounds' p50 / p99, min–max)",
        ["measure", "texts", "p50 ms", "p50 min–max", "p99 ms", "p99 min–max"],
        rows,
        note=note,
    )


def setup(description: str, n: int) -> tuple[argparse.Namespace, float]:
    """The common command line (--n, --rounds, --data), the start time, and the process pinned to one core."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--n", type=int, default=n)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data")
    args = ap.parse_args()
    started = time.monotonic()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    return args, started


def main() -> int:
    args, started = setup(__doc__.splitlines()[0], 300)
    base = ds.data_dir(args.data)
    texts = prompts(args.n, base)
    docs = documents(max(20, args.n // 10), base)
    models = ModelCache()
    fast = InjectionDetector(InjectionDetector.Config(tier="fast"), models)  # type: ignore[call-arg]
    ref = InjectionDetector(InjectionDetector.Config(tier="fast"), models)  # type: ignore[call-arg]
    fast_model = models.get(FAST)
    ref._scorer = _ReferenceScorer(fast_model["weights"], float(fast_model["bias"]))  # type: ignore[assignment]
    onnx_enc = MiniLM(max_tokens=128, weights=lambda: models.get(WEIGHTS), backend="onnx")
    numpy_enc = MiniLM(max_tokens=128, weights=lambda: models.get(WEIGHTS), backend="numpy")
    default = RuntimeScanner(models=models, specs=specs_for(DEFAULT_DETECTORS, {"runtime.pii": {"ner": "off"}}))
    scanners = {"pipeline (default PII: PERSON model, no spaCy)": default}
    if ner_installed():
        scanners["pipeline (PII with spaCy NER)"] = RuntimeScanner(
            models=models, specs=specs_for(DEFAULT_DETECTORS, {"runtime.pii": {"ner": "spacy"}})
        )
    few = texts[: max(10, args.n // 20)]  # numpy is slow: fewer prompts
    measures: dict[str, tuple[Callable[[str], Any], list[str]]] = {
        "normalize": (normalize, texts),
        "fast tier": (lambda t: fast.assess(TextSubject(t), ScanContext()), texts),
        "fast tier, reference scoring": (lambda t: ref.assess(TextSubject(t), ScanContext()), texts),
        "semantic, one 500-char window (ONNX Runtime)": (lambda t: onnx_enc.encode([t[:500]]), texts),
        "semantic, one 500-char window (numpy)": (lambda t: numpy_enc.encode([t[:500]]), few),
        **{name: (lambda t, s=s: s.scan(t, "prompt"), texts) for name, s in scanners.items()},  # type: ignore[misc]
        **{
            f"document, ~2,000 chars: {name}": (lambda t, s=s: s.scan(t, "document"), docs)  # type: ignore[misc]
            for name, s in scanners.items()
        },
    }  # fmt: skip
    rows, raw = interleaved(measures, args.rounds)
    sem = raw["semantic, one 500-char window (ONNX Runtime)"]["p50"]["median"]
    sem_np = raw["semantic, one 500-char window (numpy)"]["p50"]["median"]
    pipe = raw["pipeline (default PII: PERSON model, no spaCy)"]
    fast_p50 = raw["fast tier"]["p50"]["median"]
    fast_ref = raw["fast tier, reference scoring"]["p50"]["median"]
    met = (
        f"fast tier p50 {fast_p50:.2f} ms ({'met' if fast_p50 <= 2 else 'missed'}); pipeline p50 "
        f"{pipe['p50']['median']:.2f} ms ({'met' if pipe['p50']['median'] <= 15 else 'missed'}), p99 "
        f"{pipe['p99']['median']:.2f} ms ({'met' if pipe['p99']['median'] <= 50 else 'missed'})"
    )
    path = write_result(
        "runtime_detectors",
        started=started,
        title="Runtime detectors: latency on one core",
        issue=6,
        command=f".venv/bin/python bench/runtime_detectors.py --n {args.n} --rounds {args.rounds}",
        target="1,000-character prompt on one CPU core: fast tier p50 <= 2 ms; whole pipeline p50 <= 15 ms, "
        f"p99 <= 50 ms. This run: {met}",
        about=(__doc__ or "").split("\n\n", 1)[1].strip(),
        tables=[
            latency_table(
                args.rounds,
                rows,
                f"The fast tier's LinearScorer (in C where tutela._native.linearscore is built) takes "
                f"{fast_p50 / fast_ref:.2f}× the time of the reference scoring (the same score to 1e-9, "
                "tests/runtime/test_injection.py). "
                f"The semantic tier on ONNX Runtime is {sem_np / sem:.1f}× faster than the numpy forward pass "
                "(same weights, same embeddings). Machine shared with other engineers' jobs: absolute figures "
                "drift with its load; the interleaving keeps ratios fair.",
            )
        ],
        not_measured=[
            "several cores or concurrent requests (the gateway's figures are in its own section)",
            "int8 quantisation of the encoder (not done: the heads are trained on fp32 embeddings)",
            "prompts above 1,000 characters (the cost grows with the number of sentence units)",
        ],
        versions=package_versions(["onnxruntime", "onnx", "numpy", "tokenizers", "spacy"]),
        raw=raw,
    )
    print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
