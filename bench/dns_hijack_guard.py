"""Benchmark: inline cost of the response-side takeover detectors per answer.

Three streams of pre-built `DnsResponse`s, judged by `dns.hijack` and `dns.fastflux` as the
sensor would call them: names outside any protected zone (the common case), protected names
answered directly and rotating inside a /24, and protected names behind a CDN CNAME rotating in
three /24s (TTL 20-60). Median microseconds per answer over --runs runs of --answers answers.

    .venv/bin/python bench/dns_hijack_guard.py [--answers 20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import Table, fmt_spread, package_versions, spread, write_result
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


STREAMS = {
    "unprotected": "names outside any protected zone (the common case)",
    "protected_direct": "protected names answered directly, rotating in one /24",
    "protected_cdn": "protected names behind a CDN CNAME, 3 addresses from three /24s, TTL 20-60",
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--answers", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    started = time.monotonic()
    rng = random.Random(1)
    data = streams(args.answers, rng)
    ctx = ScanContext()
    raw: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        hijack = HijackDetector(
            HijackDetector.Config(protect_zones=("example.org",), state_file=Path(tmp) / "b.json"), ModelCache()
        )
        flux = FastFluxDetector(FastFluxDetector.Config(), ModelCache())
        for stream in data.values():  # warm up: learning, PSL load, caches
            for r in stream[:2000]:
                hijack.detect(r, ctx)
                flux.detect(r, ctx)
        for _ in range(args.runs):  # interleaved: each run times every stream and detector once
            for name, stream in data.items():
                for det in (hijack, flux):
                    cell = raw.setdefault(f"{name}/{det.id}", {"us_per_answer": [], "findings": 0})
                    t = time.perf_counter()
                    found = sum(len(list(det.detect(r, ctx))) for r in stream)
                    cell["us_per_answer"].append((time.perf_counter() - t) / len(stream) * 1e6)  # type: ignore[union-attr]
                    cell["findings"] += found  # type: ignore[operator]
    rows = []
    for name, label in STREAMS.items():
        row: list[object] = [label]
        for det_id in ("dns.hijack", "dns.fastflux"):
            s = spread(raw[f"{name}/{det_id}"]["us_per_answer"])  # type: ignore[arg-type]
            row.append(fmt_spread(s, 1))
        row.append(sum(raw[f"{name}/{d}"]["findings"] for d in ("dns.hijack", "dns.fastflux")))  # type: ignore[misc]
        rows.append(row)
    write_result(
        "dns_hijack_guard",
        started=started,
        title="DNS hijack guard and fast-flux scores: inline cost per answer",
        issue=5,
        command=f".venv/bin/python bench/dns_hijack_guard.py --answers {args.answers} --runs {args.runs}",
        about=(
            f"Three streams of {args.answers:,} pre-built answers, judged by `dns.hijack` and `dns.fastflux` as the "
            "sensor calls them, after a warm-up (learning, PSL load). Microseconds per `detect()` call, median "
            f"(min–max) of {args.runs} interleaved runs. No finding is expected: these are unchanged or CDN-rotating "
            "answers (the hijack tests in tests/dns/takeover plant the hijacks)."
        ),
        tables=[Table("µs per answer", ["stream", "dns.hijack", "dns.fastflux", "findings"], rows)],
        not_measured=["the sensor's socket path around the detectors (see the DNS data path section)"],
        versions=package_versions(["dnspython"]),
        raw=raw,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
