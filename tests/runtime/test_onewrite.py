"""The gateway's uvicorn protocol: an answer with a content-length leaves in one write; nothing else changes."""

from __future__ import annotations

import json
import socket
from typing import Any

from tests.runtime.conftest import RunningGateway
from tutela.runtime.gateway.onewrite import _HeadHold

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n"


class Recorder:
    """Stands in for the socket transport: what was written, write by write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def hold() -> tuple[_HeadHold, Recorder]:
    rec = Recorder()
    return _HeadHold(rec), rec  # type: ignore[arg-type]


def test_head_and_body_leave_in_one_write() -> None:
    t, rec = hold()
    t.write(HEAD)
    assert rec.writes == []
    t.write(b"{}")
    assert rec.writes == [HEAD + b"{}"]
    t.write(b"more")  # nothing held any longer
    assert rec.writes[-1] == b"more"


def test_continue_and_chunked_heads_are_not_held() -> None:
    t, rec = hold()
    t.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert rec.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    t.write(HEAD)  # the answer after the 100 is still held
    assert len(rec.writes) == 1
    t.write(b"{}")
    assert rec.writes[1] == HEAD + b"{}"

    t, rec = hold()
    chunked = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    t.write(chunked)
    assert rec.writes == [chunked]  # a stream's head goes at once: the first event may be a while
    t.write(b"5\r\nhello\r\n")
    assert rec.writes == [chunked, b"5\r\nhello\r\n"]


def test_close_sends_a_held_head_first_and_the_rest_is_the_transport() -> None:
    t, rec = hold()
    t.write(HEAD)
    t.close()
    assert rec.writes == [HEAD] and rec.closed
    assert t.is_closing()


def _exchange(gw: RunningGateway, request: bytes, until: int) -> bytes:
    host, port = gw.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        data = b""
        while data.count(b"HTTP/1.1 ") < until or not data.endswith((b"}", b"\r\n\r\n")):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_head_requests_and_keep_alive_through_the_real_server(gw: RunningGateway) -> None:
    got = _exchange(gw, b"HEAD /health HTTP/1.1\r\nhost: x\r\n\r\n", 1)  # no body write: the head is not held
    assert got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"\r\n\r\n")
    two = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n" * 2
    got = _exchange(gw, two, 2)
    answers = got.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert len(answers) == 2
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.startswith(b"content-length")))
        assert len(body) == length and json.loads(body)["status"] in ("ok", "degraded")


def test_expect_100_continue_through_the_real_server(gw: RunningGateway) -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hello"}]}).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"expect: 100-continue\r\ncontent-length: %d\r\n\r\n" % len(body)
    )
    host, port = gw.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(body)
        data = first.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            data += s.recv(65536)
    answer: dict[str, Any] = json.loads(data.partition(b"\r\n\r\n")[2])
    assert data.startswith(b"HTTP/1.1 200 ") and answer["choices"][0]["message"]["content"]
