"""Benchmark: inline cost of the response-side takeover detectors per answer.

Three streams of pre-built `DnsResponse`s, judged by `dns.hijack` and `dns.fastflux` as the
sensor would call them: names outside any protected zone (the common case), protected names
answered directly and rotating inside a /24, and protected names behind a CDN CNAME rotating in
three /24s (TTL 20-60). Median microseconds per answer over --runs runs of --answers answers.

    .venv/bin/python bench/dns_hijack_guard.py [--answers 20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tutela.core.detector import ScanContext
from tutela.core.models import ModelCache
from tutela.dns.subjects import DnsAnswer, DnsQuery, DnsResponse
from tutela.dns.takeover.detectors import FastFluxDetector, HijackDetector


def response(name: str, addresses: list[str], ttl: int, cname: str | None = None) -> DnsResponse:
    answers = []
    owner = name
    if cname:
        answers.append(DnsAnswer(name, 5, ttl, cname + "."))
        owner = cname
    answers += [DnsAnswer(owner, 1, ttl, a) for a in addresses]
    return DnsResponse(DnsQuery(name, 1), 0, tuple(answers))


def streams(n: int, rng: random.Random) -> dict[str, list[DnsResponse]]:
    pool = [f"151.101.{t}.{rng.randrange(1, 255)}" for t in (1, 65, 129) for _ in range(10)]
    return {
        "unprotected": [
            response(
                f"host{rng.randrange(5000)}.site{rng.randrange(500)}.com", [f"203.0.113.{rng.randrange(256)}"], 300
            )
            for _ in range(n)
        ],
        "protected_direct": [
            response(f"h{rng.randrange(200)}.example.org", [f"198.51.100.{rng.randrange(256)}"], rng.randint(20, 60))
            for _ in range(n)
        ],
        "protected_cdn": [
            response(f"c{rng.randrange(200)}.example.org", rng.sample(pool, 3), rng.randint(20, 60), "edge.cdnco.net")
            for _ in range(n)
        ],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--answers", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    rng = random.Random(1)
    data = streams(args.answers, rng)
    ctx = ScanContext()
    out: dict[str, object] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}",
        "answers_per_run": args.answers,
    }
    with tempfile.TemporaryDirectory() as tmp:
        hijack = HijackDetector(
            HijackDetector.Config(protect_zones=("example.org",), state_file=Path(tmp) / "b.json"), ModelCache()
        )
        flux = FastFluxDetector(FastFluxDetector.Config(), ModelCache())
        for stream in data.values():  # warm up: learning, PSL load, caches
            for r in stream[:2000]:
                hijack.detect(r, ctx)
                flux.detect(r, ctx)
        for name, stream in data.items():
            for det in (hijack, flux):
                times = []
                findings = 0
                for _ in range(args.runs):
                    t = time.perf_counter()
                    for r in stream:
                        findings += len(list(det.detect(r, ctx)))
                    times.append((time.perf_counter() - t) / len(stream) * 1e6)
                out[f"{name}/{det.id}"] = {
                    "median_us_per_answer": round(statistics.median(times), 1),
                    "findings": findings,
                }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
