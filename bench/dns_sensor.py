"""Benchmark of the inline DNS sensor (issue 3): throughput, added latency, memory, fuzzing.

Run from the repository root (takes ~3 minutes with the defaults, ~12 with --memory-s 600):

    nice .venv/bin/python bench/dns_sensor.py [--duration 15] [--qps 5000] [--memory-s 120] [--fuzz 1000000]

What it does, all on loopback, with Debian's Unbound (1 thread, every name answered from local
data) as the upstream and dnsperf as the client:

(a) throughput: dnsperf with 200 queries outstanding over --lines queries drawn Zipf-like from
    --names distinct names, against Unbound directly, through a bare
    uvloop forwarder (id rewrite only: the ceiling of any Python forwarder on this machine) and through
    the sensor with every detector of the issue on (blocklist of 100k names, rebinding, newly observed
    domains, lookalikes of 20 brands, NXDOMAIN bursts, random-subdomain floods), alternating, two
    rounds each; medians and the ratio.
(b) added latency at fixed rates (--latency-qps): per-query latencies from `dnsperf -v`, p50/p99
    direct and through the sensor, and the difference.
(c) memory: the sensor's RSS while dnsperf sends --qps over a file of one million distinct names.
(d) fuzz: --fuzz inputs (mutated, truncated and random packets) through the fast-path parser and
    the answer builders; any exception other than WireError is a failure.

`--detectors default` runs the sensor with no `detectors.dns` (every registered dns detector, as a
fresh install does). `--before-src DIR` also starts the sensor from an earlier source tree (e.g.
`git archive <commit> src | tar -x -C /tmp/before`, then `--before-src /tmp/before/src`) with the same
config, measured in the same rounds, so before/after figures come from one run on one machine.

Results print as JSON and go to bench/work/dns_sensor-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests.dns.unbound import free_port, unbound, wait_udp  # noqa: E402

from tutela.dns import wire  # noqa: E402

BRANDS = ["paypal.com", "github.com", "google.com", "microsoft.com", "apple.com", "amazon.com", "netflix.com",
          "facebook.com", "instagram.com", "linkedin.com", "dropbox.com", "salesforce.com", "adobe.com",
          "zoom.us", "slack.com", "office.com", "outlook.com", "icloud.com", "chase.com", "wellsfargo.com"]  # fmt: skip


CLIENTS = 1  # dnsperf sockets (source ports); --clients sets it


def fuzz(n: int, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    base = [
        wire.build_query(f"{''.join(rng.choice('abcdefghij0123-') for _ in range(rng.randint(1, 20)))}.example.com", t)
        for t in (1, 28, 16, 65)
        for _ in range(50)
    ]
    ok = malformed = 0
    crashes: list[str] = []
    started = time.perf_counter()
    for i in range(n):
        kind = i % 4
        if kind == 0:
            packet = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
        else:
            data = bytearray(rng.choice(base))
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.getrandbits(8)
            if kind == 2:
                data = data[: rng.randint(0, len(data))]
            if kind == 3:  # plant a compression pointer
                pos = rng.randrange(12, max(13, len(data)))
                data[pos : pos + 2] = bytes([0xC0 | rng.getrandbits(6), rng.getrandbits(8)])
            packet = bytes(data)
        try:
            q = wire.parse_query(packet)
            wire.edns_udp_size(packet, q)
            wire.make_error(packet, q, wire.SERVFAIL, ede=wire.EDE_BLOCKED)
            wire.make_sinkhole(packet, q, "0.0.0.0", "::", 60)
            with contextlib.suppress(wire.WireError):
                wire.parse_answers(packet, q)
            ok += 1
        except wire.WireError:
            malformed += 1
        except Exception as exc:
            crashes.append(f"{type(exc).__name__}: {exc} on {packet.hex()}")
    elapsed = time.perf_counter() - started
    return {"inputs": n, "parsed": ok, "wire_errors": malformed, "crashes": len(crashes), "crash_examples": crashes[:5],
            "seconds": round(elapsed, 1), "per_input_us": round(elapsed / n * 1e6, 2)}  # fmt: skip


def write_inputs(work: Path, names: int, lines_n: int) -> dict[str, Path]:
    """The blocklist (100k names), a query file of `lines_n` queries drawn from `names` distinct
    names with Zipf-like popularity (as resolver traffic is: a few names asked very often, a long
    tail asked once), and a file of one million distinct names for the memory run."""
    rng = random.Random(7)
    blocked = [f"ads{i}.tracker{i % 997}.net" for i in range(100_000)]
    (work / "block.hosts").write_text("".join(f"0.0.0.0 {n}\n" for n in blocked))
    distinct = []
    for i in range(names):
        r = i % 100
        if r < 2:
            distinct.append(f"{blocked[rng.randrange(len(blocked))]} A")
        elif r < 3:
            distinct.append(f"{rng.choice(['paypa1', 'gooogle', 'micros0ft', 'amazom', 'netflx'])}{i % 50}.com A")
        else:
            distinct.append(f"host{i % 37}.site{i % 2000}.com {'AAAA' if r % 5 == 0 else 'A'}")
    rng.shuffle(distinct)
    weights = [1.0 / (rank + 1) for rank in range(len(distinct))]
    lines = rng.choices(distinct, weights=weights, k=lines_n)
    (work / "queries.txt").write_text("\n".join(lines) + "\n")
    million = (f"n{i}.site{i % 2000}.com A" for i in range(1_000_000))
    (work / "million.txt").write_text("\n".join(million) + "\n")
    return {"hosts": work / "block.hosts", "queries": work / "queries.txt", "million": work / "million.txt"}


def sensor_config(work: Path, hosts: Path, detectors: str = "issue3") -> Path:
    """issue3: the detectors of issue 3 (below); default: no `detectors.dns`, so every registered dns
    detector runs with its defaults, as on a fresh install."""
    import yaml

    cfg: dict[str, Any] = {
        "detectors": {
            "dns": [
                {"id": "dns.blocklist", "params": {"hosts_files": [str(hosts)]}},
                {"id": "dns.rebinding"},
                {"id": "dns.newly_observed", "params": {"path": str(work / "observed.tsv")}},
                {"id": "dns.lookalike", "params": {"brands": BRANDS}},
                {"id": "dns.nxdomain_burst"},
                {"id": "dns.random_subdomain"},
            ]
        },
        "dns": {"timeout_s": 2.0},
    }
    if detectors == "default":
        del cfg["detectors"]
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def dnsperf(port: int, data: Path, seconds: float, *, qps: int | None = None, verbose: bool = False) -> dict[str, Any]:
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(data), "-l", str(seconds), "-q", "200", "-t", "2",
           "-c", str(CLIENTS)]  # fmt: skip
    if qps:
        cmd += ["-Q", str(qps)]
    if verbose:
        cmd += ["-v"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    res: dict[str, Any] = {}
    for key, pattern in (
        ("sent", r"Queries sent:\s+(\d+)"),
        ("completed", r"Queries completed:\s+(\d+)"),
        ("lost", r"Queries lost:\s+(\d+)"),
        ("qps", r"Queries per second:\s+([\d.]+)"),
        ("avg_latency_s", r"Average Latency \(s\):\s+([\d.]+)"),
    ):
        m = re.search(pattern, out)
        res[key] = float(m.group(1)) if m else None
    m = re.search(r"Response codes:\s+(.*)", out)
    res["rcodes"] = m.group(1).strip() if m else ""
    if verbose:
        # dnsperf's threads can interleave lines; keep the well-formed ones: "> RCODE NAME TYPE SECONDS"
        lat = sorted(float(m.group(1)) for m in re.finditer(r"^> [A-Z]+ \S+ \S+ (\d+\.\d+)$", out, re.MULTILINE))
        if lat:
            res["p50_ms"] = round(lat[len(lat) // 2] * 1e3, 3)
            res["p99_ms"] = round(lat[int(len(lat) * 0.99)] * 1e3, 3)
            res["p999_ms"] = round(lat[int(len(lat) * 0.999)] * 1e3, 3)
            res["samples"] = len(lat)
    return res


def raw_forwarder(listen: int, upstream: int) -> None:
    """The floor of any Python forwarder here: uvloop, id rewrite, no parsing, no detectors."""
    import asyncio

    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        pending: dict[int, tuple[bytes, Any]] = {}
        state = {"next": 0}

        class Up(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                entry = pending.pop((data[0] << 8) | data[1], None)
                if entry is not None:
                    client.sendto(entry[0] + data[2:], entry[1])

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                if len(data) < 12:
                    return
                uid = state["next"] = (state["next"] + 1) & 0xFFFF
                pending[uid] = (data[:2], addr)
                up.sendto(uid.to_bytes(2, "big") + data[2:])

        up, _ = await loop.create_datagram_endpoint(Up, remote_addr=("127.0.0.1", upstream))
        client, _ = await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", listen))
        await asyncio.Event().wait()

    uvloop.run(main())


def _version(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"Version ([\w.]+)", out.stdout + out.stderr)
    return m.group(1) if m else "?"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stage_throughput(
    result: dict[str, Any], args: Any, files: dict[str, Path], up: int, port: int, before: int | None
) -> None:
    print("(a) throughput ...", flush=True)
    raw_port = free_port()
    raw = subprocess.Popen([sys.executable, __file__, "--raw-forwarder", str(raw_port), str(up)])
    wait_udp(raw_port)
    runs: dict[str, list[dict[str, Any]]] = {"unbound": [], "raw_forwarder": [], "sensor": []}
    if before:
        runs["sensor_before"] = []
    try:
        for _ in range(2):
            runs["unbound"].append(dnsperf(up, files["queries"], args.duration))
            runs["raw_forwarder"].append(dnsperf(raw_port, files["queries"], args.duration))
            runs["sensor"].append(dnsperf(port, files["queries"], args.duration))
            if before:
                runs["sensor_before"].append(dnsperf(before, files["queries"], args.duration))
    finally:
        raw.kill()
        raw.wait()
    med = {k: statistics.median(r["qps"] for r in v) for k, v in runs.items()}
    result["throughput"] = {
        "runs": runs,
        "unbound_qps_median": med["unbound"],
        "raw_forwarder_qps_median": med["raw_forwarder"],
        "sensor_qps_median": med["sensor"],
        "ratio_sensor_to_unbound": round(med["sensor"] / med["unbound"], 3),
        "ratio_sensor_to_raw_forwarder": round(med["sensor"] / med["raw_forwarder"], 3),
    }
    if before:
        result["throughput"]["sensor_before_qps_median"] = med["sensor_before"]
        result["throughput"]["ratio_sensor_before_to_unbound"] = round(med["sensor_before"] / med["unbound"], 3)
    print(json.dumps({k: v for k, v in result["throughput"].items() if k != "runs"}), flush=True)


def stage_latency(
    result: dict[str, Any], args: Any, files: dict[str, Path], up: int, port: int, before: int | None
) -> None:
    result["latency"] = []
    for rate in [int(x) for x in args.latency_qps.split(",") if x]:
        print(f"(b) latency at {rate} qps ...", flush=True)
        direct = dnsperf(up, files["queries"], args.latency_s, qps=rate, verbose=True)
        via = dnsperf(port, files["queries"], args.latency_s, qps=rate, verbose=True)
        lat = {
            "qps": rate,
            "unbound": direct,
            "sensor": via,
            "added_p50_ms": round(via["p50_ms"] - direct["p50_ms"], 3),
            "added_p99_ms": round(via["p99_ms"] - direct["p99_ms"], 3),
        }
        if before:
            old = dnsperf(before, files["queries"], args.latency_s, qps=rate, verbose=True)
            lat["sensor_before"] = old
            lat["before_added_p99_ms"] = round(old["p99_ms"] - direct["p99_ms"], 3)
        result["latency"].append(lat)
        print(json.dumps(lat), flush=True)


def stage_memory(result: dict[str, Any], args: Any, files: dict[str, Path], port: int, pid: int) -> None:
    print(f"(c) memory over {args.memory_s:.0f} s at {args.qps} qps, 1M distinct names ...", flush=True)
    samples: list[tuple[float, int]] = []
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(files["million"]),
           "-l", str(args.memory_s), "-Q", str(args.qps), "-q", "200", "-t", "2"]  # fmt: skip
    perf = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    start = time.monotonic()
    while perf.poll() is None:
        samples.append((round(time.monotonic() - start, 1), rss_kib(pid)))
        time.sleep(5)
    out = perf.communicate()[0]
    m = re.search(r"Queries completed:\s+(\d+)", out)
    warm = [kib for t, kib in samples if t >= args.memory_s / 2]  # the second half: caches are full by then
    result["memory"] = {
        "seconds": args.memory_s,
        "qps": args.qps,
        "completed": int(m.group(1)) if m else None,
        "rss_mib_samples": [(t, round(k / 1024, 1)) for t, k in samples],
        "rss_mib_start": round(samples[0][1] / 1024, 1),
        "rss_mib_end": round(samples[-1][1] / 1024, 1),
        "rss_mib_max": round(max(k for _, k in samples) / 1024, 1),
        "growth_second_half_pct": round((warm[-1] - warm[0]) / warm[0] * 100, 1) if warm[1:] else None,
    }
    print(json.dumps({k: v for k, v in result["memory"].items() if k != "rss_mib_samples"}), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per throughput run")
    ap.add_argument("--qps", type=int, default=5000, help="rate for the memory run")
    ap.add_argument("--latency-s", type=float, default=20.0)
    ap.add_argument("--latency-qps", default="1000,5000", help="rates for the latency runs")
    ap.add_argument("--memory-s", type=float, default=120.0, help="memory run length (the issue asks 600)")
    ap.add_argument("--fuzz", type=int, default=1_000_000, help="fuzz inputs (0: skip)")
    ap.add_argument("--names", type=int, default=50_000, help="distinct names in the throughput query file")
    ap.add_argument("--lines", type=int, default=500_000, help="queries in it (Zipf-distributed over the names)")
    ap.add_argument("--workers", type=int, default=1, help="sensor worker processes (SO_REUSEPORT)")
    ap.add_argument("--clients", type=int, default=1, help="dnsperf sockets; use several with --workers")
    ap.add_argument("--stages", default="throughput,latency,memory", help="which sensor stages to run")
    ap.add_argument("--detectors", choices=("issue3", "default"), default="issue3", help="detector set of the sensor")
    ap.add_argument(
        "--before-src",
        type=Path,
        help="a src/ directory of an earlier version (e.g. from `git archive`): its sensor runs side by side",
    )
    ap.add_argument("--raw-forwarder", nargs=2, type=int, metavar=("LISTEN", "UPSTREAM"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.raw_forwarder:
        raw_forwarder(*args.raw_forwarder)
        return 0
    stages = set(args.stages.split(","))
    global CLIENTS
    CLIENTS = args.clients

    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "dnsperf": _version(["dnsperf", "-h"]),
            "unbound": subprocess.run(["unbound", "-V"], capture_output=True, text=True).stdout.splitlines()[0],
            "note": "shared 2-core machine (other jobs running); dnsperf, Unbound and the sensor share the cores",
        },
        "command": " ".join(sys.argv),
    }
    if args.fuzz > 0:
        print(f"fuzzing the fast path with {args.fuzz} inputs ...", flush=True)
        result["fuzz"] = fuzz(args.fuzz)
        print(json.dumps(result["fuzz"]), flush=True)

    if stages & {"throughput", "latency", "memory"}:
        run_sensor_stages(result, args, stages)
    result["machine"]["loadavg_end"] = os.getloadavg()
    out_dir = REPO / "bench" / "work"
    out_dir.mkdir(parents=True, exist_ok=True)
    out_file = out_dir / f"dns_sensor-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out_file.write_text(json.dumps(result, indent=2))
    print(f"results in {out_file}")
    return 1 if result.get("fuzz", {}).get("crashes") else 0


def run_sensor_stages(result: dict[str, Any], args: Any, stages: set[str]) -> None:
    work = Path(tempfile.mkdtemp(prefix="tutela-dns-bench-"))
    files = write_inputs(work, args.names, args.lines)
    config = sensor_config(work, files["hosts"], args.detectors)
    env = {**os.environ, "TUTELA_HOME": str(work / "home")}
    answers = [
        'local-zone: "." redirect',
        "local-data: '. 300 IN A 198.51.100.1'",
        "local-data: '. 300 IN AAAA 2001:db8::1'",
    ]
    with unbound(work / "unbound", local_data=[], extra=answers) as up:
        port = free_port()
        metrics_port = free_port()
        sensor = subprocess.Popen(
            [sys.executable, "-m", "tutela", "--config", str(config), "dns", "serve", "--listen", f"127.0.0.1:{port}",
             "--upstream", f"127.0.0.1:{up}", "--metrics", f"127.0.0.1:{metrics_port}", "--workers", str(args.workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        before, before_port = None, None
        if args.before_src:
            before_port = free_port()
            before = subprocess.Popen(
                [sys.executable, "-m", "tutela", "--config", str(config), "dns", "serve", "--listen",
                 f"127.0.0.1:{before_port}", "--upstream", f"127.0.0.1:{up}"],
                env={**env, "TUTELA_HOME": str(work / "home-before"), "PYTHONPATH": str(args.before_src.resolve())},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        try:
            wait_udp(port, 90)  # the default set loads its models before listening
            dnsperf(port, files["queries"], 3)  # warm-up
            if before_port:
                wait_udp(before_port, 90)
                dnsperf(before_port, files["queries"], 3)
            if "throughput" in stages:
                stage_throughput(result, args, files, up, port, before_port)
            if "latency" in stages:
                stage_latency(result, args, files, up, port, before_port)
            if "memory" in stages and args.memory_s > 0:
                stage_memory(result, args, files, port, sensor.pid)
            import urllib.request

            metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
            result["sensor_metrics"] = [
                line for line in metrics.splitlines()
                if line.startswith(("tutela_dns_verdicts_total", "tutela_dns_verdict_cache", "tutela_dns_upstream",
                                    "tutela_dns_overload", "tutela_dns_responses_total"))
            ]  # fmt: skip
        finally:
            for proc in (sensor, before):
                if proc is None:
                    continue
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    raise SystemExit(main())
