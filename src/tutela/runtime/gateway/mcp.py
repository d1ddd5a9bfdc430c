"""MCP proxy mode: tutela between an MCP client and a real MCP server.

`tutela gateway mcp-proxy [--profile P] -- COMMAND [ARGS...]` starts the server as a subprocess and
relays newline-delimited JSON-RPC both ways (stdio transport); `--upstream-url` proxies the
streamable-HTTP transport instead (mcp_http.py). Either way the profile judges what crosses:

  tools/list result     each tool's description and input schema (channel `tool_output`: tool poisoning);
                        a tool that is blocked, or not on the profile's tool allow-list, is removed from
                        the list the client sees
  tools/call request    the tool name against the allow-list, the arguments (channel `output`, as tool-call
                        arguments in the HTTP gateway: secrets, exfiltration URLs); blocked calls never reach
                        the server: the client gets a tool result with `isError: true` and the reason
  tools/call result     text content and structured content (channel `tool_output`: injection in tool
                        output); blocked -> replaced by an `isError` result, redact -> text rewritten
  resources/read result text contents (channel `document`); blocked -> a JSON-RPC error
  prompts/list result   each prompt's description and argument descriptions (channel `tool_output`:
                        poisoning); a blocked prompt is removed from the list the client sees
  prompts/get result    the messages' text (channel `tool_output`: the server's prompt goes into the
                        client's conversation); blocked -> a JSON-RPC error, redact -> text rewritten

Every judged message is an event in the store and a line of the audit chain (route `mcp:<method>`).
Everything else (initialize, notifications, server-to-client requests) passes unchanged. Lines
are bounded (`MAX_LINE`); a line that is not JSON-RPC is dropped and reported on stderr, never forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from tutela.core.findings import Action, Verdict, digest
from tutela.runtime.gateway.app import Caller, Gateway, new_tr_id
from tutela.runtime.gateway.engine import Item

MAX_LINE = 16 << 20
BLOCKED_CODE = -32001  # JSON-RPC server-defined error: refused by policy


def _log(message: str) -> None:
    print(f"tutela mcp-proxy: {message}", file=sys.stderr, flush=True)


def _reasons(v: Verdict) -> str:
    return "; ".join(v.reasons[:3]) or v.action.value


@dataclass
class McpGuard:
    """The policy half of the proxy, transport-free: messages in, messages out."""

    gateway: Gateway
    profile: str | None = None  # None: the config's default profile (or the app's)
    app: str | None = None
    server: str = "mcp"
    pending: dict[bytes, tuple[str, str | None]] = field(default_factory=dict)  # request id -> (method, tool)

    def caller(self) -> Caller:
        compiled = self.gateway.profiles.current
        prof = compiled.profiles[self.profile] if self.profile is not None else compiled.profile_for(None, self.app)
        return Caller(None, "default", prof, self.app, None)

    def _record(self, method: str, caller: Caller, verdict: Verdict, t0: float, extra: dict[str, Any]) -> str:
        tr_id = new_tr_id()
        extra = {"server": self.server, **extra}
        self.gateway.record(route=f"mcp:{method}", caller=caller, tr_id=tr_id, verdict=verdict, t0=t0, extra=extra)
        return tr_id

    async def from_client(self, msg: Any) -> tuple[Any | None, Any | None]:
        """(message to forward to the server or None, reply to send back to the client or None)."""
        if not isinstance(msg, dict):
            return msg, None
        method, mid = msg.get("method"), msg.get("id")
        if not isinstance(method, str) or mid is None:
            return msg, None  # a notification, or a response to a server-to-client request
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        tool = params.get("name") if method == "tools/call" and isinstance(params.get("name"), str) else None
        self.pending[orjson.dumps(mid)] = (method, tool)
        if method != "tools/call":
            return msg, None
        t0 = time.perf_counter()
        caller = self.caller()
        name = tool or ""
        verdict: Verdict
        if not caller.profile.tool_allowed(name):
            verdict = Verdict(action=Action.BLOCK, reasons=(f"tool {name!r} is not on the profile's allow-list",))
        else:
            args = params.get("arguments")
            text = orjson.dumps(args).decode() if args not in (None, {}) else ""
            j = await self.gateway.guard.judge(caller.profile, "output", [Item("tools/call.arguments", text)])
            verdict = j.verdict
            if verdict.action is Action.REDACT:  # arguments are released whole or not at all
                verdict = Verdict(
                    action=Action.BLOCK,
                    findings=verdict.findings,
                    reasons=(*verdict.reasons, "tool-call arguments to redact -> block"),
                )
        extra = {"tool": name, "arguments_sha256": digest(orjson.dumps(params.get("arguments")))}
        tr_id = self._record("tools/call", caller, verdict, t0, extra)
        if verdict.action is not Action.BLOCK:
            return msg, None
        self.pending.pop(orjson.dumps(mid), None)
        text = f"tutela blocked this tool call: {_reasons(verdict)} (tr_id {tr_id})"
        result = {"content": [{"type": "text", "text": text}], "isError": True}
        return None, {"jsonrpc": "2.0", "id": mid, "result": result}

    async def from_server(self, msg: Any) -> Any | None:
        """The message to forward to the client (possibly rewritten), or None to drop it."""
        if not isinstance(msg, dict) or "method" in msg or msg.get("id") is None:
            return msg  # server-to-client requests and notifications pass
        method, tool = self.pending.pop(orjson.dumps(msg["id"]), (None, None))
        result = msg.get("result")
        if not isinstance(result, dict):
            return msg  # an error, or an answer to something we did not see asked
        if method == "tools/list":
            return {**msg, "result": await self._tools_list(result)}
        if method == "tools/call":
            return {**msg, "result": await self._tool_result(tool or "", result)}
        if method == "resources/read":
            return await self._resource(msg, result)
        if method == "prompts/list":
            return {**msg, "result": await self._prompts_list(result)}
        if method == "prompts/get":
            return await self._prompt(msg, result)
        return msg

    async def _prompts_list(self, result: dict[str, Any]) -> dict[str, Any]:
        prompts = result.get("prompts")
        if not isinstance(prompts, list):
            return result
        caller = self.caller()
        kept: list[Any] = []
        for prompt in prompts:
            if not isinstance(prompt, dict):
                continue
            t0 = time.perf_counter()
            name = str(prompt.get("name", ""))
            items = [Item(f"prompts[{name}].description", str(prompt.get("description") or ""))]
            for i, arg in enumerate(prompt.get("arguments") if isinstance(prompt.get("arguments"), list) else []):
                if isinstance(arg, dict) and isinstance(arg.get("description"), str):
                    items.append(Item(f"prompts[{name}].arguments[{i}].description", arg["description"]))
            j = await self.gateway.guard.judge(caller.profile, "tool_output", items)
            extra = {"prompt": name, "description_sha256": digest(orjson.dumps(prompt, option=orjson.OPT_SORT_KEYS))}
            self._record("prompts/list", caller, j.verdict, t0, extra)
            if j.verdict.action is Action.BLOCK:
                _log(f"prompt {name!r} withheld from the client: {_reasons(j.verdict)}")
                continue
            if j.redacted is not None and j.verdict.action is Action.REDACT and "description" in prompt:
                prompt = {**prompt, "description": j.redacted[0]}
            kept.append(prompt)
        return {**result, "prompts": kept}

    async def _prompt(self, msg: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """prompts/get: the messages the client will put into its conversation, judged like tool output."""
        caller = self.caller()
        t0 = time.perf_counter()
        messages = result.get("messages") if isinstance(result.get("messages"), list) else []
        items: list[Item] = []
        slots: list[int | None] = []  # message index of each item whose text can be rewritten
        if isinstance(result.get("description"), str):
            items.append(Item("description", result["description"]))
            slots.append(None)
        for i, m in enumerate(messages):
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, dict) and content.get("type") == "text" and isinstance(content.get("text"), str):
                items.append(Item(f"messages[{i}].content.text", content["text"]))
                slots.append(i)
            elif isinstance(content, dict) and isinstance(content.get("resource"), dict):
                text = content["resource"].get("text")
                if isinstance(text, str):
                    items.append(Item(f"messages[{i}].content.resource.text", text))
                    slots.append(None)
        j = await self.gateway.guard.judge(caller.profile, "tool_output", items)
        kept = [s for s, it in zip(slots, items, strict=True) if it.text]  # judge() drops empty items
        out_sha = digest(orjson.dumps(result, option=orjson.OPT_SORT_KEYS))
        tr_id = self._record("prompts/get", caller, j.verdict, t0, {"output_sha256": out_sha})
        if j.verdict.action is Action.BLOCK:
            message = f"tutela withheld this prompt: {_reasons(j.verdict)} (tr_id {tr_id})"
            return {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": BLOCKED_CODE, "message": message}}
        if j.verdict.action is Action.REDACT and j.redacted is not None:
            if any(s is None and new != it.text for s, new, it in zip(kept, j.redacted, j.items, strict=True)):
                message = f"tutela withheld this prompt: a part to redact cannot be rewritten (tr_id {tr_id})"
                return {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": BLOCKED_CODE, "message": message}}
            messages = list(messages)
            for s, new in zip(kept, j.redacted, strict=True):
                if s is not None:
                    messages[s] = {**messages[s], "content": {**messages[s]["content"], "text": new}}
            return {**msg, "result": {**result, "messages": messages}}
        return msg

    async def _tools_list(self, result: dict[str, Any]) -> dict[str, Any]:
        tools = result.get("tools")
        if not isinstance(tools, list):
            return result
        caller = self.caller()
        kept: list[Any] = []
        for tool in tools:
            if not isinstance(tool, dict):
                continue
            t0 = time.perf_counter()
            name = str(tool.get("name", ""))
            items = [Item(f"tools[{name}].description", tool.get("description") or "")]
            schema = tool.get("inputSchema")
            if isinstance(schema, dict) and schema:
                items.append(Item(f"tools[{name}].inputSchema", orjson.dumps(schema).decode()))
            if not caller.profile.tool_allowed(name):
                verdict = Verdict(action=Action.BLOCK, reasons=(f"tool {name!r} is not on the profile's allow-list",))
                redacted = None
            else:
                j = await self.gateway.guard.judge(caller.profile, "tool_output", items)
                verdict, redacted = j.verdict, j.redacted
            extra = {"tool": name, "description_sha256": digest(orjson.dumps(tool, option=orjson.OPT_SORT_KEYS))}
            self._record("tools/list", caller, verdict, t0, extra)
            if verdict.action is Action.BLOCK:
                _log(f"tool {name!r} withheld from the client: {_reasons(verdict)}")
                continue
            if redacted is not None and verdict.action is Action.REDACT:
                tool = {**tool, "description": redacted[0]}
            kept.append(tool)
        return {**result, "tools": kept}

    async def _tool_result(self, name: str, result: dict[str, Any]) -> dict[str, Any]:
        caller = self.caller()
        t0 = time.perf_counter()
        content = result.get("content") if isinstance(result.get("content"), list) else []
        slots: list[int] = []
        items: list[Item] = []
        for i, block in enumerate(content):
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
                slots.append(i)
                items.append(Item(f"content[{i}].text", block["text"]))
            elif isinstance(block, dict) and isinstance(block.get("resource"), dict):
                text = block["resource"].get("text")
                if isinstance(text, str):
                    items.append(Item(f"content[{i}].resource.text", text))
        structured = result.get("structuredContent")
        if structured is not None:
            items.append(Item("structuredContent", orjson.dumps(structured).decode()))
        j = await self.gateway.guard.judge(caller.profile, "tool_output", items)
        verdict = j.verdict
        tr_id = self._record("tools/call.result", caller, verdict, t0, {"tool": name, "output_sha256": digest(
            orjson.dumps(result, option=orjson.OPT_SORT_KEYS))})  # fmt: skip
        if verdict.action is Action.BLOCK:
            text = f"tutela withheld the output of tool {name!r}: {_reasons(verdict)} (tr_id {tr_id})"
            return {"content": [{"type": "text", "text": text}], "isError": True}
        if verdict.action is Action.REDACT and j.redacted is not None:
            content = list(content)
            for k, i in enumerate(slots):
                content[i] = {**content[i], "text": j.redacted[k]}
            out = {**result, "content": content}
            out.pop("structuredContent", None)  # JSON cannot be redacted in place safely: text only
            return out
        return result

    async def _resource(self, msg: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        caller = self.caller()
        t0 = time.perf_counter()
        contents = result.get("contents") if isinstance(result.get("contents"), list) else []
        items = [
            Item(f"contents[{i}].text", c["text"])
            for i, c in enumerate(contents)
            if isinstance(c, dict) and isinstance(c.get("text"), str)
        ]
        j = await self.gateway.guard.judge(caller.profile, "document", items)
        tr_id = self._record("resources/read", caller, j.verdict, t0, {})
        if j.verdict.action is Action.BLOCK:
            message = f"tutela withheld this resource: {_reasons(j.verdict)} (tr_id {tr_id})"
            return {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": BLOCKED_CODE, "message": message}}
        return msg


# --- the stdio transport ---------------------------------------------------------------------


def _parse(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return _NOT_JSON


_NOT_JSON = object()


async def _each(guard: McpGuard, msg: Any, client: bool) -> tuple[list[Any], list[Any]]:
    """Judge one message or a JSON-RPC batch: (to the server, to the client)."""
    to_server: list[Any] = []
    to_client: list[Any] = []
    for m in msg if isinstance(msg, list) else [msg]:
        if client:
            fwd, reply = await guard.from_client(m)
            if fwd is not None:
                to_server.append(fwd)
            if reply is not None:
                to_client.append(reply)
        else:
            out = await guard.from_server(m)
            if out is not None:
                to_client.append(out)
    return to_server, to_client


def _frame(msgs: list[Any], batch: bool) -> bytes:
    if batch:
        return orjson.dumps(msgs) + b"\n"
    return b"".join(orjson.dumps(m) + b"\n" for m in msgs)


class StdioProxy:
    def __init__(self, guard: McpGuard, argv: Sequence[str]) -> None:
        self.guard = guard
        self.argv = list(argv)
        self._out_lock = asyncio.Lock()

    async def _to_client(self, data: bytes) -> None:
        async with self._out_lock:
            out = sys.stdout.buffer
            await asyncio.get_running_loop().run_in_executor(None, lambda: (out.write(data), out.flush()))

    @staticmethod
    def _read_stdin_line() -> bytes:
        line = sys.stdin.buffer.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            while True:  # discard the rest of an oversized line
                rest = sys.stdin.buffer.readline(1 << 20)
                if not rest or rest.endswith(b"\n"):
                    break
            return b"\x00oversized\n"
        return line

    async def _relay(self, line: bytes, proc: asyncio.subprocess.Process, *, client: bool) -> None:
        """Judge one line from the client or the server and send on what passes, and any reply."""
        if not line.strip():
            return
        msg = _parse(line)
        if msg is _NOT_JSON:
            _log(f"dropped a {'client' if client else 'server'} line that is not JSON (or over the size limit)")
            return
        to_server, to_client = await _each(self.guard, msg, client=client)
        if to_server and proc.stdin is not None:
            proc.stdin.write(_frame(to_server, isinstance(msg, list)))
            await proc.stdin.drain()
        if to_client:
            await self._to_client(_frame(to_client, isinstance(msg, list)))

    async def _client_loop(self, proc: asyncio.subprocess.Process) -> None:
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, self._read_stdin_line):
            await self._relay(line, proc, client=True)
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()

    async def _server_loop(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while True:
            try:
                line = await proc.stdout.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                line = exc.partial
                if not line:
                    return
            except asyncio.LimitOverrunError as exc:
                await proc.stdout.readexactly(exc.consumed)  # drop the oversized line, chunk by chunk
                _log("dropped a server message over the size limit")
                continue
            await self._relay(line, proc, client=False)

    async def run(self) -> int:
        proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=MAX_LINE
        )
        client = asyncio.create_task(self._client_loop(proc))
        server = asyncio.create_task(self._server_loop(proc))
        reload = asyncio.create_task(self._reload_loop())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.cancel)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await server  # the server's stdout closed: it is done (or the client closed its stdin)
        finally:
            client.cancel()
            reload.cancel()
            with contextlib.suppress(ProcessLookupError):
                if proc.returncode is None:
                    try:
                        await asyncio.wait_for(proc.wait(), 5)
                    except (TimeoutError, asyncio.CancelledError):
                        proc.terminate()
                        await proc.wait()
        return proc.returncode or 0

    async def _reload_loop(self) -> None:
        gw = self.guard.gateway
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(gw.settings.reload_interval_s)
            with contextlib.suppress(Exception):
                await loop.run_in_executor(None, gw.profiles.maybe_reload)


def run_stdio(gateway: Gateway, argv: Sequence[str], *, profile: str | None = None, app: str | None = None) -> int:
    """Run the proxy until the server exits; returns the server's exit status."""
    if profile is not None and profile not in gateway.profiles.current.profiles:
        known = ", ".join(gateway.profiles.current.profiles)
        from tutela.core.errors import ConfigError

        raise ConfigError(f"unknown profile {profile!r}", hint=f"profiles: {known}")
    guard = McpGuard(gateway, profile, app, server=argv[0].rsplit("/", 1)[-1])
    gateway.guard.warm(list(gateway.profiles.current.profiles.values()))
    gateway.writer.start()
    gateway.audit.start()
    try:
        return asyncio.run(StdioProxy(guard, argv).run())
    finally:
        gateway.guard.close()
        gateway.audit.close()
        gateway.writer.close()
