"""The MCP HTTP proxy's SSE handling: every field kept (ids for Last-Event-ID resumption), events bounded."""

from __future__ import annotations

import pytest

from tutela.runtime.gateway.mcp_http import SseEvents, sse_event
from tutela.runtime.gateway.streaming import StreamError


def test_events_keep_ids_and_retry_and_survive_any_chunking() -> None:
    wire = (
        b"id: 7_0\r\nretry: 3000\r\ndata:\r\n\r\n"
        b': a comment\nevent: message\nid: 7_1\ndata: {"jsonrpc":"2.0",\ndata: "id":1,"result":{}}\n\n'
    )
    whole = SseEvents().feed(wire)
    for size in (1, 3, 17):
        parser, got = SseEvents(), []
        for i in range(0, len(wire), size):
            got += parser.feed(wire[i : i + size])
        assert got == whole
    assert whole[0] == [("id", "7_0"), ("retry", "3000"), ("data", "")]
    assert ("id", "7_1") in whole[1] and ("", "a comment") in whole[1]
    data = "\n".join(v for k, v in whole[1] if k == "data")
    assert data == '{"jsonrpc":"2.0",\n"id":1,"result":{}}'
    again = SseEvents().feed(sse_event(whole[1]))
    assert again == [whole[1]]


def test_an_event_over_the_bound_is_refused() -> None:
    parser = SseEvents(max_event=1024)
    with pytest.raises(StreamError):
        parser.feed(b"data: " + b"x" * 2048)
