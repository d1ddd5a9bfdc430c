"""The gateway's own HTTP/1.1 upstream client against raw asyncio servers: keep-alive reuse, a stale idle
connection retried once, chunked and close-delimited bodies, streaming, timeouts, malformed answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tutela.runtime.gateway.upstream import UpstreamClient, UpstreamError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def run(handler: Handler, client_fn: Callable[[UpstreamClient, str], Awaitable[object]], **kw: float) -> object:
    async def main() -> object:
        count = 0

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal count
            count += 1
            try:
                await handler(reader, writer, count)
            finally:
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = UpstreamClient(timeout_s=kw.get("timeout", 5.0))
        await client.start()
        try:
            return await client_fn(client, f"http://127.0.0.1:{port}/v1/x")
        finally:
            await client.close()
            server.close()

    return asyncio.run(main())


def test_keep_alive_reuse_and_a_stale_connection_is_retried_once() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int) -> None:
        served = 0
        while True:
            try:
                req = await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            served += 1
            body = f"conn {conn} req {served} {len(req)}".encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            if conn == 1 and served == 2:
                return  # closes the keep-alive connection without saying so

    async def client_fn(client: UpstreamClient, url: str) -> list[bytes]:
        out = []
        for _ in range(4):
            a = await client.request("POST", url, content=b"{}", headers={"content-type": "application/json"})
            assert a.status == 200
            out.append(a.body.rsplit(b" ", 1)[0])
            await asyncio.sleep(0.05)  # let the server's close arrive, or not
        return out

    assert run(handler, client_fn) == [b"conn 1 req 1", b"conn 1 req 2", b"conn 2 req 1", b"conn 2 req 2"]


def test_chunked_stream_and_close_delimited_body() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int) -> None:
        req = await read_request(reader)
        if b"stream" in req:
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/event-stream\r\n\r\n")
            for i in range(3):
                data = f"data: {i}\n\n".encode()
                writer.write(b"%x\r\n%s\r\n" % (len(data), data))
                await writer.drain()
                await asyncio.sleep(0.02)
            writer.write(b"0\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\n\r\nno length, ends at close")
        await writer.drain()

    async def client_fn(client: UpstreamClient, url: str) -> tuple[list[bytes], int, bytes]:
        s = await client.stream(url, content=b'{"stream":true}', headers={})
        chunks = [c async for c in s.chunks()]
        s.close()
        a = await client.request("POST", url, content=b"{}", headers={})
        return chunks, a.status, a.body

    chunks, status, body = run(handler, client_fn)  # type: ignore[misc]
    assert b"".join(chunks) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n" and len(chunks) >= 2  # as they came
    assert (status, body) == (502, b"no length, ends at close")


def test_timeouts_refusals_and_garbage_become_upstream_errors() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int) -> None:
        await read_request(reader)
        await asyncio.sleep(2)

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int) -> None:
        await read_request(reader)
        writer.write(b"SPDY/9 nonsense\r\n\r\n")
        await writer.drain()

    async def call(client: UpstreamClient, url: str) -> object:
        return await client.request("POST", url, content=b"{}", headers={})

    with pytest.raises(UpstreamError) as info:
        run(slow, call, timeout=0.3)
    assert info.value.kind == "timeout"
    with pytest.raises(UpstreamError) as info:
        run(garbage, call)
    assert info.value.kind == "connect" and "malformed" in str(info.value)

    async def refused(client: UpstreamClient, url: str) -> object:
        return await client.request("GET", "http://127.0.0.1:9/v1/models", headers={})

    with pytest.raises(UpstreamError) as info:
        run(slow, refused)
    assert info.value.kind == "connect"
    with pytest.raises(UpstreamError):
        run(slow, lambda c, u: c.request("POST", u, content=b"", headers={"x-a": "b\r\nx-injected: 1"}))
