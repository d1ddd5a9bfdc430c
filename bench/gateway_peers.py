"""tutela's AI gateway vs the LiteLLM proxy (issue 9), both in front of the same local upstream, driven by the
`openai` SDK.

Sides, all started by this script and torn down after: the upstream directly (the floor); tutela's gateway as
shipped (`tutela gateway serve`, default profile: the fast tier); the LiteLLM proxy with no guardrails; the
LiteLLM proxy with its built-in regex content filter (`litellm_content_filter`: prebuilt patterns for AWS keys,
GitHub tokens, card numbers, SSNs, e-mail addresses, on the request and the answer). LiteLLM runs in its own
environment (bench/envs/litellm.txt, `python -m bench.envs litellm`). The upstream is bench/llm_upstream.py
(canned answers, TCP_NODELAY on its sockets). Measured, interleaved side by side within each run:
  sequential   one AsyncOpenAI client, N chat completions to each side in turn: latency p50/p99 and the added
               latency over direct
  concurrent   50 concurrent clients for D seconds per side, closed loop, driven by wrk: requests/s and latency
               p99. (The openai SDK cannot be the load generator here: on this shared 2-core machine AsyncOpenAI
               with 50 tasks made ~25 requests/s against the bare upstream, so it would measure itself.)
  streaming    one client, N streams to each side in turn: time to the first content token, added over direct
  start-up     seconds from launch until the first chat completion succeeds
  memory       RSS of the proxy's processes after the runs
Run: .venv/bin/python bench/gateway_peers.py [--requests 200] [--duration 10] [--streams 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.envs import peer_python  # noqa: E402
from bench.gateway import BODY, free_port, pct, rss_mib, start_gateway, start_upstream, stop, wait_port, wrk  # noqa: E402
from bench.report import Table, package_versions, spread, write_result  # noqa: E402

FILTER_PATTERNS = ["aws_access_key", "github_token", "credit_card", "us_ssn", "email"]


def litellm_config(upstream: str, content_filter: bool) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "model_list": [
            {
                "model_name": "bench",
                "litellm_params": {"model": "openai/bench", "api_base": upstream, "api_key": "unused"},
            }
        ],
        "litellm_settings": {"drop_params": True, "telemetry": False},
    }
    if content_filter:
        cfg["guardrails"] = [
            {
                "guardrail_name": "regex-dlp",
                "litellm_params": {
                    "guardrail": "litellm_content_filter",
                    "mode": ["pre_call", "post_call"],
                    "default_on": True,
                    "patterns": [
                        {"pattern_type": "prebuilt", "pattern_name": p, "action": "BLOCK"} for p in FILTER_PATTERNS
                    ],
                },
            }
        ]
    return cfg


def start_litellm(upstream: str, content_filter: bool, tmp: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    import yaml

    python = peer_python("litellm")
    cfg = tmp / f"litellm-{int(content_filter)}.yaml"
    cfg.write_text(yaml.safe_dump(litellm_config(upstream, content_filter)))
    port = free_port()
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the price list at start
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "DISABLE_SCHEMA_UPDATE": "True",
    }
    env.pop("TUTELA_HOME", None)
    t0 = time.monotonic()
    cmd = [str(python.parent / "litellm"), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)]
    with (tmp / f"litellm-{int(content_filter)}.log").open("wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen([*cmd, "--num_workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=log)
    wait_port(port, proc, timeout=180)
    return proc, f"http://127.0.0.1:{port}/v1", time.monotonic() - t0


def ready_s(base: str, t_launch: float) -> float:
    """Seconds from launch until a chat completion succeeds (t_launch: monotonic time of the launch)."""
    import openai

    client = openai.OpenAI(base_url=base, api_key="unused", max_retries=0, timeout=10)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            client.chat.completions.create(**BODY)  # type: ignore[call-overload]
            return time.monotonic() - t_launch
        except openai.APIError:
            time.sleep(0.05)
    raise SystemExit(f"{base}: no successful completion within 120 s")


def refuses_a_secret(base: str) -> bool:
    import openai

    client = openai.OpenAI(base_url=base, api_key="unused", max_retries=0, timeout=30)
    leak = {"model": "bench", "messages": [{"role": "user", "content": "my key is AKIAZ7Q4N2XW5R8KLM3P, keep it"}]}
    try:
        client.chat.completions.create(**leak)  # type: ignore[call-overload]
    except openai.APIStatusError as exc:
        return exc.status_code in (400, 403)
    return False


async def sequential(bases: dict[str, str], n: int) -> dict[str, list[float]]:
    import openai

    clients = {k: openai.AsyncOpenAI(base_url=b, api_key="unused", max_retries=0, timeout=30) for k, b in bases.items()}
    times: dict[str, list[float]] = {k: [] for k in bases}
    for i in range(n + 20):
        for name, client in clients.items():
            t0 = time.perf_counter()
            await client.chat.completions.create(**BODY)  # type: ignore[call-overload]
            if i >= 20:
                times[name].append((time.perf_counter() - t0) * 1000)
    for c in clients.values():
        await c.close()
    return times


async def first_tokens(bases: dict[str, str], n: int) -> dict[str, list[float]]:
    import openai

    clients = {k: openai.AsyncOpenAI(base_url=b, api_key="unused", max_retries=0, timeout=30) for k, b in bases.items()}
    out: dict[str, list[float]] = {k: [] for k in bases}
    for i in range(n + 10):
        for name, client in clients.items():
            t0 = time.perf_counter()
            t_token = None
            stream = await client.chat.completions.create(**BODY, stream=True)  # type: ignore[call-overload]
            async for chunk in stream:
                if t_token is None and chunk.choices and chunk.choices[0].delta.content:
                    t_token = time.perf_counter()
            if i >= 10 and t_token is not None:
                out[name].append((t_token - t0) * 1000)
    for c in clients.values():
        await c.close()
    return out


def tree_rss(pid: int) -> float:
    """RSS of a process and its children (LiteLLM may fork), MiB."""
    total = rss_mib(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(tree_rss(int(c)) for c in children)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=200, help="sequential requests per side per run")
    ap.add_argument("--streams", type=int, default=50, help="streams per side per run")
    ap.add_argument("--duration", type=float, default=10, help="seconds of 50-client load per side per run")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    started = time.monotonic()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        try:
            up, direct = start_upstream()
            procs.append(up)
            sides: dict[str, str] = {"direct": direct}
            startup: dict[str, float] = {}
            pids: dict[str, int] = {}
            t = time.monotonic()
            gw, sides["tutela"], _ = start_gateway(direct, tmp / "home")
            procs.append(gw)
            startup["tutela"], pids["tutela"] = ready_s(sides["tutela"], t), gw.pid
            for name, flt in (("litellm", False), ("litellm+filter", True)):
                t = time.monotonic()
                proc, sides[name], _ = start_litellm(direct, flt, tmp)
                procs.append(proc)
                startup[name], pids[name] = ready_s(sides[name], t), proc.pid
            for name in ("tutela", "litellm+filter"):  # the inspecting sides really inspect: checked, not assumed
                if not refuses_a_secret(sides[name]):
                    raise SystemExit(f"{name} let an AWS access key through: its filter is not active")
            for base in sides.values():  # warm-up: pools, lazy imports, JITs of every side, not measured
                wrk(base + "/chat/completions", 3, args.clients, None, tmp)
            runs: list[dict[str, Any]] = []
            for i in range(args.runs):
                print(f"run {i + 1}/{args.runs} ...", flush=True)
                run: dict[str, Any] = {}
                seq = asyncio.run(sequential(sides, args.requests))
                run["sequential"] = {k: {"p50_ms": pct(v, 50), "p99_ms": pct(v, 99)} for k, v in seq.items()}
                run["concurrent"] = {
                    k: wrk(b + "/chat/completions", args.duration, args.clients, None, tmp) for k, b in sides.items()
                }
                ttft = asyncio.run(first_tokens(sides, args.streams))
                run["first_token"] = {k: {"p50_ms": pct(v, 50), "p99_ms": pct(v, 99)} for k, v in ttft.items() if v}
                runs.append(run)
                print(json.dumps(run), flush=True)
            rss = {k: tree_rss(p) for k, p in pids.items()}
        finally:
            stop(*reversed(procs))
    report(args, runs, startup, rss, started)


def report(
    args: argparse.Namespace,
    runs: list[dict[str, Any]],
    startup: dict[str, float],
    rss: dict[str, float],
    started: float,
) -> None:
    proxies = ["tutela", "litellm", "litellm+filter"]

    def added(section: str, name: str, key: str) -> dict[str, float]:
        return spread([r[section][name][key] - r[section]["direct"][key] for r in runs])

    def value(section: str, name: str, key: str) -> dict[str, float]:
        return spread([r[section][name][key] for r in runs])

    def cell(s: dict[str, float], digits: int = 1) -> str:
        return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"

    rows = [
        ["added latency p50, one client, ms", *(cell(added("sequential", p, "p50_ms"), 2) for p in proxies)],
        ["added latency p99, one client, ms", *(cell(added("sequential", p, "p99_ms"), 2) for p in proxies)],
        [f"requests/s, {args.clients} clients", *(cell(value("concurrent", p, "rps"), 0) for p in proxies)],
        [f"latency p99, {args.clients} clients, ms", *(cell(value("concurrent", p, "p99_ms")) for p in proxies)],
        ["added time to first token p50, ms", *(cell(added("first_token", p, "p50_ms"), 2) for p in proxies)],
        ["added time to first token p99, ms", *(cell(added("first_token", p, "p99_ms"), 2) for p in proxies)],
        ["start-up until the first answer, s", *(f"{startup[p]:.1f}" for p in proxies)],
        ["memory (RSS) after the runs, MiB", *(f"{rss[p]:.0f}" for p in proxies)],
    ]
    rps = {p: value("concurrent", p, "rps")["median"] for p in proxies}
    ll_added = added("sequential", "litellm", "p50_ms")["median"]
    tu_added = added("sequential", "tutela", "p50_ms")["median"]
    ratios = [
        ["requests/s, tutela / litellm", f"{rps['tutela'] / rps['litellm']:.2f}×"],
        ["requests/s, tutela / litellm with its regex filter", f"{rps['tutela'] / rps['litellm+filter']:.2f}×"],
        ["added p50 latency, litellm / tutela", f"{ll_added / max(tu_added, 1e-3):.2f}×"],
    ]
    direct = [
        ["direct: latency p50 / p99, one client, ms", cell(value("sequential", "direct", "p50_ms"), 2),
         cell(value("sequential", "direct", "p99_ms"), 2)],
        [f"direct: requests/s, {args.clients} clients", cell(value("concurrent", "direct", "rps"), 0), ""],
    ]  # fmt: skip
    command = (
        f".venv/bin/python bench/gateway_peers.py --requests {args.requests} --streams {args.streams} "
        f"--duration {args.duration:g} --clients {args.clients} --runs {args.runs}"
    )
    path = write_result(
        "gateway_peers",
        started=started,
        title="AI gateway vs the LiteLLM proxy",
        issue=9,
        command=command,
        about=(
            "tutela's gateway (`tutela gateway serve`, default profile: the fast tier, which judges prompt, system "
            "prompt and answer) vs the LiteLLM proxy with no guardrails and with its built-in regex content filter "
            f"(`litellm_content_filter`, prebuilt patterns {', '.join(FILTER_PATTERNS)}, before and after the call), "
            "one worker process each, all in front of the same canned OpenAI-compatible upstream "
            "(bench/llm_upstream.py, TCP_NODELAY), driven by the official `openai` SDK (AsyncOpenAI) from one "
            "process for the one-client and streaming runs, and by wrk (50 connections, closed loop) for the "
            "concurrent runs, because the SDK itself tops out at ~25–50 requests/s on this machine: the same "
            "~570-character system + user prompt, a 43-character answer or a stream of 50 "
            f"four-character chunks. {args.runs} runs; in each, the sides take turns request by request "
            "(sequential, streaming) or back to back (concurrent). Medians with min–max over runs. Load generator, "
            "upstream and proxies share the 2 cores with other engineers' jobs: read absolute figures with care, "
            "and the ratios first."
        ),
        tables=[
            Table("Side by side (median, min–max over runs)", ["measure", *proxies], rows),
            Table("Ratios (medians)", ["measure", "ratio"], ratios),
            Table("The floor: the upstream called directly", ["measure", "p50 / requests/s", "p99"], direct),
        ],
        notes=[
            "tutela judges every request and answer (injection, secrets, PII, obfuscation, URLs, SQL); LiteLLM "
            "without guardrails judges nothing, and its content filter runs a few regexes: the comparison prices "
            "the inspection, it does not say the two stop the same things."
        ],
        not_measured=[
            "LiteLLM's features tutela lacks: routing across providers, retries/fallbacks, caching, a spend "
            "database, an admin UI; its guardrails that call external services (Lakera, Presidio, ...)",
            "detection quality of either side (see the runtime detector evaluation)",
            "more than one worker process per proxy; TLS to the upstream",
        ],
        versions=package_versions(["openai", "httpx", "uvicorn", "httptools"])
        | {
            f"litellm env: {k}": v
            for k, v in package_versions(["litellm", "fastapi", "uvicorn"], str(peer_python("litellm"))).items()
        },
        raw={"runs": runs, "startup_s": startup, "rss_mib": rss},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
