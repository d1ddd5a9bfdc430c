"""`tutela gateway mcp-proxy` between the official `mcp` SDK's client and a real MCP server (the SDK's
MCPServer, tests/runtime/mcp_server.py) over stdio, with tutela's real runtime detectors (the fast tier)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tutela.core.store import EventStore
from tutela.runtime.gateway.audit import verify

SERVER = str(Path(__file__).with_name("mcp_server.py"))
AWS_KEY = "AKIAZ7Q4N2XW5R8KLM3P"


def session(home: Path, *extra: str) -> dict[str, Any]:
    """Drive the proxy with the SDK client: list tools, call each kind of tool; return what came back."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "tutela", "gateway", "mcp-proxy", *extra, "--", sys.executable, SERVER],
        env={**os.environ, "TUTELA_HOME": str(home)},  # the SDK passes only a few variables by default
    )
    out: dict[str, Any] = {}

    async def main() -> None:
        with anyio.fail_after(60):
            await run()

    async def run() -> None:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            out["tools"] = [t.name for t in (await s.list_tools()).tools]
            for key, name, args in (
                ("weather", "get_weather", {"city": "Lisbon"}),
                ("benign_page", "fetch_page", {"url": "https://example.org/lisbon"}),
                ("evil_page", "fetch_page", {"url": "https://evil.example/"}),
                ("leaky_mail", "send_email", {"to": "ops@example.org", "body": f"the key is {AWS_KEY}"}),
            ):
                r = await s.call_tool(name, args)
                out[key] = (r.is_error, " ".join(getattr(c, "text", "") for c in r.content))

    anyio.run(main)
    return out


def test_mcp_proxy_judges_descriptions_calls_and_results(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = session(home)
    assert "add_numbers" not in out["tools"]  # poisoned description: withheld from the client
    assert {"get_weather", "fetch_page", "send_email"} <= set(out["tools"])
    assert out["weather"] == (False, "It is sunny and 21 degrees in Lisbon.")
    assert out["benign_page"] == (False, "Lisbon is the capital of Portugal.")
    is_error, text = out["evil_page"]
    assert is_error and "withheld the output" in text and "Ignore all previous" not in text
    is_error, text = out["leaky_mail"]
    assert is_error and "blocked this tool call" in text and "secret" in text
    assert AWS_KEY not in text

    audit = verify(home / "gateway" / "audit.jsonl")
    assert audit.ok and audit.records >= 8
    _, rows = EventStore(home / "events.duckdb", home=home).query(
        "select source, action from events where action = 'block' order by source"
    )
    assert rows == [
        ("gateway:mcp:tools/call", "block"),
        ("gateway:mcp:tools/call.result", "block"),
        ("gateway:mcp:tools/list", "block"),
    ]


def test_mcp_proxy_tool_allow_list(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({"profiles": {"default": {}, "weather_only": {"tools": {"allow": ["get_*"]}}}}))
    out = session(tmp_path / "home", "--config", str(config), "--profile", "weather_only")
    assert out["tools"] == ["get_weather"]
    assert out["weather"][0] is False
    assert out["benign_page"][0] is True and "allow-list" in out["benign_page"][1]
