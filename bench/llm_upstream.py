"""A minimal, fast OpenAI-compatible upstream for the gateway benchmark (the stand-in for a paid LLM API).

asyncio protocol, HTTP/1.1 keep-alive, TCP_NODELAY, canned answers: it costs tens of microseconds a
request, so the benchmark's direct-vs-gateway difference is the gateway's own cost. `stream: true`
answers with an SSE stream of `--chunks` content events of 4 characters each.
Run: python bench/llm_upstream.py PORT [--chunks N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket

ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The answer is forty-two, as everyone knows."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30},
    }
).encode()


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    obj = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "bench",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    data = b"data: " + json.dumps(obj).encode() + b"\n\n"
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def stream_body(chunks: int) -> list[bytes]:
    words = "tick tock " * (chunks // 2 + 1)
    parts = [_chunk({"role": "assistant", "content": ""})]
    parts += [_chunk({"content": words[i * 4 : i * 4 + 4]}) for i in range(chunks)]
    parts.append(_chunk({}, "stop"))
    done = b"data: [DONE]\n\n"
    parts.append(f"{len(done):x}\r\n".encode() + done + b"\r\n0\r\n\r\n")
    return parts


class Upstream(asyncio.Protocol):
    chunks = 50

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].lower()
            length = 0
            i = head.find(b"content-length:")
            if i >= 0:
                length = int(head[i + 15 : head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None].strip())
            if len(self.buf) < head_end + 4 + length:
                return
            body = self.buf[head_end + 4 : head_end + 4 + length]
            self.buf = self.buf[head_end + 4 + length :]
            self.respond(head, body)

    def respond(self, head: bytes, body: bytes) -> None:
        if head.startswith(b"get /v1/models"):
            data = b'{"object":"list","data":[{"id":"bench","object":"model","created":0,"owned_by":"bench"}]}'
        elif b'"stream":true' in body.replace(b" ", b""):
            self.t.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            for part in stream_body(self.chunks):
                self.t.write(part)
            return
        else:
            data = ANSWER
        self.t.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(data)).encode()
            + b"\r\n\r\n"
            + data
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--chunks", type=int, default=50)
    args = ap.parse_args()
    Upstream.chunks = args.chunks
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Upstream, "127.0.0.1", args.port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
