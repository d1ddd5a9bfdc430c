"""AI gateway overhead against calling the upstream directly (issue 7).

Targets: overhead p50 <= 5 ms and p99 <= 25 ms at 50 concurrent clients, >= 300 requests/s, streaming
time-to-first-token overhead <= 10 ms, on the 2-core machine.

Three processes: a fast canned OpenAI-compatible upstream (bench/llm_upstream.py, the stand-in for a paid
API), the gateway (uvicorn + uvloop + httptools, one process, the same code `tutela gateway serve` runs)
and the load generator. Every figure is measured side by side: direct to the upstream vs through the
gateway, in the same run, alternating.
  sequential   one client, keep-alive, N requests each way interleaved: p50/p99 latency and the difference
  saturated    wrk, 50 connections, closed loop: requests/s and latency (queueing-dominated at saturation)
  paced        wrk, 50 connections, each waiting a random 0..2x`--pace-ms` between requests (an offered load below
               saturation): p50/p99 latency and the difference: the overhead 50 concurrent clients see
  streaming    one client, N streams each way interleaved: time to the first SSE event and to the first
               content token, and the difference
Detectors: the installed runtime detectors when there are any (`--detectors installed`), else two regex
test detectors from tests/runtime/detectors.py (`--detectors test`) on every channel.
Run: .venv/bin/python bench/gateway.py [--requests 1000] [--duration 10] [--runs 3]
Needs `wrk` (scripts/system-deps.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "gateway.json"
RESULTS_INLINE = ROOT / "bench" / "results" / "gateway-inline.json"
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


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} did not open")


# --- the gateway process ---------------------------------------------------------------------


def serve_gateway(port: int, upstream: str, detectors: str, inline: bool) -> None:
    sys.path.insert(0, str(ROOT))
    from tutela.core.config import TutelaSettings
    from tutela.core.registry import DetectorRegistry
    from tutela.runtime.gateway.profiles import GatewaySettings
    from tutela.runtime.gateway.server import serve

    if detectors == "fast":  # the default profile: the fast tier (profiles.FAST_TIER)
        registry = DetectorRegistry.load()
        gw = GatewaySettings(
            upstream=upstream, **({"profiles": {"default": {"detector_timeout_ms": None}}} if inline else {})
        )
        serve(TutelaSettings(home=Path(os.environ["TUTELA_HOME"])), gw, f"127.0.0.1:{port}", registry)
        return
    if detectors == "test":
        from tests.runtime.detectors import registry as test_registry

        registry = test_registry()
        ids = ["test.marker", "test.secret"]
    else:
        registry = DetectorRegistry.load()
        ids = registry.for_pillar("runtime")
    channel = {"detectors": [{"id": i} for i in ids]}
    profile: dict[str, Any] = {c: channel for c in ("prompt", "document", "tool_output", "output")}
    if inline:
        profile["detector_timeout_ms"] = None
    gw = GatewaySettings(upstream=upstream, profiles={"default": profile})
    home = Path(os.environ["TUTELA_HOME"])
    serve(TutelaSettings(home=home), gw, f"127.0.0.1:{port}", registry)


# --- measurements ----------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def sequential(direct: str, gateway: str, n: int) -> dict[str, Any]:
    import httpx

    times: dict[str, list[float]] = {"direct": [], "gateway": []}
    with httpx.Client(timeout=30) as client:
        for _ in range(50):
            client.post(direct + "/chat/completions", json=BODY)
            client.post(gateway + "/chat/completions", json=BODY)
        payload = json.dumps(BODY).encode()
        headers = {"content-type": "application/json"}
        for _ in range(n):
            for name, base in (("direct", direct), ("gateway", gateway)):
                t0 = time.perf_counter()
                r = client.post(base + "/chat/completions", content=payload, headers=headers)
                times[name].append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
    return summarize(times)


def summarize(times: dict[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, vals in times.items():
        out[name] = {"p50_ms": round(pct(vals, 50), 3), "p99_ms": round(pct(vals, 99), 3), "n": len(vals)}
    out["overhead_p50_ms"] = round(out["gateway"]["p50_ms"] - out["direct"]["p50_ms"], 3)
    out["overhead_p99_ms"] = round(out["gateway"]["p99_ms"] - out["direct"]["p99_ms"], 3)
    return out


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(url: str, duration: int, connections: int, pace_ms: float | None, script_dir: Path) -> dict[str, float]:
    lua = script_dir / f"post-{pace_ms}.lua"
    body = json.dumps(BODY).replace("\\", "\\\\").replace('"', '\\"')
    text = f'wrk.method = "POST"\nwrk.body = "{body}"\nwrk.headers["Content-Type"] = "application/json"\n'
    if pace_ms:
        # random waits (mean pace_ms) so the 50 connections do not fire in lock-step bursts
        text += f"function delay()\n  return math.random(0, {2 * pace_ms:.0f})\nend\n"
    lua.write_text(text)
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(lua), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    if "99" not in lat:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50_ms": _ms(lat["50"]),
        "p99_ms": _ms(lat["99"]),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sock.group(1) if sock else "",
    }  # type: ignore[return-value]


def streaming(direct: str, gateway: str, n: int) -> dict[str, Any]:
    import httpx

    body = {**BODY, "stream": True}
    first_event: dict[str, list[float]] = {"direct": [], "gateway": []}
    first_token: dict[str, list[float]] = {"direct": [], "gateway": []}
    total: dict[str, list[float]] = {"direct": [], "gateway": []}
    with httpx.Client(timeout=30) as client:
        for i in range(n + 20):
            for name, base in (("direct", direct), ("gateway", gateway)):
                t0 = time.perf_counter()
                t_event = t_token = None
                with client.stream("POST", base + "/chat/completions", json=body) as r:
                    buf = b""
                    for chunk in r.iter_raw():
                        now = time.perf_counter()
                        if t_event is None:
                            t_event = now
                        buf += chunk
                        if t_token is None and b'"content":"' in buf.replace(b" ", b"").replace(b'"content":""', b""):
                            t_token = now
                t_end = time.perf_counter()
                if i >= 20:  # warm-up
                    first_event[name].append(((t_event or t_end) - t0) * 1000)
                    first_token[name].append(((t_token or t_end) - t0) * 1000)
                    total[name].append((t_end - t0) * 1000)
    return {
        "first_event": summarize(first_event),
        "first_token": summarize(first_token),
        "whole_stream": summarize(total),
    }


def fuzz(base: str, examples: int, report_dir: Path) -> dict[str, Any]:
    """schemathesis against the gateway's own OpenAPI spec: every answer must be below 500."""
    exe = Path(sys.executable).parent / "schemathesis"
    cmd = [str(exe), "--no-color", "run", base + "/openapi.json", "--checks", "not_a_server_error",
           "-n", str(examples), "--request-timeout", "20",
           "--report", "junit", "--report-dir", str(report_dir)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    tail = proc.stdout.strip().splitlines()[-15:]
    cases = re.search(r"(\d+) generated", proc.stdout)
    return {
        "command": "schemathesis run <gateway>/openapi.json --checks not_a_server_error -n " + str(examples),
        "exit_code": proc.returncode,
        "passed": proc.returncode == 0,
        "test_cases": int(cases.group(1)) if cases else None,
        "seconds": round(time.perf_counter() - t0, 1),
        "summary": tail,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--streams", type=int, default=300)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pace-ms", type=float, default=250.0, help="per-connection wait in the paced wrk runs")
    ap.add_argument("--detectors", choices=["fast", "installed", "test", "auto"], default="auto")
    ap.add_argument("--inline", action="store_true", help="run detectors on the event loop (no timeout)")
    ap.add_argument("--fuzz-examples", type=int, default=50, help="schemathesis examples per operation (0: skip)")
    ap.add_argument("--only-fuzz", action="store_true", help="skip the performance runs")
    ap.add_argument("--serve", nargs=3, metavar=("PORT", "UPSTREAM", "DETECTORS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve_gateway(int(args.serve[0]), args.serve[1], args.serve[2], args.inline)
        return
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: run scripts/system-deps.sh")
    detectors = args.detectors
    if detectors == "auto":
        from tutela.core.registry import DetectorRegistry

        detectors = "installed" if DetectorRegistry.load().for_pillar("runtime") else "test"

    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            up_port, gw_port = free_port(), free_port()
            up = subprocess.Popen([sys.executable, str(ROOT / "bench" / "llm_upstream.py"), str(up_port)])
            procs.append(up)
            wait_port(up_port, up)
            direct = f"http://127.0.0.1:{up_port}/v1"
            cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", str(gw_port), direct, detectors]
            if args.inline:
                cmd.append("--inline")
            gw = subprocess.Popen(cmd, env={**os.environ, "TUTELA_HOME": str(Path(tmp) / "home")})
            procs.append(gw)
            wait_port(gw_port, gw)
            gateway = f"http://127.0.0.1:{gw_port}/v1"
            results: dict[str, Any] = {
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                f"load average {os.getloadavg()[0]:.2f} at start (shared machine)",
                "detectors": detectors,
                "inline": args.inline,
            }
            if args.fuzz_examples:
                print("fuzz (schemathesis) ...", flush=True)
                results["fuzz"] = fuzz(f"http://127.0.0.1:{gw_port}", args.fuzz_examples, Path(tmp) / "fuzz")
                print(json.dumps(results["fuzz"], indent=1), flush=True)
            if args.only_fuzz:
                return
            print("sequential ...", flush=True)
            results["sequential"] = sequential(direct, gateway, args.requests)
            print(json.dumps(results["sequential"]), flush=True)
            for mode, pace in (("saturated", None), ("paced", args.pace_ms)):
                runs: dict[str, list[dict[str, float]]] = {"direct": [], "gateway": []}
                for _ in range(args.runs):
                    for name, base in (("direct", direct), ("gateway", gateway)):
                        print(f"{mode} {name} ...", flush=True)
                        runs[name].append(wrk(base + "/chat/completions", args.duration, 50, pace, Path(tmp)))
                med = {
                    name: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms", "p99_ms")}
                    for name, rs in runs.items()
                }
                results[mode] = {
                    "runs": runs,
                    "median": med,
                    "overhead_p50_ms": round(med["gateway"]["p50_ms"] - med["direct"]["p50_ms"], 3),
                    "overhead_p99_ms": round(med["gateway"]["p99_ms"] - med["direct"]["p99_ms"], 3),
                    "pace_ms": pace,
                }
                print(json.dumps(results[mode]["median"]), flush=True)
            print("streaming ...", flush=True)
            results["streaming"] = streaming(direct, gateway, args.streams)
            print(json.dumps(results["streaming"]), flush=True)
        finally:
            for p in reversed(procs):
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    out = RESULTS_INLINE if args.inline else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
