"""`tutela gateway mcp-proxy --upstream-url`: the streamable-HTTP transport, between the official `mcp` SDK's
client and a real MCP server (the SDK's MCPServer, tests/runtime/mcp_server.py), answering with SSE
streams or with JSON, judged by tutela's real runtime detectors (the fast tier)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

pytest.importorskip("mcp")

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.runtime.conftest import free_port
from tutela.core.store import EventStore
from tutela.runtime.gateway.audit import verify

SERVER = str(Path(__file__).parents[1] / "runtime" / "mcp_server.py")
AWS_KEY = "AKIAZ7Q4N2XW5R8KLM3P"


def _wait(port: int, proc: subprocess.Popen[Any], timeout: float = 90) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


@contextlib.contextmanager
def running(cmd: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[None]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    try:
        _wait(port, proc)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def proxy_stack(home: Path, json_answers: bool) -> Iterator[str]:
    server_port, proxy_port = free_port(), free_port()
    server = [sys.executable, SERVER, "http", str(server_port), *(["--json"] if json_answers else [])]
    proxy = [sys.executable, "-m", "tutela", "gateway", "mcp-proxy", "--listen", f"127.0.0.1:{proxy_port}",
             "--upstream-url", f"http://127.0.0.1:{server_port}/mcp"]  # fmt: skip
    with running(server, server_port), running(proxy, proxy_port, {**os.environ, "TUTELA_HOME": str(home)}):
        yield f"http://127.0.0.1:{proxy_port}/mcp"


def session(url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}

    async def run() -> None:
        async with streamable_http_client(url) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            out["tools"] = [t.name for t in (await s.list_tools()).tools]
            for key, name, args in (
                ("weather", "get_weather", {"city": "Lisbon"}),
                ("evil_page", "fetch_page", {"url": "https://evil.example/"}),
                ("leaky_mail", "send_email", {"to": "ops@example.org", "body": f"the key is {AWS_KEY}"}),
            ):
                r = await s.call_tool(name, args)
                out[key] = (r.is_error, " ".join(getattr(c, "text", "") for c in r.content))
            out["prompts"] = [p.name for p in (await s.list_prompts()).prompts]
            p = await s.get_prompt("summarise", {"topic": "Roman roads"})
            out["summarise"] = " ".join(getattr(m.content, "text", "") for m in p.messages)
            try:
                await s.get_prompt("review_code", {"language": "python"})
                out["poisoned_prompt"] = "passed"
            except MCPError as exc:
                out["poisoned_prompt"] = str(exc)
            p = await s.get_prompt("review_code", {"language": "go"})
            out["review_go"] = " ".join(getattr(m.content, "text", "") for m in p.messages)

    async def main() -> None:
        with anyio.fail_after(90):
            await run()

    anyio.run(main)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("json_answers", [False, True], ids=["sse", "json"])
def test_mcp_http_proxy_judges_tools_calls_results_and_prompts(tmp_path: Path, json_answers: bool) -> None:
    home = tmp_path / "home"
    with proxy_stack(home, json_answers) as url:
        out = session(url)
    assert "add_numbers" not in out["tools"]  # poisoned description: withheld from the client
    assert {"get_weather", "fetch_page", "send_email"} <= set(out["tools"])
    assert out["weather"] == (False, "It is sunny and 21 degrees in Lisbon.")
    is_error, text = out["evil_page"]
    assert is_error and "withheld the output" in text and "Ignore all previous" not in text
    is_error, text = out["leaky_mail"]
    assert is_error and "blocked this tool call" in text and AWS_KEY not in text
    assert set(out["prompts"]) == {"summarise", "review_code"}
    assert out["summarise"] == "Please summarise what is known about Roman roads in three short sentences."
    assert "withheld this prompt" in out["poisoned_prompt"] and "developer mode" not in out["poisoned_prompt"]
    assert out["review_go"] == "Review the following go code for bugs and style."

    audit = verify(home / "gateway" / "audit.jsonl")
    assert audit.ok and audit.records >= 10
    _, rows = EventStore(home / "events.duckdb", home=home).query(
        "select source, action from events where action = 'block' order by source"
    )
    assert rows == [
        ("gateway:mcp:prompts/get", "block"),
        ("gateway:mcp:tools/call", "block"),
        ("gateway:mcp:tools/call.result", "block"),
        ("gateway:mcp:tools/list", "block"),
    ]


def test_mcp_http_proxy_bad_input(tmp_path: Path) -> None:
    """Not JSON, oversized bodies, a server that is not there: clear JSON-RPC errors, no 5xx from tutela
    itself except the 502 that says the server is unreachable."""
    port = free_port()
    dead = free_port()
    cmd = [sys.executable, "-m", "tutela", "gateway", "mcp-proxy", "--listen", f"127.0.0.1:{port}",
           "--upstream-url", f"http://127.0.0.1:{dead}/mcp"]  # fmt: skip
    with running(cmd, port, {**os.environ, "TUTELA_HOME": str(tmp_path / "home")}):
        url = f"http://127.0.0.1:{port}/mcp"
        r = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["code"] == -32700
        r = httpx.post(url, content=b"[" + b"1," * (5 << 20) + b"1]", headers={"content-type": "application/json"})
        assert r.status_code == 413
        r = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert r.status_code == 502 and "unreachable" in r.json()["error"]["message"]
        assert httpx.get(f"http://127.0.0.1:{port}/other").status_code == 404


def test_mcp_proxy_needs_a_server(tutela_home: Path) -> None:
    from tutela.cli import main

    assert main(["gateway", "mcp-proxy"]) == 2
    assert main(["gateway", "mcp-proxy", "--upstream-url", "http://127.0.0.1:9/mcp", "--", "python", "x.py"]) == 2
