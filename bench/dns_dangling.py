"""Benchmark: dangling-DNS scanner throughput (records checked per minute) against a local NSD.

A generated zone of N pointer records with distinct targets (so no answer is reused from the
scanner's cache): 60% resolve, 25% are NXDOMAIN inside a cloud service (Azure App Service), 10%
point into unregistered domains (one NS query more each), 5% are MX/SRV records to resolving
hosts. NSD serves the scanned zone and the target zones on loopback. The same scan also runs with
dnspython's `asyncquery.udp` (a socket per query) in place of the multiplexing client, side by
side, for the ratio. Medians of --runs runs.

    .venv/bin/python bench/dns_dangling.py [--records 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.dns.takeover.nsd import Nsd, soa  # noqa: E402

from tutela.dns.takeover.client import StubClient, to_answer  # noqa: E402
from tutela.dns.takeover.dangling import DanglingScanner  # noqa: E402
from tutela.dns.takeover.fingerprints import Fingerprints  # noqa: E402
from tutela.dns.takeover.zonefile import read_zone_file  # noqa: E402


def build_world(n: int) -> tuple[dict[str, str], dict[str, int]]:
    scanned, targets, cloud = [soa("bench.example")], [soa("targets.net")], [soa("azurewebsites.net")]
    planted = {"nxdomain_cloud": 0, "unregistered": 0, "resolving": 0}
    for i in range(n):
        r = i % 20
        if r < 12:
            scanned.append(f"r{i} IN CNAME h{i}.targets.net.")
            targets.append(f"h{i} IN A 203.0.{(i >> 8) & 255}.{i & 255}")
            planted["resolving"] += 1
        elif r < 17:
            scanned.append(f"r{i} IN CNAME gone{i}.azurewebsites.net.")
            planted["nxdomain_cloud"] += 1
        elif r < 19:
            scanned.append(f"r{i} IN CNAME www.lapsed{i}.com.")
            planted["unregistered"] += 1
        else:
            scanned.append(
                f"r{i} IN MX 10 mx{i}.targets.net." if i % 2 else f"_s{i}._tcp IN SRV 0 5 5060 mx{i}.targets.net."
            )
            targets.append(f"mx{i} IN A 203.1.{(i >> 8) & 255}.{i & 255}")
            planted["resolving"] += 1
    zones = {
        "bench.example": "\n".join(scanned) + "\n",
        "targets.net": "\n".join(targets) + "\n",
        "azurewebsites.net": "\n".join(cloud) + "\n",
        "com": soa("com"),
    }
    return zones, planted


class SocketPerQueryClient(StubClient):
    """The same interface through dnspython's asyncquery.udp: one socket per query."""

    async def __aenter__(self) -> SocketPerQueryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def _query(self, name: str, rdtype: str):  # type: ignore[no-untyped-def]
        import dns.asyncquery
        import dns.exception
        import dns.message

        from tutela.dns.takeover.client import Answer

        async with self._sem:
            q = dns.message.make_query(name, rdtype)
            for _ in range(self.attempts):
                self.sent += 1
                try:
                    return to_answer(await dns.asyncquery.udp(q, self.host, timeout=self.timeout, port=self.port))
                except dns.exception.Timeout:
                    continue
            return Answer("TIMEOUT")


async def scan_once(client_cls: type[StubClient], address: tuple[str, int], zone: str, records: list) -> dict:  # type: ignore[type-arg]
    fingerprints = Fingerprints.load()
    async with client_cls(*address, timeout=2.0) as client:
        scanner = DanglingScanner(client, fingerprints)
        t = time.perf_counter()
        findings = await scanner.scan(zone, records)
        seconds = time.perf_counter() - t
    return {
        "seconds": seconds,
        "records_per_minute": len(records) / seconds * 60,
        "findings": len(findings),
        "queries": scanner.stats.queries,
        "inconclusive": scanner.stats.inconclusive,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    zones, planted = build_world(args.records)
    try:
        import uvloop

        run = uvloop.run
        loop_name = "uvloop"
    except ImportError:
        run = asyncio.run
        loop_name = "asyncio"
    with tempfile.TemporaryDirectory() as tmp, Nsd(Path(tmp), zones) as nsd:
        t = time.perf_counter()
        zone, records = read_zone_file(Path(tmp) / "bench.example.zone")
        parse_s = time.perf_counter() - t
        results: dict[str, list[dict]] = {"multiplexed": [], "socket-per-query": []}  # type: ignore[type-arg]
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            results["multiplexed"].append(run(scan_once(StubClient, nsd.address, zone, records)))
            results["socket-per-query"].append(run(scan_once(SocketPerQueryClient, nsd.address, zone, records)))
    expected = planted["nxdomain_cloud"] + planted["unregistered"]
    summary = {
        "records": len(records),
        "expected_findings": expected,
        "zone_parse_s": round(parse_s, 3),
        "loop": loop_name,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, Python {platform.python_version()}",
    }
    for name, runs in results.items():
        summary[name] = {
            "median_records_per_minute": round(statistics.median(r["records_per_minute"] for r in runs)),
            "median_seconds": round(statistics.median(r["seconds"] for r in runs), 3),
            "queries": runs[0]["queries"],
            "findings": [r["findings"] for r in runs],
            "inconclusive": [r["inconclusive"] for r in runs],
        }
    scan_s = summary["multiplexed"]["median_seconds"]
    summary["end_to_end_records_per_minute"] = round(len(records) / (parse_s + scan_s) * 60)
    summary["ratio"] = round(
        summary["multiplexed"]["median_records_per_minute"] / summary["socket-per-query"]["median_records_per_minute"],
        2,
    )
    print(json.dumps(summary, indent=2))
    ok = all(r["findings"] == expected for r in results["multiplexed"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
