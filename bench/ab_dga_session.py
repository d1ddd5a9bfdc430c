"""What `dns.dga_session` adds to an NXDOMAIN answer: the response side of two engines, side by side, in one process.

  nice .venv/bin/python bench/ab_dga_session.py [--names 2000] [--rounds 7] [--clients 64] [--with-dga]

Engine A runs the issue-3 detectors (bench/dns_hotpath.py's "issue3" set, with dns.nxdomain_burst, which already
makes every NXDOMAIN answer run the live response detectors); engine B the same plus dns.dga_session. Both judge
the same NXDOMAIN answers with `DnsEngine.judge_answer` (what the sensor calls on an upstream answer and on one
served from the answer cache), per round A then B or B then A, alternating. Two kinds of names, `--names` each,
from `--clients` clients: random consonant-heavy labels (DGA-like: most are counted, sessions fire) and ordinary
hyphenated words (NXDOMAIN typos: scored, never counted). "first": each registrable domain answered for the
first time (the DGA model runs); "repeat": the same answers again (the verdict is a cache hit; a repeat only
refreshes its time). With --with-dga both engines also run dns.dga (as the default pipeline does) and each name's
query is judged before its answer, as inline: dns.dga_session then reuses dns.dga's verdict; names dns.dga blocks
get no answer, and engine B shows its blocks to dns.dga_session (`<kind>/request` times that request side, per
query). Prints the median over rounds of ns per answer (per query for `request`) for A and B, and the load average.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(1, str(REPO))

import yaml  # noqa: E402
from tests.dns.dga_names import random_names  # noqa: E402

from tutela.core.config import load_settings  # noqa: E402
from tutela.core.findings import Action  # noqa: E402
from tutela.core.registry import DetectorRegistry  # noqa: E402
from tutela.dns.engine import DnsEngine  # noqa: E402
from tutela.dns.subjects import DnsQuery  # noqa: E402

WORDS = ["blue", "garden", "shop", "river", "cafe", "quiet", "forest", "studio", "sunny", "harbor", "bakery",
         "green", "mountain", "books", "town", "bikes", "silver", "lake", "dental", "happy", "paws", "print",
         "cloud", "maps"]  # fmt: skip

FORWARDED = (Action.ALLOW, Action.ALERT)  # request-side verdicts after which the query goes upstream


def names(kind: str, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    if kind == "words":
        return [f"{'-'.join(rng.sample(WORDS, 3))}{i}.{rng.choice(['com', 'net'])}" for i in range(n)]
    return random_names(n, seed)


def engine(home: Path, with_session: bool, with_dga: bool) -> DnsEngine:
    home.mkdir(parents=True, exist_ok=True)
    detectors: list[dict[str, Any]] = [
        {"id": "dns.blocklist", "params": {"deny": ["blocked.example.org"]}},
        {"id": "dns.rebinding"},
        {"id": "dns.newly_observed", "params": {"path": str(home / "observed.tsv")}},
        {"id": "dns.lookalike", "params": {"brands": ["paypal.com", "github.com"]}},
        {"id": "dns.nxdomain_burst"},
        {"id": "dns.random_subdomain"},
    ]
    if with_dga:
        detectors.append({"id": "dns.dga"})
    if with_session:
        detectors.append({"id": "dns.dga_session"})
    path = home / "config.yaml"
    path.write_text(yaml.safe_dump({"detectors": {"dns": detectors}, "dns": {"passive_dns": False}}))
    registry = DetectorRegistry.load()
    e = DnsEngine.from_settings(load_settings(path, detectors=registry), registry)
    e.warmup()
    return e


def judge_all(e: DnsEngine, queries: list[DnsQuery]) -> tuple[int, int]:
    """ns spent on the NXDOMAIN answers, and how many verdicts were not a clean allow."""
    judge = e.judge_answer
    flagged = 0
    t = time.perf_counter_ns()
    for q in queries:
        if judge(q, 3, ()).findings:
            flagged += 1
    return time.perf_counter_ns() - t, flagged


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--with-dga", action="store_true", help="dns.dga on the request side of both engines")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("dga", "words"):
            for stage in ("first", "repeat"):
                results[f"{kind}/{stage}"] = {"A": [], "B": []}
            for r in range(args.rounds):
                # fresh engines and fresh names per round: "first" is a first sighting in both
                batch = names(kind, args.names, seed=1000 * r + (kind == "words"))
                clients = [f"10.9.{c // 250}.{c % 250 + 1}" for c in range(args.clients)]
                queries = [DnsQuery(n, 1, clients[i % args.clients]) for i, n in enumerate(batch)]
                engines = {side: engine(Path(tmp) / f"{kind}-{r}-{side}", side == "B", args.with_dga) for side in "AB"}
                if args.with_dga:  # the request side first; names it blocks get no answer
                    sent = {}
                    for side, e in engines.items():  # timed too: engine B shows its blocks to dns.dga_session
                        t = time.perf_counter_ns()
                        verdicts = [e.judge_query(q) for q in queries]
                        results.setdefault(f"{kind}/request", {"A": [], "B": []})[side].append(
                            (time.perf_counter_ns() - t) / len(queries)
                        )
                        sent[side] = [q for q, v in zip(queries, verdicts, strict=True) if v.action in FORWARDED]
                    assert sent["A"] == sent["B"]
                    queries = sent["A"]
                order = "AB" if r % 2 == 0 else "BA"
                for stage in ("first", "repeat"):
                    for side in order:
                        ns, flagged = judge_all(engines[side], queries)
                        results[f"{kind}/{stage}"][side].append(ns / len(queries))
                        if side == "B" and stage == "first" and r == 0:
                            print(f"{kind}: {flagged} of {len(queries)} answers flagged by engine B", file=sys.stderr)
                for e in engines.values():
                    e.close()
    out: dict[str, Any] = {
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        "rounds": args.rounds,
        "with_dga": args.with_dga,
    }
    for key, sides in results.items():
        a, b = statistics.median(sides["A"]), statistics.median(sides["B"])
        out[key] = {"A_ns": round(a), "B_ns": round(b), "added_ns": round(b - a)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
