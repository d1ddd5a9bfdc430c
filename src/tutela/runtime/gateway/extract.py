"""Where the text is in each API's requests and answers, by channel, with a way to rewrite it.

Covers OpenAI chat completions (with tools and tool results), completions, embeddings and the
Responses API, and Anthropic messages (text, tool_use, tool_result and document blocks). Each
text becomes a `Slot`: its channel, a location such as `messages[2].content[0].text`, the text,
and a setter used when the verdict is redact. Tool names are collected for the allow-lists.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PROMPT_ROLES = frozenset({"system", "developer", "user"})
SYSTEM_ROLES = frozenset({"system", "developer"})
TOOL_ROLES = frozenset({"tool", "function"})


@dataclass(slots=True)
class Slot:
    channel: str
    location: str
    text: str
    set: Callable[[str], None] | None = None


@dataclass(slots=True)
class Extracted:
    slots: list[Slot] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)  # tool names defined (request) or called (answer)
    messages: int = 0
    user: str | None = None
    model: str | None = None

    def add(self, channel: str, location: str, text: Any, container: Any = None, key: Any = None) -> None:
        if not isinstance(text, str) or not text:
            return
        setter = None
        if container is not None:

            def setter(new: str, c: Any = container, k: Any = key) -> None:
                c[k] = new

        self.slots.append(Slot(channel, location, text, setter))

    def by_channel(self) -> dict[str, list[Slot]]:
        out: dict[str, list[Slot]] = {}
        for s in self.slots:
            out.setdefault(s.channel, []).append(s)
        return out


def _json_setter(container: dict[str, Any], key: str) -> Callable[[str], None]:
    def setter(new: str) -> None:
        try:
            container[key] = json.loads(new)
        except ValueError:
            container[key] = {"tutela_redacted": new}

    return setter


def _content(out: Extracted, channel: str, where: str, holder: dict[str, Any], key: str = "content") -> None:
    """A content field: a string or a list of parts with text."""
    content = holder.get(key)
    if isinstance(content, str):
        out.add(channel, where, content, holder, key)
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if isinstance(part, str):
                out.add(channel, f"{where}[{j}]", part, content, j)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                out.add(channel, f"{where}[{j}].text", part["text"], part, "text")


def _tool_defs(out: Extracted, tools: Any, where: str) -> None:
    if not isinstance(tools, list):
        return
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            continue
        fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        name = fn.get("name")
        if isinstance(name, str):
            out.tools.append(name)
        out.add("tool_output", f"{where}[{i}].description", fn.get("description"), fn, "description")
        schema = fn.get("parameters", fn.get("input_schema"))
        if isinstance(schema, dict) and schema:
            out.add("tool_output", f"{where}[{i}].parameters", json.dumps(schema, ensure_ascii=False))


# --- OpenAI ----------------------------------------------------------------------------------


def chat_request(body: dict[str, Any]) -> Extracted:
    out = Extracted(user=_str(body.get("user")), model=_str(body.get("model")))
    messages = body.get("messages")
    if isinstance(messages, list):
        out.messages = len(messages)
        for i, msg in enumerate(messages):
            if not isinstance(msg, dict):
                continue
            role = _str(msg.get("role"))
            if role in PROMPT_ROLES:
                channel = "system" if role in SYSTEM_ROLES else "prompt"
                _content(out, channel, f"messages[{i}].content", msg)
            elif role in TOOL_ROLES:
                _content(out, "tool_output", f"messages[{i}].content", msg)
    _tool_defs(out, body.get("tools"), "tools")
    _tool_defs(out, body.get("functions"), "functions")
    return out


def chat_response(body: dict[str, Any]) -> Extracted:
    out = Extracted(model=_str(body.get("model")))
    for k, choice in enumerate(_list(body.get("choices"))):
        msg = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(msg, dict):
            continue
        _content(out, "output", f"choices[{k}].message.content", msg)
        for t, call in enumerate(_list(msg.get("tool_calls"))):
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                _tool_call(out, fn, f"choices[{k}].message.tool_calls[{t}].function")
        if isinstance(msg.get("function_call"), dict):
            _tool_call(out, msg["function_call"], f"choices[{k}].message.function_call")
    return out


def _tool_call(out: Extracted, fn: dict[str, Any], where: str) -> None:
    if isinstance(fn.get("name"), str):
        out.tools.append(fn["name"])
    out.add("output", f"{where}.arguments", fn.get("arguments"), fn, "arguments")


def _text_or_texts(body: dict[str, Any], key: str, channel: str) -> Extracted:
    """A request whose `key` is a string or a list of strings (legacy completions' prompt, embeddings' input)."""
    out = Extracted(user=_str(body.get("user")), model=_str(body.get("model")))
    value = body.get(key)
    if isinstance(value, str):
        out.add(channel, key, value, body, key)
    elif isinstance(value, list):
        out.messages = len(value)
        for i, p in enumerate(value):
            out.add(channel, f"{key}[{i}]", p, value, i)
    return out


def completion_request(body: dict[str, Any]) -> Extracted:
    return _text_or_texts(body, "prompt", "prompt")


def completion_response(body: dict[str, Any]) -> Extracted:
    out = Extracted(model=_str(body.get("model")))
    for k, choice in enumerate(_list(body.get("choices"))):
        if isinstance(choice, dict):
            out.add("output", f"choices[{k}].text", choice.get("text"), choice, "text")
    return out


def embeddings_request(body: dict[str, Any]) -> Extracted:
    return _text_or_texts(body, "input", "document")


def responses_request(body: dict[str, Any]) -> Extracted:
    out = Extracted(user=_str(body.get("user")), model=_str(body.get("model")))
    out.add("system", "instructions", body.get("instructions"), body, "instructions")
    data = body.get("input")
    if isinstance(data, str):
        out.add("prompt", "input", data, body, "input")
    elif isinstance(data, list):
        out.messages = len(data)
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                continue
            kind, role = item.get("type"), _str(item.get("role"))
            if kind == "function_call_output":
                out.add("tool_output", f"input[{i}].output", item.get("output"), item, "output")
            elif role in PROMPT_ROLES:
                channel = "system" if role in SYSTEM_ROLES else "prompt"
                _content(out, channel, f"input[{i}].content", item)
    _tool_defs(out, body.get("tools"), "tools")
    return out


def responses_response(body: dict[str, Any]) -> Extracted:
    out = Extracted(model=_str(body.get("model")))
    for i, item in enumerate(_list(body.get("output"))):
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            _content(out, "output", f"output[{i}].content", item)
        elif item.get("type") == "function_call":
            _tool_call(out, item, f"output[{i}]")
    return out


# --- Anthropic -------------------------------------------------------------------------------


def _anthropic_blocks(out: Extracted, role: str, where: str, msg: dict[str, Any]) -> None:
    content = msg.get("content")
    channel = "prompt" if role == "user" else None
    if isinstance(content, str):
        if channel:
            out.add(channel, where, content, msg, "content")
        return
    for j, block in enumerate(_list(content)):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        at = f"{where}[{j}]"
        if kind == "text" and channel:
            out.add(channel, f"{at}.text", block.get("text"), block, "text")
        elif kind == "tool_result":
            _content(out, "tool_output", f"{at}.content", block)
        elif kind == "document":
            source = block.get("source")
            if isinstance(source, dict) and source.get("type") == "text":
                out.add("document", f"{at}.source.data", source.get("data"), source, "data")
            elif isinstance(source, dict) and source.get("type") == "content":
                _content(out, "document", f"{at}.source.content", source)


def messages_request(body: dict[str, Any]) -> Extracted:
    metadata = body.get("metadata")
    user = metadata.get("user_id") if isinstance(metadata, dict) else None
    out = Extracted(user=_str(user), model=_str(body.get("model")))
    _content(out, "system", "system", body, "system")
    messages = body.get("messages")
    if isinstance(messages, list):
        out.messages = len(messages)
        for i, msg in enumerate(messages):
            if isinstance(msg, dict):
                _anthropic_blocks(out, str(msg.get("role")), f"messages[{i}].content", msg)
    _tool_defs(out, body.get("tools"), "tools")
    return out


def messages_response(body: dict[str, Any]) -> Extracted:
    out = Extracted(model=_str(body.get("model")))
    for j, block in enumerate(_list(body.get("content"))):
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            out.add("output", f"content[{j}].text", block.get("text"), block, "text")
        elif block.get("type") == "tool_use":
            if isinstance(block.get("name"), str):
                out.tools.append(block["name"])
            args = json.dumps(block.get("input"), ensure_ascii=False)
            out.slots.append(Slot("output", f"content[{j}].input", args, _json_setter(block, "input")))
    return out


def _str(value: Any) -> str | None:
    return value[:256] if isinstance(value, str) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
