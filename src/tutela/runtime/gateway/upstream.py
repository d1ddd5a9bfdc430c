"""The HTTP client to the upstream LLM API: HTTP/1.1 keep-alive pool, bounded reads, errors as UpstreamError.

A small client on asyncio protocols and httptools' response parser (the parser uvicorn uses), because the
general-purpose clients were the gateway's largest cost after the detectors: httpx (0.28) served ~100-200
requests/s against a local upstream answering ~12,000/s, and aiohttp (3.14), the client before this one, took
about a fifth of the gateway's CPU per request in profiles (bench/gateway.py). It does what the gateway needs and
no more: HTTP and HTTPS (certificates verified), content-length, chunked and close-delimited bodies, streamed
bodies with back-pressure, idle connections reused, one retry when a reused connection turns out closed before any
answer byte arrived, no redirects, no proxies from the environment, no compression (none is asked for).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

MAX_ANSWER_BYTES = 64 << 20
MAX_HEADER_BYTES = 64 << 10
_HIGH_WATER = 1 << 20  # buffered body bytes before the socket stops being read


class UpstreamError(Exception):
    """The upstream could not be reached, timed out or sent something unusable."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "timeout", "connect", "too_large", "stream"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/json")


@dataclass(frozen=True, slots=True)
class _Target:
    key: tuple[str, str, int]  # scheme, host, port: the pool key
    host_header: str
    path: str


@functools.lru_cache(maxsize=256)
def _target(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamError("connect", f"unsupported upstream URL scheme {parts.scheme!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target((parts.scheme, parts.hostname, port), parts.netloc.rpartition("@")[2], path)


class _Conn(asyncio.Protocol):
    """One HTTP/1.1 connection; one exchange at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: tuple[str, str, int]) -> None:
        self.loop = loop
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used = False  # has carried an exchange before (a stale keep-alive connection may be closed)
        self._reset()

    def _reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: dict[str, str] = {}
        self.header_bytes = 0
        self.got_bytes = False
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.body: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.error: UpstreamError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and not self.complete and self._close_delimited():
            self.complete = True  # a body without length or chunks ends where the connection does
        if not self.complete and self.error is None:
            self.error = UpstreamError("connect", "the upstream closed the connection")
        self._wake()

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.error = UpstreamError("connect", "the upstream asked for a protocol upgrade")
        except httptools.HttpParserError as exc:
            self.error = UpstreamError("connect", f"malformed answer from the upstream ({exc})")
        if self.error is not None and self.transport is not None:
            self.transport.close()
        self._wake()

    def _close_delimited(self) -> bool:
        return "content-length" not in self.headers and "chunked" not in self.headers.get("transfer-encoding", "")

    # --- httptools callbacks -----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value)
        if self.header_bytes > MAX_HEADER_BYTES:
            raise httptools.HttpParserError("answer headers over the size limit")
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if 100 <= self.status < 200:  # 100 Continue and friends: wait for the real answer
            self.headers = {}
            return
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.transport.pause_reading()
            self.paused = True

    def on_message_complete(self) -> None:
        if self.headers_done:
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()  # only valid inside this callback

    # --- waiting -----------------------------------------------------------------------------

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait(self, timeout: float) -> None:
        self.waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, self._timeout, self.waiter)
        try:
            await self.waiter
        finally:
            timer.cancel()
            self.waiter = None

    @staticmethod
    def _timeout(waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(UpstreamError("timeout", "the upstream did not answer in time"))

    def take(self) -> bytes:
        data = b"".join(self.body)
        self.body.clear()
        self.buffered = 0
        if self.paused and self.transport is not None and not self.closed:
            self.transport.resume_reading()
            self.paused = False
        return data

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Stream:
    """An open streamed answer; iterate `chunks()`, always `close()`."""

    def __init__(self, client: UpstreamClient, conn: _Conn) -> None:
        self._client = client
        self._conn = conn
        self.status: int = conn.status
        self.headers: Mapping[str, str] = conn.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            if conn.body:
                yield conn.take()
                continue
            if conn.complete:
                return
            if conn.error is not None:
                raise UpstreamError("stream", f"upstream stream broke ({conn.error})")
            await conn.wait(self._client.timeout_s)

    async def read(self, limit: int = 1 << 20) -> bytes:
        data = b""
        async for chunk in self.chunks():
            data += chunk
            if len(data) > limit:
                break
        return data[:limit]

    def close(self) -> None:
        self._client.release(self._conn)


class UpstreamClient:
    def __init__(self, *, timeout_s: float, connect_timeout_s: float = 10.0, max_idle: int = 512) -> None:
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_idle = max_idle
        self._idle: dict[tuple[str, str, int], list[_Conn]] = {}
        self._ssl: ssl.SSLContext | None = None

    async def start(self) -> None:
        pass  # connections open on first use

    async def close(self) -> None:
        for conns in self._idle.values():
            for c in conns:
                c.close()
        self._idle.clear()

    def release(self, conn: _Conn) -> None:
        idle = self._idle.setdefault(conn.key, [])
        if conn.reusable() and not conn.body and len(idle) < self.max_idle:
            conn._reset()
            conn.used = True
            idle.append(conn)
        else:
            conn.close()

    async def _connect(self, key: tuple[str, str, int]) -> _Conn:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        context = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Conn(loop, key), host, port, ssl=context), self.connect_timeout_s
            )
        except TimeoutError:
            raise UpstreamError("timeout", "the upstream did not accept a connection in time") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamError("connect", f"cannot reach the upstream ({type(exc).__name__})") from None
        return conn

    def _acquire_idle(self, key: tuple[str, str, int]) -> _Conn | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    @staticmethod
    def _head(method: str, target: _Target, headers: Mapping[str, str], content: bytes | None) -> bytes:
        lines = [f"{method} {target.path} HTTP/1.1", f"host: {target.host_header}"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise UpstreamError("connect", f"header {name!r} has a line break: not forwarded")
            if name.lower() not in ("host", "content-length", "transfer-encoding", "connection"):
                lines.append(f"{name}: {value}")
        if content is not None or method == "POST":
            lines.append(f"content-length: {len(content or b'')}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _open(self, method: str, url: str, content: bytes | None, headers: Mapping[str, str]) -> _Conn:
        """Send the request and wait for the answer's status and headers."""
        target = _target(url)
        head = self._head(method, target, headers, content)
        for attempt in (0, 1):
            conn = self._acquire_idle(target.key) if attempt == 0 else None
            if conn is None:
                conn = await self._connect(target.key)
            assert conn.transport is not None
            conn.transport.write(head + content if content else head)
            try:
                while not conn.headers_done:
                    if conn.error is not None:
                        raise conn.error
                    await conn.wait(self.timeout_s)
            except UpstreamError as exc:
                conn.close()
                if exc.kind == "connect" and conn.used and not conn.got_bytes and attempt == 0:
                    continue  # an idle connection the upstream had closed: once more on a new one
                raise
            return conn
        raise AssertionError("unreachable")

    async def request(
        self, method: str, url: str, *, content: bytes | None = None, headers: Mapping[str, str]
    ) -> Answer:
        conn = await self._open(method, url, content, headers)
        try:
            chunks: list[bytes] = []
            size = 0
            while True:
                if conn.body:
                    data = conn.take()
                    size += len(data)
                    if size > MAX_ANSWER_BYTES:
                        raise UpstreamError("too_large", f"the upstream answer exceeds {MAX_ANSWER_BYTES} bytes")
                    chunks.append(data)
                    continue
                if conn.complete:
                    return Answer(conn.status, conn.headers, b"".join(chunks))
                if conn.error is not None:
                    raise UpstreamError("connect", f"the upstream answer broke off ({conn.error})")
                await conn.wait(self.timeout_s)
        except BaseException:
            conn.close()
            raise
        finally:
            self.release(conn)

    async def stream(
        self, url: str, *, content: bytes | None, headers: Mapping[str, str], method: str = "POST"
    ) -> Stream:
        return Stream(self, await self._open(method, url, content, headers))
