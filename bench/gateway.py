"""AI gateway overhead against calling the upstream directly (issue 7), and the schemathesis fuzz run.

Targets (issue 7), with the fast-tier detectors (the default profile): overhead p50 <= 5 ms and p99 <= 25 ms at
50 concurrent clients; >= 300 requests/s on the 2-core machine; streaming time-to-first-token overhead <= 10 ms;
a schemathesis run against the gateway's own OpenAPI spec finds no 5xx.

Three kinds of process: a fast canned OpenAI-compatible upstream (bench/llm_upstream.py, TCP_NODELAY, the
stand-in for a paid API), the gateway exactly as shipped (`python -m tutela gateway serve`, default profile:
the fast tier), and the load generators. Every figure is a difference or a ratio measured side by side: direct to
the upstream vs through the gateway, alternating within each run, over `--runs` runs (median and min-max):
  sequential   one keep-alive client, N requests each way interleaved: latency p50/p99 and the difference
  paced        wrk, 50 connections, each waiting a random 0..2x`--pace-ms` between requests (offered load below
               saturation): p50/p99 latency and the difference, the overhead 50 concurrent clients see
  saturated    wrk, 50 connections, closed loop: requests/s
  CPU          during the paced and saturated runs, the CPU each process used (gateway and its workers, the
               upstream, wrk itself: is the load generator taking the gateway's cores?), and the gateway's CPU
               time per request (its cost apart from the machine's noise: what other jobs take shows in
               latency, not in this)
  stalls       the one-worker gateway's own counters over each wrk run (/health `stalls`, core/stalls.py):
               event-loop lag (the lag timer's lateness), cyclic GC runs and their longest pause
Two gateways run side by side: `--workers 1` and `--workers N` (N processes on the same port, SO_REUSEPORT;
the default is one per CPU core), so the effect of the workers is measured in the same run, interleaved.
  streaming    one client, N streams each way interleaved: time to the first content token and the difference
Run: .venv/bin/python bench/gateway.py [--requests 1000] [--duration 10] [--runs 3] [--workers 2]   (needs `wrk`)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import Table, package_versions, spread, write_result  # noqa: E402

SYSTEM = "You are a helpful assistant for an online bookshop. Answer briefly and politely."
PROMPT = (
    "I ordered three books last Tuesday (order 55120), two arrived but the third, a paperback on Roman "
    "history, is missing. The tracking page says delivered. Can you check what happened and tell me "
    "whether I should wait a few more days or ask for a replacement? I would prefer a replacement if it "
    "is out of stock."
)
BODY = {
    "model": "bench",
    "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> float:
    """Seconds until the port accepts a connection."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return time.monotonic() - t0
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"port {port} did not open")


def start_upstream(chunks: int = 50) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "llm_upstream.py"), str(port), "--chunks", str(chunks)]
    )
    wait_port(port, proc)
    return proc, f"http://127.0.0.1:{port}/v1"


def start_gateway(upstream: str, home: Path, workers: int = 1) -> tuple[subprocess.Popen[bytes], str, float]:
    """`tutela gateway serve` as shipped: (process, base URL, seconds until it accepts connections)."""
    port = free_port()
    cmd = [sys.executable, "-m", "tutela", "gateway", "serve", "--listen", f"127.0.0.1:{port}", "--upstream", upstream]
    cmd += ["--workers", str(workers)]  # explicit: the default (0) is one worker per CPU core
    proc = subprocess.Popen(cmd, env={**os.environ, "TUTELA_HOME": str(home)}, stdout=subprocess.DEVNULL)
    ready = wait_port(port, proc)
    if workers > 1:  # every worker listening and warmed up: each answers /health on its own connections
        wait_workers(proc.pid, workers, f"http://127.0.0.1:{port}")
    return proc, f"http://127.0.0.1:{port}/v1", ready


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def wait_workers(pid: int, workers: int, base: str, timeout: float = 120) -> None:
    import httpx

    t0 = time.monotonic()
    while len(children(pid)) < workers - 1:
        if time.monotonic() - t0 > timeout:
            raise SystemExit("gateway workers did not start")
        time.sleep(0.1)
    seen: set[str] = set()
    while len(seen) < workers and time.monotonic() - t0 < timeout:  # new connections land on every worker
        with httpx.Client(timeout=30) as client:
            r = client.get(base + "/health")
            if r.status_code == 200:
                seen.add(str(r.json().get("pid")))
        time.sleep(0.05)
    if len(seen) < workers:
        raise SystemExit(f"only {len(seen)} of {workers} gateway workers answered /health")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children: the gateway's workers, and its short-lived ingest
    processes (counted through the parent's cutime/cstime once reaped, so a child exiting loses nothing)."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --- measurements ----------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def sequential(bases: dict[str, str], n: int) -> dict[str, list[float]]:
    """Latencies (ms) of n requests to each base, interleaved."""
    import httpx

    times: dict[str, list[float]] = {k: [] for k in bases}
    payload = json.dumps(BODY).encode()
    headers = {"content-type": "application/json"}
    with httpx.Client(timeout=30) as client:
        for i in range(n + 30):
            for name, base in bases.items():
                t0 = time.perf_counter()
                r = client.post(base + "/chat/completions", content=payload, headers=headers)
                if i >= 30:  # warm-up
                    times[name].append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise SystemExit(f"{name}: HTTP {r.status_code}: {r.text[:300]}")
    return times


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, duration: float, connections: int, pace_ms: float | None, script_dir: Path) -> dict[str, Any]:
    lua = script_dir / f"post-{pace_ms}.lua"
    body = json.dumps(BODY).replace("\\", "\\\\").replace('"', '\\"')
    text = f'wrk.method = "POST"\nwrk.body = "{body}"\nwrk.headers["Content-Type"] = "application/json"\n'
    if pace_ms:
        # random waits (mean pace_ms) so the 50 connections do not fire in lock-step bursts
        text += f"function delay()\n  return math.random(0, {2 * pace_ms:.0f})\nend\n"
    lua.write_text(text)
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration:g}s", "--timeout", "10s", "--latency", "-s", str(lua), url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk's own CPU: the only child reaped meanwhile
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if "99" not in lat or rps is None:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": float(rps.group(1)),
        "p50_ms": _ms(lat["50"]),
        "p99_ms": _ms(lat["99"]),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sock.group(1) if sock else "",
        "wrk_cpu_pct": round(100 * wrk_cpu / duration, 1),
    }


def first_tokens(bases: dict[str, str], n: int) -> dict[str, list[float]]:
    """Time (ms) to the first content token of n streams to each base, interleaved."""
    import httpx

    body = {**BODY, "stream": True}
    out: dict[str, list[float]] = {k: [] for k in bases}
    with httpx.Client(timeout=30) as client:
        for i in range(n + 10):
            for name, base in bases.items():
                t0 = time.perf_counter()
                t_token = None
                with client.stream("POST", base + "/chat/completions", json=body) as r:
                    buf = b""
                    for chunk in r.iter_raw():
                        buf += chunk
                        if t_token is None and re.search(rb'"content":\s*"[^"]', buf):
                            t_token = time.perf_counter()
                if i >= 10 and t_token is not None:
                    out[name].append((t_token - t0) * 1000)
    return out


def fuzz(base: str, examples: int, report_dir: Path) -> dict[str, Any]:
    """schemathesis against the gateway's own OpenAPI spec: every answer must be below 500."""
    exe = Path(sys.executable).parent / "schemathesis"
    cmd = [str(exe), "--no-color", "run", base + "/openapi.json", "--checks", "not_a_server_error",
           "-n", str(examples), "--request-timeout", "20",
           "--report", "junit", "--report-dir", str(report_dir)]  # fmt: skip
    t0 = time.perf_counter()
    report_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=report_dir)  # its cache stays out of the repo
    cases = re.search(r"(\d+) generated", proc.stdout)
    return {
        "command": f"schemathesis run <gateway>/openapi.json --checks not_a_server_error -n {examples}",
        "exit_code": proc.returncode,
        "passed": proc.returncode == 0,
        "test_cases": int(cases.group(1)) if cases else None,
        "seconds": round(time.perf_counter() - t0, 1),
        "summary": proc.stdout.strip().splitlines()[-12:],
    }


def stall_counters(base: str) -> dict[str, Any]:
    """The gateway's own stall counters (/health `stalls`); with several workers, whichever answers."""
    import httpx

    r = httpx.get(base.removesuffix("/v1") + "/health", timeout=30)
    return dict(r.json().get("stalls") or {})


def stall_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    if not before or not after:
        return {}
    ticks = after["loop_lag_ticks"] - before["loop_lag_ticks"]
    over = after["loop_lag_over_1ms"] - before["loop_lag_over_1ms"]
    return {
        "loop_lag_over_1ms_share": round(over / max(1, ticks), 4),
        "loop_lag_mean_ms": round(1000 * (after["loop_lag_sum_s"] - before["loop_lag_sum_s"]) / max(1, ticks), 3),
        "loop_lag_max_ms_so_far": round(1000 * after["loop_lag_max_s"], 1),
        "gc_runs": sum(after["gc_collections"]) - sum(before["gc_collections"]),
        "gc_pause_ms": round(1000 * (after["gc_pause_s"] - before["gc_pause_s"]), 2),
        "gc_pause_max_ms_so_far": round(1000 * after["gc_pause_max_s"], 2),
    }


def one_run(
    direct: str, gateways: dict[str, tuple[str, int]], up_pid: int, args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    """gateways: name -> (base URL, pid); "gateway" is the default one-worker gateway."""
    one = {"direct": direct, "gateway": gateways["gateway"][0]}
    run: dict[str, Any] = {}
    seq = sequential(one, args.requests)
    run["sequential"] = {k: {"p50_ms": pct(v, 50), "p99_ms": pct(v, 99)} for k, v in seq.items()}
    bases = {"direct": direct, **{k: v[0] for k, v in gateways.items()}}
    pids = {"upstream": up_pid, **{k: v[1] for k, v in gateways.items()}}
    for mode, pace in (("paced", args.pace_ms), ("saturated", None)):
        run[mode] = {}
        for name, base in bases.items():
            stalls_before = stall_counters(base) if name == "gateway" else {}
            before = {k: cpu_seconds(p) for k, p in pids.items()}
            t0 = time.monotonic()
            res = wrk(base + "/chat/completions", args.duration, 50, pace, tmp)
            wall = time.monotonic() - t0
            if name != "direct":  # CPU time of the gateway's processes per request served (wrk's count)
                used = cpu_seconds(pids[name]) - before[name]
                res["cpu_ms_per_request"] = round(1000 * used / max(1.0, res["rps"] * args.duration), 3)
            if name == "gateway":
                res["stalls"] = stall_delta(stalls_before, stall_counters(base))
            # CPU (% of one core) of each process over this wrk run: the side under test, the upstream, wrk
            res["cpu_pct"] = {k: round(100 * (cpu_seconds(p) - before[k]) / wall, 1) for k, p in pids.items()}
            res["cpu_pct"]["wrk"] = res.pop("wrk_cpu_pct")
            res["machine_busy_pct"] = machine_busy(wall)
            run[mode][name] = res
    ttft = first_tokens(one, args.streams)
    run["first_token"] = {k: {"p50_ms": pct(v, 50), "p99_ms": pct(v, 99)} for k, v in ttft.items()}
    return run


_LAST_STAT: list[tuple[int, int]] = []


def machine_busy(_: float) -> float:
    """Busy share of all cores since the previous call (other people's jobs included), percent."""
    fields = list(map(int, Path("/proc/stat").read_text().splitlines()[0].split()[1:]))
    total, idle = sum(fields), fields[3] + fields[4]
    prev = _LAST_STAT[-1] if _LAST_STAT else (0, 0)
    _LAST_STAT.append((total, idle))
    dt = total - prev[0]
    return round(100 * (dt - (idle - prev[1])) / dt, 1) if prev[0] and dt else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000, help="sequential requests each way, per run")
    ap.add_argument("--streams", type=int, default=200, help="streams each way, per run")
    ap.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pace-ms", type=float, default=250.0, help="mean per-connection wait in the paced runs")
    ap.add_argument("--fuzz-examples", type=int, default=30, help="schemathesis examples per operation (0: skip)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes of the second gateway (1: no second)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: run scripts/system-deps.sh")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        up, direct = start_upstream()
        gw, gateway, startup_s = start_gateway(direct, tmp / "home")
        procs = [gw, up]
        try:
            gateways = {"gateway": (gateway, gw.pid)}
            if args.workers > 1:
                gwn, gateway_n, _ = start_gateway(direct, tmp / "home-workers", args.workers)
                procs.insert(0, gwn)
                gateways["workers"] = (gateway_n, gwn.pid)
            machine_busy(0)
            runs = []
            for i in range(args.runs):
                print(f"run {i + 1}/{args.runs} ...", flush=True)
                runs.append(one_run(direct, gateways, up.pid, args, tmp))
                print(json.dumps(runs[-1]), flush=True)
            rss = rss_mib(gw.pid)
            fuzzed = fuzz(gateway.removesuffix("/v1"), args.fuzz_examples, tmp / "fuzz") if args.fuzz_examples else None
        finally:
            stop(*procs)
    report(args, runs, fuzzed, startup_s, rss, started)


def report(
    args: argparse.Namespace,
    runs: list[dict[str, Any]],
    fuzzed: dict[str, Any] | None,
    startup_s: float,
    rss: float,
    started: float,
) -> None:
    def diff(section: str, key: str, name: str = "gateway") -> dict[str, float]:
        return spread([r[section][name][key] - r[section]["direct"][key] for r in runs])

    def side(section: str, name: str, key: str) -> dict[str, float]:
        return spread([r[section][name][key] for r in runs])

    def row(measure: str, s: dict[str, float], target: str, ok: bool | None, digits: int = 2) -> list[Any]:
        met = "" if ok is None else ("met" if ok else "MISSED")
        return [measure, f"{s['median']:.{digits}f}", f"{s['min']:.{digits}f}–{s['max']:.{digits}f}", target, met]

    paced50, paced99 = diff("paced", "p50_ms"), diff("paced", "p99_ms")
    rps = side("saturated", "gateway", "rps")
    ttft50, ttft99 = diff("first_token", "p50_ms"), diff("first_token", "p99_ms")
    seq50, seq99 = diff("sequential", "p50_ms"), diff("sequential", "p99_ms")
    workers = "workers" in runs[0]["paced"]
    w = args.workers
    if workers:
        wp50, wp99 = diff("paced", "p50_ms", "workers"), diff("paced", "p99_ms", "workers")
        wrps = side("saturated", "workers", "rps")
    targets = Table(
        f"Gateway vs direct, default profile (fast tier), {args.runs} runs",
        ["measure", "median", "min–max", "target", ""],
        [
            row("1 worker: added latency p50 at 50 clients (paced), ms", paced50, "<= 5", paced50["median"] <= 5),
            row("1 worker: added latency p99 at 50 clients (paced), ms", paced99, "<= 25", paced99["median"] <= 25),
            row("1 worker: requests/s, 50 clients closed loop", rps, ">= 300", rps["median"] >= 300, 0),
            row("added time to first token p50, ms", ttft50, "<= 10", ttft50["median"] <= 10),
            row("added time to first token p99, ms", ttft99, "(<= 10)", ttft99["median"] <= 10),
            row("added latency p50, one client, ms", seq50, "", None),
            row("added latency p99, one client, ms", seq99, "", None),
        ]
        + (
            [
                row(f"--workers {w}: added latency p50 at 50 clients (paced), ms", wp50, "<= 5", wp50["median"] <= 5),
                row(f"--workers {w}: added latency p99 at 50 clients (paced), ms", wp99, "<= 25", wp99["median"] <= 25),
                row(f"--workers {w}: requests/s, 50 clients closed loop", wrps, ">= 300", wrps["median"] >= 300, 0),
            ]
            if workers
            else []
        ),
        note="Added = gateway minus direct, per run, each pair measured back to back in the same run. The "
        "gateway's default is one worker per CPU core (`gateway.workers` 0), so on this 2-core machine the "
        "`--workers 2` rows are the default configuration; the 1-worker rows are kept for comparison.",
    )
    sides = Table(
        "Both sides",
        ["measure", "direct median", "gateway median", "gateway min–max"],
        [
            [
                f"{m} {k}",
                f"{side(m, 'direct', k)['median']:.2f}",
                f"{side(m, 'gateway', k)['median']:.2f}",
                f"{side(m, 'gateway', k)['min']:.2f}–{side(m, 'gateway', k)['max']:.2f}",
            ]
            for m, k in (
                ("sequential", "p50_ms"),
                ("sequential", "p99_ms"),
                ("paced", "p50_ms"),
                ("paced", "p99_ms"),
                ("paced", "rps"),
                ("saturated", "rps"),
                ("saturated", "p99_ms"),
                ("first_token", "p50_ms"),
                ("first_token", "p99_ms"),
            )
        ]
        + [["gateway start-up to accepting connections, s", "", f"{startup_s:.2f}", ""]]
        + [["gateway RSS after the runs, MiB", "", f"{rss:.0f}", ""]],
    )
    names = ["direct", "gateway"] + (["workers"] if workers else [])
    label = {"direct": "direct", "gateway": "gateway, 1 worker", "workers": f"gateway, {w} workers"}

    def cpu(mode: str, name: str, proc: str) -> str:
        return f"{spread([r[mode][name]['cpu_pct'][proc] for r in runs])['median']:.0f}"

    cpu_rows = [
        [
            f"{mode}: {label[name]}",
            f"{side(mode, name, 'rps')['median']:.0f}",
            cpu(mode, name, name) if name != "direct" else "",
            cpu(mode, name, "upstream"),
            cpu(mode, name, "wrk"),
            f"{spread([r[mode][name]['machine_busy_pct'] for r in runs])['median']:.0f}",
        ]
        for mode in ("paced", "saturated")
        for name in names
    ]
    cpu_table = Table(
        "Where the CPU goes: each process's CPU during each 50-connection wrk run (% of one core, medians)",
        ["run", "requests/s", "gateway", "upstream", "wrk (load generator)", "machine busy, % of all cores"],
        cpu_rows,
        note="Machine busy counts every process on the machine, other engineers' jobs included; the rest of the "
        "columns are the benchmark's own processes (gateway = all its worker processes).",
    )

    def med(mode: str, name: str, key: str, sub: str | None = None) -> str:
        values = [r[mode][name][sub][key] if sub else r[mode][name][key] for r in runs]
        return f"{spread(values)['median']:g}"

    own_rows = [
        [f"{mode}: {label[name]}", med(mode, name, "cpu_ms_per_request")]
        + (
            [
                med(mode, name, "loop_lag_over_1ms_share", "stalls"),
                med(mode, name, "loop_lag_mean_ms", "stalls"),
                med(mode, name, "gc_runs", "stalls"),
                med(mode, name, "gc_pause_ms", "stalls"),
            ]
            if name == "gateway"
            else ["", "", "", ""]
        )
        for mode in ("paced", "saturated")
        for name in names
        if name != "direct"
    ]
    last = runs[-1]["saturated"]["gateway"]["stalls"]
    own_table = Table(
        "The gateway's own cost and stalls during each 50-connection wrk run (medians over the runs)",
        [
            "run",
            "CPU ms per request",
            "loop lag > 1 ms, share of lag-timer ticks",
            "mean loop lag, ms",
            "cyclic GC runs",
            "GC pause total, ms",
        ],
        own_rows,
        note="CPU per request: user + system time of the gateway's processes (all workers; the ingest child "
        "once reaped) over the requests wrk counted. Loop lag and GC: the one-worker gateway's /health "
        "`stalls` counters (core/stalls.py) before and after each run; longest loop stall seen by the end "
        f"{last.get('loop_lag_max_ms_so_far', float('nan'))} ms, longest GC pause "
        f"{last.get('gc_pause_max_ms_so_far', float('nan'))} ms.",
    )
    tables = [targets, sides, cpu_table, own_table]
    if fuzzed is not None:
        tables.append(
            Table(
                "Fuzz: schemathesis against the gateway's /openapi.json (check: not_a_server_error)",
                ["test cases", "5xx found", "seconds", "exit code"],
                [[fuzzed["test_cases"], "none" if fuzzed["passed"] else "YES", fuzzed["seconds"], fuzzed["exit_code"]]],
            )
        )
    command = (
        f".venv/bin/python bench/gateway.py --requests {args.requests} --streams {args.streams} "
        f"--duration {args.duration:g} --runs {args.runs} --pace-ms {args.pace_ms:g} "
        f"--fuzz-examples {args.fuzz_examples} --workers {args.workers}"
    )
    path = write_result(
        "gateway",
        started=started,
        title="AI gateway overhead",
        issue=7,
        command=command,
        target="added latency p50 <= 5 ms and p99 <= 25 ms at 50 concurrent clients; >= 300 requests/s; "
        "streaming time-to-first-token overhead <= 10 ms; no 5xx from a schemathesis run (fast-tier detectors)",
        about=(
            "`tutela gateway serve` (uvicorn, uvloop, httptools; `--workers 1`, and side by side the same with "
            f"`--workers {args.workers}`, that many processes on one port with SO_REUSEPORT — the default, one per "
            "CPU core, is 2 here; default profile = the "
            "fast tier: injection (lexical tier), secrets, PII, obfuscation on prompts; secrets on the system prompt; "
            "secrets, PII, URLs, SQL on answers) in front of a canned OpenAI-compatible upstream that answers in "
            "tens of microseconds, so the difference direct vs gateway is the gateway's own cost. The request is "
            "a ~570-character system + user prompt; the answer 43 characters, or a stream of 50 four-character "
            "chunks (the gateway holds back 128 characters before the first token). Load: wrk (2 threads, 50 "
            f"connections; paced runs wait a random 0–{2 * args.pace_ms:.0f} ms between requests per connection, "
            "an offered load below saturation) and an httpx client for the one-client and streaming runs. Load "
            "generator, upstream and gateway share the machine's 2 cores with other engineers' jobs."
        ),
        tables=tables,
        notes=[
            "Load average when the runs ended (1, 5, 15 min; 2 cores; other engineers' jobs included): "
            + ", ".join(f"{x:.1f}" for x in os.getloadavg())
            + ". The CPU table's last column says how busy the whole machine was during each wrk run.",
            "At saturation latency is queueing by construction (50 requests in flight / requests/s), so the "
            "latency targets are read from the paced runs; requests/s from the closed-loop runs.",
        ],
        not_measured=[
            "TLS to the upstream (a real provider is HTTPS; the local upstream is plain HTTP)",
            "the injection detector's semantic tier (MiniLM encoder) and topics: not in the default fast tier",
            "long prompts: the fast tier's cost grows with the text (bench/runtime_detectors.py)",
        ],
        versions=package_versions(["uvicorn", "starlette", "uvloop", "httptools", "orjson", "schemathesis"])
        | {"wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0][:40]},
        raw={"runs": runs, "fuzz": fuzzed, "startup_s": startup_s, "rss_mib": rss},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
