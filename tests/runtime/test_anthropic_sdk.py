"""The gateway's Anthropic-compatible /v1/messages driven by the official anthropic SDK."""

from __future__ import annotations

import anthropic
import pytest

from tests.runtime.conftest import RunningGateway
from tests.runtime.fake_upstream import DEFAULT_REPLY, FakeUpstream


def client(gw: RunningGateway, app: str | None = None) -> anthropic.Anthropic:
    headers = {"x-tutela-app": app} if app else None
    return anthropic.Anthropic(base_url=gw.url, api_key="ak-client", default_headers=headers, max_retries=0)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_messages_plain(gw: RunningGateway, upstream: FakeUpstream) -> None:
    r = client(gw).messages.create(model="claude", max_tokens=50, messages=user("hello"))  # type: ignore[arg-type]
    assert r.content[0].text == DEFAULT_REPLY  # type: ignore[union-attr]
    path, headers, _ = upstream.last
    assert path == "/v1/messages"
    assert "ak-client" in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
    assert headers["anthropic-version"]


def test_messages_blocked_prompt_anthropic_error(gw: RunningGateway) -> None:
    with pytest.raises(anthropic.BadRequestError) as err:
        client(gw).messages.create(model="c", max_tokens=5, system="FORBIDDEN system", messages=user("hi"))  # type: ignore[arg-type]
    body = err.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"


def test_messages_answer_cut(gw: RunningGateway) -> None:
    r = client(gw).messages.create(model="c", max_tokens=5, messages=user("rev: " + "SECRET-ABCD1234 here"[::-1]))  # type: ignore[arg-type]
    assert r.stop_reason == "refusal"
    assert r.content == []


def test_messages_stream_clean_and_cut(gw: RunningGateway) -> None:
    c = client(gw)
    with c.messages.stream(model="c", max_tokens=50, messages=user("say: streaming from claude is fine")) as s:  # type: ignore[arg-type]
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "streaming from claude is fine"
    assert final.stop_reason == "end_turn"
    leak = (
        "Some harmless words first, quite a few of them so that some text is released, "
        "then SECRET-ZXCV0987 and the rest."
    )
    with c.messages.stream(model="c", max_tokens=50, messages=user("rev: " + leak[::-1])) as s:  # type: ignore[arg-type]
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert "SECRET" not in text and text.startswith("Some harmless")
    assert final.stop_reason == "refusal"


def test_messages_tools(gw: RunningGateway) -> None:
    c = client(gw, app="agent")
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {}}}]
    r = c.messages.create(model="c", max_tokens=5, tools=tools, messages=user('tool: get_weather {"city": "Rome"}'))  # type: ignore[arg-type]
    assert r.content[0].type == "tool_use" and r.content[0].input == {"city": "Rome"}  # type: ignore[union-attr]
    r = c.messages.create(model="c", max_tokens=5, messages=user("tool: delete_all {}"))  # type: ignore[arg-type]
    assert r.stop_reason == "refusal"
    with c.messages.stream(model="c", max_tokens=5, messages=user('tool: search_x {"q": 1}')) as s:  # type: ignore[arg-type]
        final = s.get_final_message()
    assert final.content[0].type == "tool_use" and final.content[0].input == {"q": 1}  # type: ignore[union-attr]
    with c.messages.stream(model="c", max_tokens=5, messages=user("tool: delete_all {}")) as s:  # type: ignore[arg-type]
        final = s.get_final_message()
    assert final.stop_reason == "refusal" and final.content == []
    poisoned = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "FORBIDDEN do evil"}]},
    ]
    with pytest.raises(anthropic.BadRequestError):
        c.messages.create(model="c", max_tokens=5, messages=poisoned)  # type: ignore[arg-type]


def test_messages_document_block(gw: RunningGateway) -> None:
    doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "a FORBIDDEN doc"}}
    msgs = [{"role": "user", "content": [doc, {"type": "text", "text": "summarise"}]}]
    with pytest.raises(anthropic.BadRequestError, match=r"test\.marker"):
        client(gw).messages.create(model="c", max_tokens=5, messages=msgs)  # type: ignore[arg-type]
