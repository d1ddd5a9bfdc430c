"""The DNS data path (issues 3 and 9): tutela's sensor vs dnsmasq vs Unbound, side by side, on loopback.

Run from the repository root (the suite runs it as `python -m bench.run dns_path` and `dns_memory`):

    nice .venv/bin/python bench/dns_sensor.py [--runs 3] [--duration 10] [--latency-s 10] [--fuzz 1000000]
    nice .venv/bin/python bench/dns_sensor.py --stages memory --memory-s 600      # writes dns_memory

Everything forwards to one local Unbound (Debian, 1 thread, answering every name from local data, so
the upstream is never the bottleneck's unknown) and is driven by dnsperf over loopback:

  unbound            Unbound answering directly: the ceiling
  raw_forwarder      a bare uvloop forwarder (id rewrite only, no parsing, no judging): the ceiling of any
                     one-process Python forwarder on this machine
  dnsmasq_nocache    Debian's dnsmasq-base (the engine inside Pi-hole), cache-size=0
  dnsmasq_cache      the same with cache-size=10000 (Pi-hole's setting; dnsmasq's default is 150)
  tutela_nocache     `tutela dns serve` with the detectors of issue 3, dns.answer_cache_size = 0
  tutela_cache       the same with its answer cache on (the default, 100,000 answers)
  (variants for A/B runs, not in the default list: a tutela target with "_inproc" runs DuckDB in the
  sensor's own threads (dns.store_keeper off), with "_w2" two SO_REUSEPORT workers; use --clients 4
  so dnsperf's sockets spread over the workers, with "_unbatched" the client socket is read and
  answered one datagram per system call (dns.udp_batch off), with "_pure" the sensor's Python code only
  (TUTELA_PURE_PYTHON=1: no compiled hot loop), with "_base" the sensor of the source tree given by
  --base-src (e.g. /work/main/src: main vs a branch, interleaved in one run))

dnsmasq and tutela load the same 100,000-name block list (dnsmasq `address=/name/` lines: NXDOMAIN for
the name and its subdomains; tutela a hosts file, blocked with NXDOMAIN) and both refuse DNS rebinding
(dnsmasq --stop-dns-rebind; tutela dns.rebinding). Tutela also runs newly-observed domains, lookalikes
of 20 brands, NXDOMAIN bursts and random-subdomain floods, records events and passive DNS.

Stages (--stages):
  throughput  dnsperf, 200 queries outstanding, --duration s per target per round; the targets'
              order rotates each round (interleaved A/B, so machine drift hits every side); --runs rounds.
              Also each server's CPU time per answered query (its process tree from /proc: threads, the
              store keeper, workers), a cost figure that other load on the machine moves less than qps
  latency     dnsperf -Q --latency-qps (5,000) for --latency-s s per target per round, same rotation:
              average latency (dnsperf's) and p50/p99 of the per-query latencies of `dnsperf -v`
  fuzz        --fuzz inputs (mutated, truncated and random packets) through the fast-path parser and
              the answer builders; any exception other than WireError is a failure
  memory      (result `dns_memory`) the tutela sensor's RSS every 5 s while dnsperf sends --qps over
              one million distinct names for --memory-s s

Query mix: --lines queries drawn Zipf-like from --names distinct names (2% blocklisted, 1% lookalikes,
20% AAAA), as resolver traffic is: a few names very often, a long tail once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests.dns.unbound import free_port, unbound, wait_udp  # noqa: E402

from bench.report import Table, package_versions, spread, write_result  # noqa: E402
from tutela.dns import wire  # noqa: E402

BRANDS = ["paypal.com", "github.com", "google.com", "microsoft.com", "apple.com", "amazon.com", "netflix.com",
          "facebook.com", "instagram.com", "linkedin.com", "dropbox.com", "salesforce.com", "adobe.com",
          "zoom.us", "slack.com", "office.com", "outlook.com", "icloud.com", "chase.com", "wellsfargo.com"]  # fmt: skip
TARGETS = ("unbound", "raw_forwarder", "dnsmasq_nocache", "dnsmasq_cache", "tutela_nocache", "tutela_cache")
DNSMASQ_CACHE = 10_000
CLIENTS = 1  # dnsperf client sockets (--clients); several let SO_REUSEPORT spread them over --workers


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
    (work / "block.dnsmasq.conf").write_text("".join(f"address=/{n}/\n" for n in blocked))
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
    return {
        "hosts": work / "block.hosts",
        "dnsmasq": work / "block.dnsmasq.conf",
        "queries": work / "queries.txt",
        "million": work / "million.txt",
    }


def sensor_config(work: Path, hosts: Path, name: str, dns: dict[str, Any]) -> Path:
    """The detectors of issue 3 with the 100k-name block list; `dns` overrides settings."""
    import yaml

    cfg: dict[str, Any] = {
        "detectors": {
            "dns": [
                {"id": "dns.blocklist", "params": {"hosts_files": [str(hosts)]}},
                {"id": "dns.rebinding"},
                {"id": "dns.newly_observed", "params": {"path": str(work / f"observed-{name}.tsv")}},
                {"id": "dns.lookalike", "params": {"brands": BRANDS}},
                {"id": "dns.nxdomain_burst"},
                {"id": "dns.random_subdomain"},
            ]
        },
        "dns": {"timeout_s": 2.0, **dns},
    }
    path = work / f"config-{name}.yaml"
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


def cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by a process, its threads and its descendants (the
    sensor's store keeper, SO_REUSEPORT workers); 0.0 when unknown."""
    if pid is None:
        return 0.0
    total, todo, tick = 0.0, [pid], os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@contextlib.contextmanager
def started(argv: list[str], port: int, env: dict[str, str] | None = None, wait_s: float = 90) -> Iterator[int]:
    """A server process on 127.0.0.1:port, stopped (SIGTERM, then SIGKILL) on exit; yields its pid."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        try:
            wait_udp(port, wait_s)
        except RuntimeError:
            proc.kill()
            err = proc.communicate(timeout=10)[1].decode(errors="replace")
            raise RuntimeError(f"{argv[0]} did not start: {err[-1500:]}") from None
        yield proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def dnsmasq_argv(work: Path, port: int, upstream: int, cache_size: int, block_conf: Path) -> list[str]:
    binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    return [
        binary,
        "--keep-in-foreground",
        "--conf-file=" + str(block_conf),
        "--no-resolv",
        "--no-hosts",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        f"--port={port}",
        f"--server=127.0.0.1#{upstream}",
        f"--cache-size={cache_size}",
        "--dns-forward-max=1000",
        "--stop-dns-rebind",
        "--user=root",
        f"--pid-file={work / f'dnsmasq-{port}.pid'}",
    ]


def tutela_argv(config: Path, port: int, upstream: int, metrics: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tutela",
        "--config",
        str(config),
        "dns",
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--upstream",
        f"127.0.0.1:{upstream}",
        "--metrics",
        f"127.0.0.1:{metrics}",
        "--workers",
        str(workers),
    ]


def sensor_metrics(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("tutela_dns_") and " " in line and "{" not in line:
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
        elif line.startswith(
            (
                "tutela_dns_loop_lag_seconds_bucket",
                "tutela_dns_gc_collections_total",
                "tutela_dns_latency_seconds_bucket",
            )
        ):
            key, value = line.rsplit(" ", 1)  # e.g. ..._bucket{le="0.001"} -> ..._bucket_le_0.001
            out[key.replace('{le="', "_le_").replace('{generation="', "_gen_").rstrip('"}')] = float(value)
    return out


def stall_note(m: dict[str, float]) -> str:
    """GC and event-loop stalls seen by the sensor (its own metrics, core/stalls.py)."""
    gcs = sum(m.get(f"tutela_dns_gc_collections_total_gen_{g}", 0) for g in range(3))
    ticks = m.get("tutela_dns_loop_lag_seconds_bucket_le_+Inf", 0)
    over = ticks - m.get("tutela_dns_loop_lag_seconds_bucket_le_0.001", 0)
    return (
        f"cyclic GC runs {gcs:.0f} (max pause {m.get('tutela_dns_gc_pause_seconds_max', 0) * 1e3:.1f} ms); "
        f"event-loop lag over 1 ms in {over / max(1, ticks):.2%} of {ticks:,.0f} samples (one every 5 ms), "
        f"max {m.get('tutela_dns_loop_lag_seconds_max', 0) * 1e3:.1f} ms"
    )


def rotate(names: list[str], r: int) -> list[str]:
    return names[r % len(names) :] + names[: r % len(names)]


def stage_throughput(
    args: Any, ports: dict[str, int], files: dict[str, Path], pids: dict[str, int] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """dnsperf at full speed per target; also the server's CPU time per answered query (its own
    process tree, so a load-independent cost figure on a shared machine; not for Unbound)."""
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in ports}
    pids = pids or {}
    for r in range(args.runs):
        for t in rotate(list(ports), r):
            before = cpu_s(pids.get(t))
            res = dnsperf(ports[t], files["queries"], args.duration)
            if t in pids and res.get("completed"):
                res["cpu_us_per_query"] = round((cpu_s(pids[t]) - before) / res["completed"] * 1e6, 2)
            runs[t].append(res)
            print(f"throughput round {r + 1} {t}: {res['qps']:,.0f} qps, {res.get('cpu_us_per_query')} µs CPU/query",
                  flush=True)  # fmt: skip
    return runs


def tail_note(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """What the sensor itself saw during one latency run (deltas of its metrics): the share of
    event-loop lag samples over 1 ms (stalls: GC, GIL, CPU contention), the share of answers that
    took over 1 ms inside the sensor, and cyclic GC runs."""

    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    ticks = delta("tutela_dns_loop_lag_seconds_bucket_le_+Inf")
    answers = delta("tutela_dns_latency_seconds_bucket_le_+Inf")
    return {
        "lag_over_1ms_share": round((ticks - delta("tutela_dns_loop_lag_seconds_bucket_le_0.001")) / max(1, ticks), 4),
        "answers_over_1ms_in_sensor_share": round(
            (answers - delta("tutela_dns_latency_seconds_bucket_le_0.001")) / max(1, answers), 5
        ),
        "gc_runs": sum(delta(f"tutela_dns_gc_collections_total_gen_{g}") for g in range(3)),
    }


def stage_latency(
    args: Any, ports: dict[str, int], files: dict[str, Path], metric_ports: dict[str, int] | None = None
) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in ports}
    metric_ports = metric_ports or {}
    for r in range(args.runs):
        for t in rotate(list(ports), r):
            before = sensor_metrics(metric_ports[t]) if t in metric_ports else None
            res = dnsperf(ports[t], files["queries"], args.latency_s, qps=args.latency_qps, verbose=True)
            if before is not None:
                res["sensor"] = tail_note(before, sensor_metrics(metric_ports[t]))
            runs[t].append(res)
            print(
                f"latency round {r + 1} {t}: avg {res['avg_latency_s'] * 1e3:.3f} ms, "
                f"p99 {res.get('p99_ms')} ms, {res['qps']:,.0f} qps" + (f", sensor {res['sensor']}" if before else ""),
                flush=True,
            )
    return runs


def _fmt(s: dict[str, float], digits: int = 0) -> str:
    return f"{s['median']:,.{digits}f} ({s['min']:,.{digits}f}–{s['max']:,.{digits}f})"


def versions() -> dict[str, str]:
    dnsmasq = subprocess.run(
        [shutil.which("dnsmasq") or "/usr/sbin/dnsmasq", "--version"], capture_output=True, text=True
    ).stdout.split("\n", 1)[0]
    unbound_v = subprocess.run(["unbound", "-V"], capture_output=True, text=True).stdout.splitlines()[0]
    return {
        "dnsmasq": dnsmasq.replace("Dnsmasq version ", "").split()[0] if dnsmasq else "?",
        "unbound": unbound_v.replace("Version ", ""),
        "dnsperf": _version(["dnsperf", "-h"]),
        **package_versions(["uvloop", "tutela"]),
    }


NOT_MEASURED = [
    "DNSSEC validation (Unbound runs without a validator; dnsmasq without --dnssec; tutela passes DNSSEC records "
    "through untouched and validates nothing)",
    "dnsmasq's DHCP, TFTP and local-hosts features, and Pi-hole's FTL front end (its query database and web UI)",
    "tutela's detectors beyond the block list and rebinding (newly observed, lookalikes, NXDOMAIN bursts, random "
    "subdomains, events, passive DNS): dnsmasq has no equivalent, so tutela carries that work and dnsmasq does not",
    "TCP clients, DNS over TLS/HTTPS, upstream latency (the upstream is local and answers from memory), several "
    "sensor processes (--workers) on a machine with cores to spare",
    "a real resolver's cache-miss pattern: every name is answered by the upstream at once, so uncached figures "
    "measure forwarding, not recursion",
]


def dns_path_result(
    args: Any,
    started_at: float,
    thr: dict[str, list[dict[str, Any]]],
    lat: dict[str, list],
    fz: dict[str, Any] | None,
    metrics: dict[str, dict[str, float]],
) -> None:
    tables, raw = [], {"throughput": thr, "latency": lat, "fuzz": fz, "sensor_metrics": metrics}
    labels = {
        "unbound": "Unbound directly (ceiling)",
        "raw_forwarder": "bare uvloop forwarder (Python ceiling)",
        "dnsmasq_nocache": "dnsmasq, cache-size=0",
        "dnsmasq_cache": f"dnsmasq, cache-size={DNSMASQ_CACHE:,}",
        "tutela_nocache": "tutela sensor, answer cache off",
        "tutela_cache": "tutela sensor, answer cache on",
        "tutela_nocache_inproc": "tutela sensor, answer cache off, DuckDB in-process",
        "tutela_cache_inproc": "tutela sensor, answer cache on, DuckDB in-process",
        "tutela_cache_unbatched": "tutela sensor, answer cache on, one system call per datagram",
        "tutela_cache_pure": "tutela sensor, answer cache on, Python only (TUTELA_PURE_PYTHON=1)",
        "tutela_cache_base": "tutela sensor, answer cache on, the --base-src tree",
    }
    summary: dict[str, Any] = {}
    if thr:
        med = {t: spread([r["qps"] for r in v]) for t, v in thr.items() if v}
        ub = med["unbound"]["median"]
        rows = []
        for t in thr:
            peer = {"tutela_nocache": "dnsmasq_nocache", "tutela_cache": "dnsmasq_cache"}.get(t)
            cpu = [r["cpu_us_per_query"] for r in thr[t] if r.get("cpu_us_per_query") is not None]
            rows.append(
                [
                    labels.get(t, t),
                    _fmt(med[t]),
                    f"{med[t]['median'] / ub:.3f}",
                    f"{med[t]['median'] / med[peer]['median']:.2f}×" if peer in med else "",
                    _fmt(spread(cpu), 1) if cpu else "",
                ]
            )
        met = med.get("tutela_cache", {}).get("median", 0) >= 40_000
        tables.append(
            Table(
                f"Queries/s, 200 outstanding, {args.duration:.0f} s per run, {args.runs} interleaved rounds "
                f"(issue 3 target >= 40,000 with every detector: {'met' if met else 'missed'} with the answer cache)",
                [
                    "target",
                    "queries/s median (min–max)",
                    "ratio to Unbound",
                    "tutela / dnsmasq (same cache mode)",
                    "server CPU µs per query",
                ],
                rows,
            )
        )
        summary["qps"] = {t: s["median"] for t, s in med.items()}
    if lat:
        rows = []
        base = lat.get("unbound", [])
        for t, v in lat.items():
            if not v:
                continue
            avg = spread([r["avg_latency_s"] * 1e3 for r in v])
            p99 = spread([r["p99_ms"] for r in v if r.get("p99_ms") is not None] or [float("nan")])
            added_avg = added_p99 = ""
            if t != "unbound" and base:
                da = [a["avg_latency_s"] * 1e3 - b["avg_latency_s"] * 1e3 for a, b in zip(v, base, strict=False)]
                dp = [
                    a["p99_ms"] - b["p99_ms"]
                    for a, b in zip(v, base, strict=False)
                    if a.get("p99_ms") is not None and b.get("p99_ms") is not None
                ]
                added_avg = _fmt(spread(da), 3)
                added_p99 = _fmt(spread(dp), 3) if dp else ""
                summary.setdefault("added_p99_ms", {})[t] = statistics.median(dp) if dp else None
            rows.append(
                [
                    labels.get(t, t),
                    _fmt(avg, 3),
                    _fmt(p99, 3),
                    added_avg,
                    added_p99,
                    f"{statistics.median(r['qps'] for r in v):,.0f}",
                ]
            )
        tables.append(
            Table(
                f"Latency at a fixed {args.latency_qps:,} queries/s, {args.latency_s:.0f} s per run, {args.runs} "
                "interleaved rounds (ms; added = minus Unbound directly in the same round; issue 3 target: "
                "added p99 <= 1 ms)",
                ["target", "average", "p99", "added average", "added p99", "queries/s reached"],
                rows,
            )
        )
    if fz is not None:
        tables.append(
            Table(
                "Fuzzing the fast path (parse_query, edns_udp_size, parse_answers, answer builders)",
                ["inputs", "parsed", "WireError", "other exceptions", "µs per input"],
                [[fz["inputs"], fz["parsed"], fz["wire_errors"], fz["crashes"], fz["per_input_us"]]],
            )
        )
    notes = []
    for t, m in metrics.items():
        hits, misses = (
            m.get("tutela_dns_verdict_cache_hits_total", 0),
            m.get("tutela_dns_verdict_cache_misses_total", 0),
        )
        ah, am = m.get("tutela_dns_answer_cache_hits_total"), m.get("tutela_dns_answer_cache_misses_total")
        line = f"{labels.get(t, t)}: verdict-cache hits {hits / max(1, hits + misses):.1%}"
        if ah is not None and am is not None:
            line += f", answer-cache hits {ah / max(1, ah + am):.1%}"
        notes.append(
            line + f", upstream timeouts {m.get('tutela_dns_upstream_timeouts_total', 0):.0f}; {stall_note(m)}."
        )
    for t, v in lat.items():
        seen = [r["sensor"] for r in v if r.get("sensor")]
        if seen:
            lag = statistics.median(x["lag_over_1ms_share"] for x in seen)
            inside = statistics.median(x["answers_over_1ms_in_sensor_share"] for x in seen)
            notes.append(
                f"{labels.get(t, t)}, during the {args.latency_qps:,} queries/s runs (medians of the rounds): "
                f"event-loop lag over 1 ms in {lag:.2%} of samples, answers taking over 1 ms inside the sensor "
                f"{inside:.3%}, cyclic GC runs {sum(x['gc_runs'] for x in seen):.0f}: what the sensor does not see "
                "itself (dnsperf's p99 above these) is waiting to run (CPU shared with dnsperf, Unbound, the "
                "store keeper and other load) and the kernel's queues."
            )
    notes.append(
        "The machine is a shared 2-core VM: dnsperf, Unbound and the server under test share the two cores "
        f"(load average at the start {args.load_start}); only ratios within this run compare."
    )
    raw["summary"] = summary
    write_result(
        "dns_path",
        started=started_at,
        title="DNS data path: tutela's sensor vs dnsmasq vs Unbound",
        issue=3,
        command=f".venv/bin/python bench/dns_sensor.py {' '.join(sys.argv[1:])}".strip(),
        target=(
            "issue 3: >= 40,000 queries/s through the sensor with every issue-3 detector on, and <= 1 ms added "
            "p99 at 5,000 queries/s against querying the upstream directly; issue 9: ratios against dnsmasq "
            "(with and without answer caches) and Unbound"
        ),
        about=(
            f"dnsperf on loopback against each target, all forwarding to one local Unbound (1 thread, every name "
            f"answered from local data). {args.lines:,} queries drawn Zipf-like from {args.names:,} distinct names "
            "(2% on the 100,000-name block list both tutela and dnsmasq load, 1% lookalikes, 20% AAAA). tutela runs "
            "every detector of issue 3 (block list, rebinding, newly observed, lookalikes of 20 brands, NXDOMAIN "
            "bursts, random subdomains) with events and passive DNS; dnsmasq blocks the same names (NXDOMAIN) and "
            "refuses rebinding (--stop-dns-rebind). Each target gets a 3 s warm-up; rounds rotate the order."
        ),
        tables=tables,
        notes=notes,
        not_measured=NOT_MEASURED,
        versions=versions(),
        raw=raw,
    )


def stage_memory(args: Any, work: Path, files: dict[str, Path], up: int) -> None:
    started_at = time.monotonic()
    config = sensor_config(work, files["hosts"], "memory", {})
    port, mport = free_port(), free_port()
    env = {**os.environ, "TUTELA_HOME": str(work / "home-memory")}
    samples: list[tuple[float, int]] = []
    with started(tutela_argv(config, port, up, mport, 1), port, env) as pid:
        cmd = [
            "dnsperf",
            "-s",
            "127.0.0.1",
            "-p",
            str(port),
            "-d",
            str(files["million"]),
            "-l",
            str(args.memory_s),
            "-Q",
            str(args.qps),
            "-q",
            "200",
            "-t",
            "2",
        ]
        log = work / "dnsperf-memory.log"
        cpu_before = cpu_s(pid)
        with log.open("w") as sink:  # a file, not a pipe: dnsperf prints every lost query and would block
            perf = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
            start = time.monotonic()
            while perf.poll() is None:
                samples.append((round(time.monotonic() - start, 1), rss_kib(pid)))
                time.sleep(5)
        cpu_used = cpu_s(pid) - cpu_before
        out = log.read_text(errors="replace")
        metrics = sensor_metrics(mport)
    completed = re.search(r"Queries completed:\s+(\d+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    qps = re.search(r"Queries per second:\s+([\d.]+)", out)
    warm = [k for t, k in samples if t >= args.memory_s / 2]  # the second half: caches are full by then
    growth = (warm[-1] - warm[0]) / warm[0] * 100 if len(warm) > 1 else float("nan")
    band = (max(warm) - min(warm)) / min(warm) * 100 if warm else float("nan")
    mib = [(t, round(k / 1024, 1)) for t, k in samples]
    every = max(1, len(mib) // 20)
    reached = float(qps.group(1)) if qps else 0.0
    # every query a first sighting: the sensor's CPU per answer is the full path's cost per new name
    cpu_us = round(cpu_used / int(completed.group(1)) * 1e6, 1) if completed and int(completed.group(1)) else "?"
    print(f"memory: {reached:,.0f} queries/s reached, {cpu_us} µs sensor CPU per answered query", flush=True)
    flat = "flat" if abs(growth) <= 10 and band <= 10 else "not flat"
    rate = "met" if reached >= 0.95 * args.qps else f"missed: {reached:,.0f} of {args.qps:,} reached"
    met = f"memory {flat} within 10%; rate {rate}"
    write_result(
        "dns_memory",
        started=started_at,
        title="DNS sensor memory under one million distinct names",
        issue=3,
        command=f".venv/bin/python bench/dns_sensor.py {' '.join(sys.argv[1:])}".strip(),
        target="memory flat (within 10%) over a 10-minute run at 5,000 queries/s with one million distinct names",
        about=(
            f"`tutela dns serve` with every issue-3 detector and its answer cache on (the defaults: verdict cache "
            f"200,000, answer cache 100,000) forwarding to a local Unbound; dnsperf sends {args.qps:,} queries/s "
            f"(200 outstanding at most) for {args.memory_s:.0f} s over one million distinct names, so nearly every "
            "query misses every cache and runs every detector. RSS is sampled every 5 s; the second half of the run "
            "(caches full) is what must stay flat."
        ),
        tables=[
            Table(
                f"RSS over the run (target {met})",
                ["measure", "value"],
                [
                    ["seconds", args.memory_s],
                    ["queries completed", int(completed.group(1)) if completed else "?"],
                    ["queries lost", int(lost.group(1)) if lost else "?"],
                    ["queries/s reached", round(float(qps.group(1))) if qps else "?"],
                    ["sensor CPU per answered query (µs; process tree, store keeper included)", cpu_us],
                    ["RSS at start (MiB)", mib[0][1] if mib else "?"],
                    ["RSS at half time (MiB)", round(warm[0] / 1024, 1) if warm else "?"],
                    ["RSS at the end (MiB)", mib[-1][1] if mib else "?"],
                    ["RSS max (MiB)", max(m for _, m in mib) if mib else "?"],
                    ["growth over the second half", f"{growth:+.1f}%"],
                    ["max-min band over the second half", f"{band:.1f}%"],
                ],
            ),
            Table("RSS samples (MiB)", ["second", "RSS"], [[t, m] for t, m in mib[::every]]),
        ],
        notes=[
            f"Verdict-cache hits {metrics.get('tutela_dns_verdict_cache_hits_total', 0):,.0f}, misses "
            f"{metrics.get('tutela_dns_verdict_cache_misses_total', 0):,.0f}; answer-cache entries at the end "
            f"{metrics.get('tutela_dns_answer_cache_entries', 0):,.0f}, evictions "
            f"{metrics.get('tutela_dns_answer_cache_evictions_total', 0):,.0f}; upstream timeouts "
            f"{metrics.get('tutela_dns_upstream_timeouts_total', 0):,.0f}; {stall_note(metrics)}.",
            "Shared 2-core VM: when the sensor cannot keep up, dnsperf's 200-outstanding limit slows the offered "
            "rate, which the 'queries/s reached' row shows.",
        ],
        not_measured=["memory of several workers (--workers)", "a name mix with long TTLs held for days"],
        versions=versions(),
        raw={"samples": mib, "metrics": metrics, "dnsperf": out[-3000:]},
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="interleaved rounds per stage")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per throughput run")
    ap.add_argument("--latency-s", type=float, default=10.0, help="seconds per latency run")
    ap.add_argument("--latency-qps", type=int, default=5000, help="fixed rate of the latency runs")
    ap.add_argument("--qps", type=int, default=5000, help="rate of the memory run")
    ap.add_argument("--memory-s", type=float, default=600.0, help="memory run length")
    ap.add_argument("--fuzz", type=int, default=1_000_000, help="fuzz inputs (0: skip)")
    ap.add_argument("--names", type=int, default=50_000, help="distinct names in the query file")
    ap.add_argument("--lines", type=int, default=500_000, help="queries in it (Zipf-distributed over the names)")
    ap.add_argument("--workers", type=int, default=1, help="tutela sensor worker processes (SO_REUSEPORT)")
    ap.add_argument("--clients", type=int, default=1, help="dnsperf client sockets (use several with workers)")
    ap.add_argument("--targets", default=",".join(TARGETS), help="which targets to measure")
    ap.add_argument("--base-src", help='the source tree of the "_base" targets (PYTHONPATH)')
    ap.add_argument("--stages", default="throughput,latency,fuzz", help="throughput,latency,fuzz and/or memory")
    ap.add_argument("--raw-forwarder", nargs=2, type=int, metavar=("LISTEN", "UPSTREAM"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.raw_forwarder:
        raw_forwarder(*args.raw_forwarder)
        return 0
    global CLIENTS
    CLIENTS = args.clients
    stages = set(args.stages.split(","))
    targets = [t for t in args.targets.split(",") if t]
    args.load_start = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    started_at = time.monotonic()
    fz = None
    if "fuzz" in stages and args.fuzz > 0:
        print(f"fuzzing the fast path with {args.fuzz:,} inputs ...", flush=True)
        fz = fuzz(args.fuzz)
        print(json.dumps(fz), flush=True)
    work = Path(tempfile.mkdtemp(prefix="tutela-dns-bench-"))
    files = write_inputs(work, args.names, args.lines)
    answers = [
        'local-zone: "." redirect',
        "local-data: '. 300 IN A 198.51.100.1'",
        "local-data: '. 300 IN AAAA 2001:db8::1'",
    ]
    try:
        with unbound(work / "unbound", local_data=[], extra=answers) as up:
            if "memory" in stages:
                stage_memory(args, work, files, up)
            if stages & {"throughput", "latency"}:
                run_comparison(args, work, files, up, targets, stages, started_at, fz)
            elif fz is not None:
                dns_path_result(args, started_at, {}, {}, fz, {})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if fz and fz["crashes"] else 0


def run_comparison(
    args: Any,
    work: Path,
    files: dict[str, Path],
    up: int,
    targets: list[str],
    stages: set[str],
    started_at: float,
    fz: dict[str, Any] | None,
) -> None:
    ports = {"unbound": up}
    pids: dict[str, int] = {}
    metric_ports: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        for t in targets:
            if t == "unbound":
                continue
            port = free_port()
            if t == "raw_forwarder":
                argv = [sys.executable, __file__, "--raw-forwarder", str(port), str(up)]
                pids[t] = stack.enter_context(started(argv, port))
            elif t.startswith("dnsmasq"):
                size = 0 if t.endswith("nocache") else DNSMASQ_CACHE
                pids[t] = stack.enter_context(started(dnsmasq_argv(work, port, up, size, files["dnsmasq"]), port))
            else:
                dns: dict[str, Any] = {"answer_cache_size": 0} if "nocache" in t else {}
                if "_inproc" in t:  # DuckDB work in the sensor's own threads (before the store keeper)
                    dns["store_keeper"] = False
                if "_unbatched" in t:  # the event loop's datagram protocol (before recvmmsg/sendmmsg)
                    dns["udp_batch"] = False
                config = sensor_config(work, files["hosts"], t, dns)
                metric_ports[t] = free_port()
                env = {**os.environ, "TUTELA_HOME": str(work / f"home-{t}")}
                if "_pure" in t:  # the Python twins of the compiled code
                    env["TUTELA_PURE_PYTHON"] = "1"
                if "_base" in t:  # another source tree (A/B against main)
                    if not args.base_src:
                        raise SystemExit(f"{t}: pass --base-src PATH")
                    env["PYTHONPATH"] = args.base_src
                workers = 2 if t.endswith("_w2") else args.workers  # e.g. tutela_cache_w2: two processes
                argv = tutela_argv(config, port, up, metric_ports[t], workers)
                pids[t] = stack.enter_context(started(argv, port, env))
            ports[t] = port
        ordered = {t: ports[t] for t in targets if t in ports}
        for port in ordered.values():
            dnsperf(port, files["queries"], 3)  # warm-up: caches, newly-observed state
        thr = stage_throughput(args, ordered, files, pids) if "throughput" in stages else {}
        lat = stage_latency(args, ordered, files, metric_ports) if "latency" in stages else {}
        metrics = {t: sensor_metrics(p) for t, p in metric_ports.items()}
    dns_path_result(args, started_at, thr, lat, fz, metrics)


if __name__ == "__main__":
    raise SystemExit(main())
