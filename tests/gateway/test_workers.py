"""`tutela gateway serve --workers 2`: two processes on one port (SO_REUSEPORT), both serving, each with its
own audit chain, all of them verified by `tutela gateway audit verify`; the workers stop with the first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from bench.gateway import children

from tests.runtime.conftest import free_port
from tests.runtime.fake_upstream import FakeUpstream
from tutela.runtime.gateway.server import AUTO_WORKERS_MAX, resolve_workers


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
def test_two_workers_share_the_port_and_keep_one_audit_chain_each(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = tmp_path / "gateway.yaml"
    config.write_text("profiles:\n  default:\n    prompt:\n      detectors: [{id: runtime.secrets}]\n")
    port = free_port()
    env = {**os.environ, "TUTELA_HOME": str(home)}
    with FakeUpstream() as up:
        cmd = [sys.executable, "-m", "tutela", "gateway", "serve", "--listen", f"127.0.0.1:{port}",
               "--upstream", up.base, "--config", str(config), "--workers", "2"]  # fmt: skip
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert json.loads(proc.stdout.readline())["workers"] == 2  # type: ignore[union-attr]
            pids: set[int] = set()
            deadline = time.monotonic() + 90
            while len(pids) < 2 and time.monotonic() < deadline:  # new connections land on either worker
                try:
                    r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
                    pids.add(r.json()["pid"])
                except httpx.TransportError:
                    time.sleep(0.1)
            assert len(pids) == 2, "the second worker never answered"
            assert proc.pid in pids
            worker = (pids - {proc.pid}).pop()
            assert children(proc.pid) == [worker]

            n = 40
            body = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}
            leak = {"model": "m", "messages": [{"role": "user", "content": "key AKIAZ7Q4N2XW5R8KLM3P"}]}
            for i in range(n):  # a fresh connection each: spread over both workers
                r = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=leak if i % 4 == 0 else body)
                assert r.status_code == (400 if i % 4 == 0 else 200), r.text
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        deadline = time.monotonic() + 15
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the worker outlived the gateway"

    files = sorted((home / "gateway").glob("audit*.jsonl"))
    assert [f.name for f in files] == ["audit.jsonl", "audit.w1.jsonl"]
    out = subprocess.run(
        [sys.executable, "-m", "tutela", "gateway", "audit", "verify", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    results = json.loads(out.stdout)
    assert [r["ok"] for r in results] == [True, True]
    assert sum(r["records"] for r in results) == n
    assert all(r["records"] > 0 for r in results)  # both workers served some of the requests

    # one worker's chain edited: verify fails and says which file
    lines = files[1].read_text().splitlines()
    assert "/v1/chat/completions" in lines[0]
    lines[0] = lines[0].replace("/v1/chat/completions", "/v1/embeddings")
    files[1].write_text("\n".join(lines) + "\n")
    out = subprocess.run([sys.executable, "-m", "tutela", "gateway", "audit", "verify"], env=env, capture_output=True,
                         text=True)  # fmt: skip
    assert out.returncode == 2
    assert "audit.w1.jsonl: BROKEN" in out.stdout and "audit.jsonl: " in out.stdout


@pytest.mark.slow
def test_two_workers_share_one_budget(tmp_path: Path) -> None:
    """A rate limit of 10 requests per minute holds across both workers: 10 answered, the rest 429, though
    both workers served (each would have let 10 through when they counted alone)."""
    home = tmp_path / "home"
    config = tmp_path / "gateway.yaml"
    config.write_text("profiles:\n  default:\n    prompt:\n      detectors: []\n    budgets: {requests: 10}\n")
    port = free_port()
    env = {**os.environ, "TUTELA_HOME": str(home)}
    statuses = []
    with FakeUpstream() as up:
        cmd = [sys.executable, "-m", "tutela", "gateway", "serve", "--listen", f"127.0.0.1:{port}",
               "--upstream", up.base, "--config", str(config), "--workers", "2"]  # fmt: skip
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert json.loads(proc.stdout.readline())["workers"] == 2  # type: ignore[union-attr]
            pids: set[int] = set()
            deadline = time.monotonic() + 90
            while len(pids) < 2 and time.monotonic() < deadline:  # both workers up before counting
                try:
                    pids.add(httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()["pid"])
                except httpx.TransportError:
                    time.sleep(0.1)
            assert len(pids) == 2, "the second worker never answered"
            body = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}
            for _ in range(30):  # a fresh connection each: spread over both workers
                statuses.append(httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body).status_code)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
    assert statuses.count(200) == 10 and statuses.count(429) == 20, statuses
    assert "count budgets on their own" not in err  # the old per-worker warning is gone with the cause
    assert not list((home / "run").glob("gateway-budgets-*.bin"))  # the first worker removes the table
    audit = subprocess.run(
        [sys.executable, "-m", "tutela", "gateway", "audit", "verify", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert all(r["records"] > 0 for r in json.loads(audit.stdout))  # both workers answered some requests


def test_workers_zero_means_one_per_usable_core() -> None:
    cores = len(os.sched_getaffinity(0))
    assert resolve_workers(0) == max(1, min(cores, AUTO_WORKERS_MAX))
    assert resolve_workers(3) == 3
