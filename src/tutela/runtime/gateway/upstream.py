"""The HTTP client to the upstream LLM API: keep-alive pool, bounded reads, errors as UpstreamError.

Backed by aiohttp. httpx was the first choice, but here (httpx 0.28, httpcore 1.0, anyio 4.16) it served
~100-200 requests/s against a local upstream that answers ~12,000/s, where aiohttp did 1,300-1,800/s
(measured side by side, bench notes in docs/benchmarks.md); the client was the gateway's bottleneck.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

MAX_ANSWER_BYTES = 64 << 20


class UpstreamError(Exception):
    """The upstream could not be reached, timed out or sent something unusable."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "timeout", "connect", "too_large"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/json")


class Stream:
    """An open streamed answer; iterate `chunks()`, always `close()`."""

    def __init__(self, response: Any) -> None:
        self._r = response
        self.status: int = response.status
        self.headers: Mapping[str, str] = {k.lower(): v for k, v in response.headers.items()}

    async def chunks(self) -> AsyncIterator[bytes]:

        try:
            async for chunk in self._r.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamError("stream", f"upstream stream broke ({type(exc).__name__})") from None

    async def read(self, limit: int = 1 << 20) -> bytes:
        data = b""
        async for chunk in self.chunks():
            data += chunk
            if len(data) > limit:
                break
        return data[:limit]

    def close(self) -> None:
        self._r.close()


class UpstreamClient:
    def __init__(self, *, timeout_s: float, connect_timeout_s: float = 10.0, max_connections: int = 512) -> None:
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_connections = max_connections
        self._session: Any = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.max_connections, keepalive_timeout=30, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout_s, sock_read=self.timeout_s)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            trust_env=False,
            auto_decompress=True,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _open(self, method: str, url: str, content: bytes | None, headers: Mapping[str, str]) -> Any:

        try:
            return await self._session.request(method, url, data=content, headers=dict(headers), allow_redirects=False)
        except TimeoutError:
            raise UpstreamError("timeout", "the upstream did not answer in time") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamError("connect", f"cannot reach the upstream ({type(exc).__name__})") from None

    async def request(
        self, method: str, url: str, *, content: bytes | None = None, headers: Mapping[str, str]
    ) -> Answer:

        r = await self._open(method, url, content, headers)
        try:
            chunks, size = [], 0
            async for chunk in r.content.iter_any():
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise UpstreamError("too_large", f"the upstream answer exceeds {MAX_ANSWER_BYTES} bytes")
                chunks.append(chunk)
            return Answer(r.status, {k.lower(): v for k, v in r.headers.items()}, b"".join(chunks))
        except TimeoutError:
            raise UpstreamError("timeout", "the upstream did not finish its answer in time") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError("connect", f"the upstream answer broke off ({type(exc).__name__})") from None
        finally:
            r.release()

    async def stream(self, url: str, *, content: bytes, headers: Mapping[str, str]) -> Stream:
        return Stream(await self._open("POST", url, content, headers))
