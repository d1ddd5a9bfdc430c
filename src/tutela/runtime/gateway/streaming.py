"""Judging streamed answers as they flow, with a bounded hold-back window.

The last `holdback_chars` characters of each streamed text are never released before they have
been judged together with what follows: a secret, a URL or an injected instruction no longer than
the window is judged whole before any of it reaches the client. Each judgement sees the pending
text plus `lookback_chars` of already released text. On block, the upstream is closed and the
stream ends cleanly (`finish_reason: "content_filter"` for OpenAI, `stop_reason: "refusal"` for
Anthropic) with the reasons; on redact, pending spans are rewritten before release. Tool-call
deltas are held until the call is complete, then judged and checked against the allow-list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from tutela.core.findings import Action, Finding, Verdict
from tutela.runtime.gateway.engine import Guard, Item, Judgement, redact_items
from tutela.runtime.gateway.profiles import Profile

MAX_EVENT_BYTES = 4 << 20


class StreamError(Exception):
    """The upstream stream is malformed or exceeds a limit."""


class SseParser:
    """Incremental server-sent-events parser: bytes in, (event, data) out; bounded."""

    def __init__(self, max_event: int = MAX_EVENT_BYTES) -> None:
        self.buf = b""
        self.max_event = max_event

    def feed(self, chunk: bytes) -> list[tuple[str | None, str]]:
        self.buf = (self.buf + chunk).replace(b"\r\n", b"\n")
        out: list[tuple[str | None, str]] = []
        while True:
            end = self.buf.find(b"\n\n")
            if end < 0:
                if len(self.buf) > self.max_event:
                    raise StreamError(f"upstream SSE event larger than {self.max_event} bytes")
                return out
            raw, self.buf = self.buf[:end], self.buf[end + 2 :]
            event: str | None = None
            data: list[str] = []
            for line in raw.decode("utf-8", "replace").split("\n"):
                if line.startswith(":") or not line:
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    event = value
                elif name == "data":
                    data.append(value)
            if data or event:
                out.append((event, "\n".join(data)))


@dataclass
class StreamSummary:
    """What the audit records about a stream once it ends."""

    action: Action = Action.ALLOW
    findings: dict[str, Finding] = field(default_factory=dict)  # by fingerprint
    failures: list[Any] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    output_chars: int = 0
    output_text: list[str] = field(default_factory=list)  # released text (for hashes, raw only if asked)
    usage: dict[str, int] = field(default_factory=dict)
    cut: bool = False

    def merge(self, verdict: Verdict) -> None:
        for f in verdict.findings:
            self.findings.setdefault(f.fingerprint, f)
        self.failures.extend(verdict.failures)
        for r in verdict.reasons:
            if r not in self.reasons and len(self.reasons) < 50:
                self.reasons.append(r)
        self.action = Action.strongest([self.action, verdict.action])

    def mark_cut(self, why: str | None) -> None:
        self.cut = True
        self.action = Action.BLOCK
        if why:
            self.reasons.append(why)

    def verdict(self) -> Verdict:
        return Verdict(
            action=self.action,
            findings=tuple(self.findings.values()),
            failures=tuple(self.failures),
            reasons=tuple(self.reasons),
        )


class HoldBack:
    """One streamed text (a choice, a content block): release only judged text, keep a window."""

    def __init__(self, guard: Guard, profile: Profile, summary: StreamSummary) -> None:
        self.guard = guard
        self.profile = profile
        self.summary = summary
        cfg = profile.config.stream
        self.hold = cfg.holdback_chars
        self.step = max(1, self.hold // 4)
        self.lookback = cfg.lookback_chars
        self.max_chars = cfg.max_output_chars
        self.tail = ""  # released text the detectors see again
        self.pending = ""
        self.enabled = profile.plan("output") is not None

    async def push(self, text: str, *, final: bool = False) -> tuple[str, Judgement | None]:
        """Text to release now, and the judgement when it blocks (then release nothing more)."""
        self.pending += text
        self.summary.output_chars += len(text)
        if self.summary.output_chars > self.max_chars:
            verdict = Verdict(action=Action.BLOCK, reasons=(f"streamed answer longer than {self.max_chars} chars",))
            return "", Judgement("output", verdict)
        if not self.enabled:
            out, self.pending = self.pending, ""
            return out, None
        if not final and len(self.pending) < self.hold + self.step:
            return "", None
        window = self.tail + self.pending
        judgement = await self.guard.judge(self.profile, "output", [Item("stream", window)])
        self.summary.merge(judgement.verdict)
        if judgement.action is Action.BLOCK:
            return "", judgement
        if judgement.action is Action.REDACT:
            offset = len(self.tail)
            policy = self.profile.plan("output").policy  # type: ignore[union-attr]
            spans = [
                f
                for f in judgement.verdict.findings
                if f.span is not None and f.span.end > offset and policy.action_for(f)[0] is Action.REDACT
            ]
            shifted = [_shift(f, -offset) for f in spans]
            self.pending = redact_items([Item("pending", self.pending)], shifted, [0])[0]
        cut = len(self.pending) if final else max(0, len(self.pending) - self.hold)
        out, self.pending = self.pending[:cut], self.pending[cut:]
        self.tail = (self.tail + out)[-self.lookback :] if self.lookback else ""
        return out, None


def _shift(f: Finding, delta: int) -> Finding:
    from dataclasses import replace

    from tutela.core.findings import Span

    assert f.span is not None
    return replace(f, span=Span(max(0, f.span.start + delta), max(0, f.span.end + delta)))


def event_object(data: str) -> dict[str, Any]:
    """An SSE event's data as a JSON object, or StreamError."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise StreamError("upstream sent an SSE event that is not JSON") from None
    if not isinstance(obj, dict):
        raise StreamError("upstream sent an SSE event that is not a JSON object")
    return obj


def sse(obj: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(obj) + b"\n\n"


def _reason(j: Judgement | None, why: str | None = None) -> dict[str, Any]:
    reasons = list(j.verdict.reasons[:10]) if j is not None else []
    if why:
        reasons.append(why)
    return {"action": "block", "reasons": reasons}


ToolCheck = Callable[[list[str], str], "Any"]  # async (names, arguments text) -> Judgement | None


@dataclass
class _ToolCall:
    id: str | None = None
    name: str = ""
    arguments: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class StreamFilter:
    """What the three stream filters share: the guard, the profile, the tool check and the summary; `run()`
    turns upstream SSE events into the bytes the client gets, `fail(why)` ends a stream cleanly."""

    def __init__(self, guard: Guard, profile: Profile, check_tools: ToolCheck) -> None:
        self.guard = guard
        self.profile = profile
        self.check_tools = check_tools
        self.summary = StreamSummary()

    def run(self, events: AsyncIterator[tuple[str | None, str]]) -> AsyncIterator[bytes]:
        raise NotImplementedError

    def _cut(self, j: Judgement | None, why: str | None = None) -> bytes:
        raise NotImplementedError

    def fail(self, why: str) -> bytes:
        return self._cut(None, why)


class OpenAIStream(StreamFilter):
    """Filters an OpenAI chat-completions or completions SSE stream."""

    def __init__(self, guard: Guard, profile: Profile, check_tools: ToolCheck, *, chat: bool = True) -> None:
        super().__init__(guard, profile, check_tools)
        self.chat = chat
        self.texts: dict[int, HoldBack] = {}
        self.tools: dict[int, dict[int, _ToolCall]] = {}
        self.last: dict[str, Any] = {}

    def _hb(self, idx: int) -> HoldBack:
        if idx not in self.texts:
            self.texts[idx] = HoldBack(self.guard, self.profile, self.summary)
        return self.texts[idx]

    def _chunk(self, idx: int, delta: dict[str, Any] | None, text: str | None, finish: str | None = None) -> bytes:
        choice: dict[str, Any] = {"index": idx}
        if self.chat:
            choice["delta"] = delta if delta is not None else {}
        else:
            choice["text"] = text or ""
        choice["finish_reason"] = finish
        base = {k: self.last[k] for k in ("id", "object", "created", "model", "system_fingerprint") if k in self.last}
        return sse({**base, "choices": [choice]})

    def _cut_choice(self, idx: int, j: Judgement | None, why: str | None = None) -> bytes:
        self.summary.mark_cut(why)
        base = {k: self.last[k] for k in ("id", "object", "created", "model") if k in self.last}
        choice: dict[str, Any] = {"index": idx, "finish_reason": "content_filter"}
        if self.chat:
            choice["delta"] = {}
        else:
            choice["text"] = ""
        return sse({**base, "choices": [choice], "tutela": _reason(j, why)}) + b"data: [DONE]\n\n"

    def _cut(self, j: Judgement | None, why: str | None = None) -> bytes:
        return self._cut_choice(0, j, why)

    async def _finish_choice(self, idx: int) -> tuple[list[bytes], bool]:
        """Release the rest of a choice and its held tool calls. Returns (chunks, cut)."""
        out: list[bytes] = []
        text, j = await self._hb(idx).push("", final=True)
        if j is not None:
            return [self._cut_choice(idx, j)], True
        if text:
            self.summary.output_text.append(text)
            out.append(self._chunk(idx, {"content": text}, text))
        calls = self.tools.pop(idx, {})
        if calls:
            names = [c.name for c in calls.values()]
            judgement = await self.check_tools(names, "\n".join(c.arguments for c in calls.values()))
            if judgement is not None and judgement.action is Action.BLOCK:
                self.summary.merge(judgement.verdict)
                return [*out, self._cut_choice(idx, judgement)], True
            merged = [
                {"index": t, **({"id": c.id} if c.id else {}), "type": "function",
                 "function": {"name": c.name, "arguments": c.arguments}}
                for t, c in sorted(calls.items())
            ]  # fmt: skip
            out.append(self._chunk(idx, {"tool_calls": merged}, None))
        return out, False

    async def run(self, events: AsyncIterator[tuple[str | None, str]]) -> AsyncIterator[bytes]:
        async for _event, data in events:
            if data.strip() == "[DONE]":
                async for c in self._finish_all():
                    yield c
                return
            obj = event_object(data)
            self.last = obj
            if isinstance(obj.get("usage"), dict):
                self.summary.usage = {k: v for k, v in obj["usage"].items() if isinstance(v, int)}
            choices = obj.get("choices") if isinstance(obj.get("choices"), list) else []
            if not choices:
                yield sse(obj)
                continue
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                idx = choice.get("index", 0) if isinstance(choice.get("index"), int) else 0
                delta = choice.get("delta") if self.chat else None
                delta = delta if isinstance(delta, dict) else {}
                content = delta.get("content") if self.chat else choice.get("text")
                hb = self._hb(idx)
                for tc in delta.get("tool_calls") or []:
                    if not isinstance(tc, dict):
                        continue
                    call = self.tools.setdefault(idx, {}).setdefault(int(tc.get("index", 0) or 0), _ToolCall())
                    call.id = tc.get("id") or call.id
                    fn = tc.get("function") or {}
                    call.name += fn.get("name") or ""
                    call.arguments += fn.get("arguments") or ""
                    if len(call.arguments) > hb.max_chars:
                        yield self._cut_choice(idx, None, "tool-call arguments over the size limit")
                        return
                rest = {k: v for k, v in delta.items() if k not in ("content", "tool_calls")}
                if isinstance(content, str) and content:
                    text, j = await hb.push(content)
                    if j is not None:
                        yield self._cut_choice(idx, j)
                        return
                    if text:
                        self.summary.output_text.append(text)
                    if text or rest:
                        yield self._chunk(idx, {**rest, "content": text}, text)
                elif rest and not choice.get("finish_reason"):
                    yield self._chunk(idx, rest, "")  # role chunk: forwarded at once (first byte)
                finish = choice.get("finish_reason")
                if finish:
                    chunks, cut = await self._finish_choice(idx)
                    for c in chunks:
                        yield c
                    if cut:
                        return
                    self.texts.pop(idx, None)
                    yield self._chunk(idx, {}, "", finish)
        async for c in self._finish_all():  # upstream ended without [DONE]: release what was judged, end cleanly
            yield c

    async def _finish_all(self) -> AsyncIterator[bytes]:
        """Release every open choice, then `[DONE]`; stop after a cut (which ends the stream itself)."""
        for idx in list(self.texts):
            chunks, cut = await self._finish_choice(idx)
            for c in chunks:
                yield c
            if cut:
                return
        yield b"data: [DONE]\n\n"


class AnthropicStream(StreamFilter):
    """Filters an Anthropic messages SSE stream (text blocks held back, tool_use blocks held whole)."""

    def __init__(self, guard: Guard, profile: Profile, check_tools: ToolCheck) -> None:
        super().__init__(guard, profile, check_tools)
        self.blocks: dict[int, HoldBack] = {}
        self.tool_blocks: dict[int, dict[str, Any]] = {}
        self.open_blocks: set[int] = set()

    def _cut(self, j: Judgement | None, why: str | None = None) -> bytes:
        self.summary.mark_cut(why)
        out = b"".join(sse({"type": "content_block_stop", "index": i}, "content_block_stop") for i in self.open_blocks)
        out += sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "refusal", "stop_sequence": None},
                "usage": {"output_tokens": self.summary.usage.get("output_tokens", 0)},
                "tutela": _reason(j, why),
            },
            "message_delta",
        )
        return out + sse({"type": "message_stop"}, "message_stop")

    async def run(self, events: AsyncIterator[tuple[str | None, str]]) -> AsyncIterator[bytes]:
        async for event, data in events:
            obj = event_object(data)
            kind = obj.get("type") or event
            idx = obj.get("index") if isinstance(obj.get("index"), int) else 0
            if kind == "message_start":
                msg = obj.get("message") if isinstance(obj.get("message"), dict) else {}
                if isinstance(msg.get("usage"), dict):
                    self.summary.usage.update({k: v for k, v in msg["usage"].items() if isinstance(v, int)})
            elif kind == "content_block_start":
                block = obj.get("content_block") if isinstance(obj.get("content_block"), dict) else {}
                if block.get("type") == "tool_use":
                    self.tool_blocks[idx] = {"start": obj, "json": ""}
                    continue
                self.blocks[idx] = HoldBack(self.guard, self.profile, self.summary)
                self.open_blocks.add(idx)
            elif kind == "content_block_delta":
                delta = obj.get("delta") if isinstance(obj.get("delta"), dict) else {}
                if idx in self.tool_blocks:
                    self.tool_blocks[idx]["json"] += delta.get("partial_json") or ""
                    if len(self.tool_blocks[idx]["json"]) > self.profile.config.stream.max_output_chars:
                        yield self._cut(None, "tool input over the size limit")
                        return
                    continue
                if delta.get("type") == "text_delta" and idx in self.blocks:
                    text, j = await self.blocks[idx].push(str(delta.get("text") or ""))
                    if j is not None:
                        yield self._cut(j)
                        return
                    if text:
                        self.summary.output_text.append(text)
                        yield sse({**obj, "delta": {**delta, "text": text}}, "content_block_delta")
                    continue
            elif kind == "content_block_stop":
                if idx in self.tool_blocks:
                    held = self.tool_blocks.pop(idx)
                    name = str(held["start"].get("content_block", {}).get("name", ""))
                    j = await self.check_tools([name], held["json"])
                    if j is not None and j.action is Action.BLOCK:
                        self.summary.merge(j.verdict)
                        yield self._cut(j)
                        return
                    yield sse(held["start"], "content_block_start")
                    part = {"type": "input_json_delta", "partial_json": held["json"]}
                    yield sse({"type": "content_block_delta", "index": idx, "delta": part}, "content_block_delta")
                    yield sse(obj, "content_block_stop")
                    continue
                if idx in self.blocks:
                    text, j = await self.blocks.pop(idx).push("", final=True)
                    if j is not None:
                        yield self._cut(j)
                        return
                    if text:
                        self.summary.output_text.append(text)
                        delta = {"type": "text_delta", "text": text}
                        yield sse({"type": "content_block_delta", "index": idx, "delta": delta}, "content_block_delta")
                    self.open_blocks.discard(idx)
            elif kind == "message_delta" and isinstance(obj.get("usage"), dict):
                self.summary.usage.update({k: v for k, v in obj["usage"].items() if isinstance(v, int)})
            yield sse(obj, event or str(kind))
            if kind == "message_stop":
                return


class ResponsesStream(StreamFilter):
    """Responses API streams are judged whole: events are held until the final `response.*` event, judged
    from its `response` object (or the text deltas), then replayed; a block replaces them with
    `response.created` + `response.incomplete` (reason content_filter)."""

    FINAL = ("response.completed", "response.incomplete", "response.failed")

    def __init__(self, guard: Guard, profile: Profile, check_tools: ToolCheck) -> None:
        super().__init__(guard, profile, check_tools)
        self.response: dict[str, Any] = {}
        self.created: dict[str, Any] | None = None

    def _cut(self, j: Judgement | None, why: str | None = None) -> bytes:
        self.summary.mark_cut(why)
        out = sse(self.created, "response.created") if self.created else b""
        resp = {
            **self.response,
            "status": "incomplete",
            "output": [],
            "incomplete_details": {"reason": "content_filter"},
        }
        event = {"type": "response.incomplete", "response": resp, "tutela": _reason(j, why)}
        return out + sse(event, "response.incomplete")

    async def _judge(self, final: dict[str, Any] | None, deltas: list[str]) -> Judgement | None:
        from tutela.runtime.gateway import extract

        if final is not None:
            ex = extract.responses_response(final)
            texts = [s.text for s in ex.slots if s.channel == "output"]
            tools = ex.tools
        else:
            texts, tools = ["".join(deltas)], []
        if tools:
            j = await self.check_tools(tools, "")
            if j is not None and j.action is Action.BLOCK:
                return j
        if self.profile.plan("output") is None or not any(texts):
            return None
        j = await self.guard.judge(self.profile, "output", [Item(f"output[{i}]", t) for i, t in enumerate(texts)])
        self.summary.merge(j.verdict)
        self.summary.output_text.extend(texts)
        return j if j.action in (Action.BLOCK, Action.REDACT) else None

    async def run(self, events: AsyncIterator[tuple[str | None, str]]) -> AsyncIterator[bytes]:
        held: list[tuple[str | None, Any]] = []
        deltas: list[str] = []
        size = 0
        final: dict[str, Any] | None = None
        async for event, data in events:
            obj = event_object(data)
            size += len(data)
            if size > self.profile.config.stream.max_output_chars:
                yield self._cut(None, "streamed answer over the size limit")
                return
            kind = obj.get("type") or event
            held.append((event or kind, obj))
            if kind == "response.created" and isinstance(obj.get("response"), dict):
                self.created, self.response = obj, obj["response"]
            elif kind == "response.output_text.delta" and isinstance(obj.get("delta"), str):
                deltas.append(obj["delta"])
            elif kind in self.FINAL:
                final = obj.get("response") if isinstance(obj.get("response"), dict) else None
                if final:
                    self.response = final
                if isinstance((final or {}).get("usage"), dict):
                    self.summary.usage = {k: v for k, v in final["usage"].items() if isinstance(v, int)}  # type: ignore[index]
                break
        j = await self._judge(final, deltas)
        if j is not None:  # redacting a replayed stream is not possible: block
            yield self._cut(j)
            return
        for event, obj in held:
            yield sse(obj, event)
