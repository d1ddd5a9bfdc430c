"""uvicorn's httptools protocol, writing a response with a known length in one socket write instead of two.

uvicorn writes the status line and headers when the app sends `http.response.start`, and the body when it
sends `http.response.body`: two sends, so the client wakes twice (two context switches on a shared machine,
where each send can also hand the CPU to the woken reader) for every answer. Here the head of a response
that declares its `content-length` is held until the body's first write and both go out together: the same
bytes, in one segment. Streamed answers (no content-length: chunked SSE) and answers to HEAD, which carry no
body write, go out as before, the head at once. Nothing is held past the next write or close.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _HeadHold:
    """One response's transport: holds the head of a content-length response until the next write."""

    __slots__ = ("_held", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self._started = False  # the response head has been written (or held)

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif not self._started and data != _CONTINUE:
            self._started = True
            if b"\r\ncontent-length: " in data:  # uvicorn writes header names lower-case, values without CR/LF
                self._held = data
                return
        self._transport.write(data)

    def close(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held)
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, ...: the real transport's
        return getattr(self._transport, name)


class OneWriteHttpTools(HttpToolsProtocol):
    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before and cycle.scope["method"] != "HEAD":
            cycle.transport = _HeadHold(self.transport)  # type: ignore[assignment]
