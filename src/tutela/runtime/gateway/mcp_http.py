"""MCP proxy over the streamable-HTTP transport: tutela in front of a remote MCP server's endpoint.

`tutela gateway mcp-proxy --listen HOST:PORT --upstream-url http://server/mcp` serves one MCP endpoint
(`--path`, default `/mcp`) and relays it to the server's, judging under the profile exactly what the
stdio proxy judges (McpGuard in mcp.py): tool and prompt lists, tool calls and their results, resources
and prompts. The transport (MCP 2025-03-26 and later):

  POST  a JSON-RPC message (or batch) from the client. Requests the profile blocks never reach the server;
        the client gets the refusal as the answer. The server answers with JSON (judged, then sent on) or
        with an SSE stream, relayed event by event: each event's message judged, its `id:` kept so the
        client can resume with Last-Event-ID.
  GET   the server-to-client SSE stream (and resumed streams): relayed and judged the same way.
  DELETE ends the session.

A session's pending requests (which id asked for what) live with its `Mcp-Session-Id`, so an answer that
arrives on another stream of the session (a resumed one) is still judged as what it answers. Sessions are
bounded (least recently used dropped). Bodies are bounded (gateway.max_body_bytes), SSE events too.
With no gateway keys configured the proxy serves loopback clients only, as the gateway does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tutela.runtime.gateway.app import Gateway, HttpError, is_loopback
from tutela.runtime.gateway.mcp import McpGuard, _each, _log
from tutela.runtime.gateway.streaming import StreamError
from tutela.runtime.gateway.upstream import UpstreamError

MAX_SESSIONS = 10_000
MAX_EVENT_BYTES = 16 << 20
MAX_JSON_ANSWER = 64 << 20
FORWARD = ("accept", "content-type", "mcp-session-id", "mcp-protocol-version", "last-event-id", "authorization")
BACK = ("content-type", "mcp-session-id", "mcp-protocol-version", "cache-control", "www-authenticate")
PARSE_ERROR = -32700


class SseEvents:
    """Incremental SSE parser that keeps every field (`id:` and `retry:` matter for MCP resumption)."""

    def __init__(self, max_event: int = MAX_EVENT_BYTES) -> None:
        self.buf = b""
        self.max_event = max_event

    def feed(self, chunk: bytes) -> list[list[tuple[str, str]]]:
        self.buf = (self.buf + chunk).replace(b"\r\n", b"\n")
        out: list[list[tuple[str, str]]] = []
        while True:
            end = self.buf.find(b"\n\n")
            if end < 0:
                if len(self.buf) > self.max_event:
                    raise StreamError(f"MCP server SSE event larger than {self.max_event} bytes")
                return out
            raw, self.buf = self.buf[:end], self.buf[end + 2 :]
            fields = []
            for line in raw.decode("utf-8", "replace").split("\n"):
                if not line:
                    continue
                name, _, value = line.partition(":")
                fields.append((name, value.removeprefix(" ")))
            if fields:
                out.append(fields)


def sse_event(fields: list[tuple[str, str]]) -> bytes:
    lines = []
    for name, value in fields:
        if name == "data":
            lines.extend(f"data: {part}" for part in value.split("\n"))
        elif name == "":
            lines.append(f":{value}")
        else:
            lines.append(f"{name}: {value}")
    return ("\n".join(lines) + "\n\n").encode()


def _rpc_error(code: int, message: str, mid: Any = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": mid, "error": {"code": code, "message": message}}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)


class McpHttpProxy:
    def __init__(
        self,
        gateway: Gateway,
        upstream_url: str,
        *,
        profile: str | None = None,
        app: str | None = None,
        server: str = "mcp",
    ) -> None:
        self.gateway = gateway
        self.upstream_url = upstream_url
        self.profile = profile
        self.app = app
        self.server = server
        self.sessions: collections.OrderedDict[str, McpGuard] = collections.OrderedDict()

    def guard_for(self, session: str | None) -> McpGuard:
        if session is None:
            return McpGuard(self.gateway, self.profile, self.app, server=self.server)
        guard = self.sessions.get(session)
        if guard is None:
            guard = self.sessions[session] = McpGuard(self.gateway, self.profile, self.app, server=self.server)
            while len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)
        else:
            self.sessions.move_to_end(session)
        return guard

    def _adopt(self, guard: McpGuard, session: str | None) -> None:
        """A session the server just assigned (the answer to `initialize`): keep its guard."""
        if session and session not in self.sessions:
            self.sessions[session] = guard
            while len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)

    def _check_access(self, request: Request) -> None:
        compiled = self.gateway.profiles.current
        if compiled.keys:
            from tutela.runtime.gateway.keys import lookup, presented_key

            if lookup(presented_key(request.headers), compiled.keys) is None:
                raise HttpError(401, "missing or invalid gateway API key")
        elif not is_loopback(request.client.host if request.client else None):
            raise HttpError(403, "no gateway keys are configured: only loopback clients are served")

    def _headers(self, request: Request) -> dict[str, str]:
        out = {name: value for name in FORWARD if (value := request.headers.get(name))}
        if self.gateway.profiles.current.keys:  # the client's credential is then a gateway key: never forwarded
            out.pop("authorization", None)
        return out

    @staticmethod
    def _back(headers: Any) -> dict[str, str]:
        return {name: value for name in BACK if (value := headers.get(name))}

    async def handle(self, request: Request) -> Response:
        try:
            self._check_access(request)
            if request.method == "POST":
                return await self._post(request)
            if request.method == "GET":
                return await self._get(request)
            return await self._delete(request)
        except HttpError as exc:
            return _json(_rpc_error(-32600, exc.message), exc.status, exc.headers)
        except UpstreamError as exc:
            status = 504 if exc.kind == "timeout" else 502
            return _json(_rpc_error(-32603, f"MCP server unreachable: {exc}"), status)

    async def _post(self, request: Request) -> Response:
        body = await self.gateway.read_body(request)
        try:
            msg = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _json(_rpc_error(PARSE_ERROR, "request body is not JSON"), 400)
        session = request.headers.get("mcp-session-id")
        guard = self.guard_for(session)
        batch = isinstance(msg, list)
        to_server, replies = await _each(guard, msg, client=True)
        if not to_server:  # every request refused by policy: the server never sees them
            return _json(replies if batch else replies[0]) if replies else Response(status_code=202)
        content = orjson.dumps(to_server if batch else to_server[0])
        headers = {**self._headers(request), "content-type": "application/json"}
        resp = await self.gateway.client.stream(self.upstream_url, content=content, headers=headers)
        self._adopt(guard, resp.headers.get("mcp-session-id"))
        return await self._answer(resp, guard, replies, batch)

    async def _get(self, request: Request) -> Response:
        headers = self._headers(request)
        resp = await self.gateway.client.stream(self.upstream_url, content=None, headers=headers, method="GET")
        return await self._answer(resp, self.guard_for(request.headers.get("mcp-session-id")), [], False)

    async def _delete(self, request: Request) -> Response:
        session = request.headers.get("mcp-session-id")
        answer = await self.gateway.client.request("DELETE", self.upstream_url, headers=self._headers(request))
        if session:
            self.sessions.pop(session, None)
        return Response(answer.body, status_code=answer.status, headers=self._back(answer.headers))

    async def _answer(self, resp: Any, guard: McpGuard, replies: list[Any], batch: bool) -> Response:
        """The server's answer to the client: JSON judged whole, SSE judged event by event, the rest as is."""
        back = self._back(resp.headers)
        ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "text/event-stream" and resp.status == 200:
            return StreamingResponse(self._relay(resp, guard, replies), status_code=200, headers=back)
        try:
            data = await resp.read(MAX_JSON_ANSWER)
        finally:
            resp.close()
        if ctype == "application/json" and resp.status == 200 and data:
            try:
                msg = orjson.loads(data)
            except orjson.JSONDecodeError:
                _log("dropped a server answer that is not JSON")
                return _json(_rpc_error(-32603, "the MCP server's answer is not JSON"), 502)
            _, out = await _each(guard, msg, client=False)
            out = replies + out
            return Response(orjson.dumps(out if isinstance(msg, list) or batch else out[0]), headers=back)
        if replies and resp.status == 202:  # the server took the rest (notifications); the refusals are ours
            return _json(replies if batch else replies[0])
        return Response(data, status_code=resp.status, headers=back)

    async def _relay(self, resp: Any, guard: McpGuard, replies: list[Any]) -> AsyncIterator[bytes]:
        try:
            for reply in replies:
                yield sse_event([("event", "message"), ("data", orjson.dumps(reply).decode())])
            parser = SseEvents()
            async for chunk in resp.chunks():
                for fields in parser.feed(chunk):
                    data = "\n".join(v for k, v in fields if k == "data")
                    if not data.strip():  # priming events (an id, a retry), comments: as they are
                        yield sse_event(fields)
                        continue
                    try:
                        msg = orjson.loads(data)
                    except orjson.JSONDecodeError:
                        _log("dropped a server SSE event that is not JSON")
                        continue
                    _, out = await _each(guard, msg, client=False)
                    if not out:
                        continue
                    body = orjson.dumps(out if isinstance(msg, list) else out[0]).decode()
                    kept = [(k, v) for k, v in fields if k != "data"]
                    yield sse_event([*kept, ("data", body)])
        except (StreamError, UpstreamError) as exc:
            _log(f"MCP server stream ended: {exc}")
        finally:
            resp.close()


def create_mcp_app(proxy: McpHttpProxy, path: str = "/mcp") -> Starlette:
    gateway = proxy.gateway

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.client.start()
        gateway.guard.warm(list(gateway.profiles.current.profiles.values()))
        gateway.writer.start()
        gateway.audit.start()
        ingest = asyncio.create_task(gateway.ingest_loop())
        try:
            yield
        finally:
            ingest.cancel()
            await gateway.client.close()
            gateway.guard.close()
            gateway.audit.close()
            gateway.writer.close()

    return Starlette(routes=[Route(path, proxy.handle, methods=["GET", "POST", "DELETE"])], lifespan=lifespan)


def serve_http(
    gateway: Gateway,
    listen: str,
    upstream_url: str,
    *,
    path: str = "/mcp",
    profile: str | None = None,
    app: str | None = None,
) -> None:
    import importlib.util

    import uvicorn

    from tutela.core.errors import ConfigError, ServiceError
    from tutela.core.services import split_listen

    host, port = split_listen(listen)
    if not upstream_url.startswith(("http://", "https://")):
        raise ConfigError(f"--upstream-url {upstream_url!r}: an http:// or https:// URL of the MCP endpoint")
    if profile is not None and profile not in gateway.profiles.current.profiles:
        known = ", ".join(gateway.profiles.current.profiles)
        raise ConfigError(f"unknown profile {profile!r}", hint=f"profiles: {known}")
    if not gateway.profiles.current.keys and not is_loopback(host):
        raise ServiceError(
            f"no gateway keys are configured: refusing to listen on {host}",
            hint="listen on 127.0.0.1, or add keys (`tutela gateway keys new`) to the gateway config",
        )
    server = upstream_url.split("//", 1)[1].split("/", 1)[0]
    proxy = McpHttpProxy(gateway, upstream_url, profile=profile, app=app, server=server)
    config = uvicorn.Config(
        create_mcp_app(proxy, path),
        host=host,
        port=port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        log_level="warning",
        access_log=False,
        server_header=False,
    )
    uvicorn.Server(config).run()
