"""The proxied APIs: judge the request, call the upstream, judge the answer (or the stream).

OpenAI `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `/v1/responses`, `/v1/models`
and Anthropic `/v1/messages`. A blocked prompt gets a 400 error body in the API's own style with
the reasons; a blocked answer comes back as a normal answer cut by the content filter
(`finish_reason: "content_filter"`, Anthropic `stop_reason: "refusal"`). Upstream errors are
passed through unchanged (status, body, content type).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tutela.core.findings import Action, Verdict, digest
from tutela.runtime.gateway import extract
from tutela.runtime.gateway.app import Caller, Gateway, HttpError, new_tr_id
from tutela.runtime.gateway.engine import Item, Judgement
from tutela.runtime.gateway.schemas import error_response
from tutela.runtime.gateway.streaming import (
    AnthropicStream,
    OpenAIStream,
    ResponsesStream,
    SseParser,
    StreamError,
    StreamFilter,
)
from tutela.runtime.gateway.upstream import UpstreamError

MAX_ERROR_BODY = 1 << 20


def combine(verdicts: list[Verdict]) -> Verdict:
    if not verdicts:
        return Verdict(action=Action.ALLOW)
    if len(verdicts) == 1:
        return verdicts[0]
    return Verdict(
        action=Action.strongest(v.action for v in verdicts),
        findings=tuple(f for v in verdicts for f in v.findings),
        failures=tuple(f for v in verdicts for f in v.failures),
        reasons=tuple(r for v in verdicts for r in v.reasons),
    )


def _usage(answer: dict[str, Any]) -> tuple[int, int]:
    u = answer.get("usage")
    if not isinstance(u, dict):
        return 0, 0
    p = u.get("prompt_tokens", u.get("input_tokens", 0))
    c = u.get("completion_tokens", u.get("output_tokens", 0))
    return (p if isinstance(p, int) else 0), (c if isinstance(c, int) else 0)


def _tutela(verdict: Verdict, tr_id: str) -> dict[str, Any]:
    return {"action": verdict.action.value, "reasons": list(verdict.reasons[:20]), "tr_id": tr_id}


# --- how each API's answer looks when the content filter cut it ------------------------------


def _cut_chat(answer: dict[str, Any], v: Verdict, tr_id: str) -> dict[str, Any]:
    for choice in extract._list(answer.get("choices")):
        if isinstance(choice, dict):
            choice["message"] = {"role": "assistant", "content": ""}
            choice["finish_reason"] = "content_filter"
    return {**answer, "tutela": _tutela(v, tr_id)}


def _cut_completion(answer: dict[str, Any], v: Verdict, tr_id: str) -> dict[str, Any]:
    for choice in extract._list(answer.get("choices")):
        if isinstance(choice, dict):
            choice["text"] = ""
            choice["finish_reason"] = "content_filter"
    return {**answer, "tutela": _tutela(v, tr_id)}


def _cut_responses(answer: dict[str, Any], v: Verdict, tr_id: str) -> dict[str, Any]:
    return {
        **answer,
        "output": [],
        "status": "incomplete",
        "incomplete_details": {"reason": "content_filter"},
        "tutela": _tutela(v, tr_id),
    }


def _cut_messages(answer: dict[str, Any], v: Verdict, tr_id: str) -> dict[str, Any]:
    return {**answer, "content": [], "stop_reason": "refusal", "tutela": _tutela(v, tr_id)}


@dataclass(frozen=True)
class Api:
    route: str
    upstream_path: str
    request: Callable[[dict[str, Any]], extract.Extracted]
    response: Callable[[dict[str, Any]], extract.Extracted] | None
    cut: Callable[[dict[str, Any], Verdict, str], dict[str, Any]] | None
    stream: str | None = None  # "chat", "completion", "anthropic"
    anthropic: bool = False


APIS = (
    Api("/v1/chat/completions", "/chat/completions", extract.chat_request, extract.chat_response, _cut_chat, "chat"),
    Api(
        "/v1/completions",
        "/completions",
        extract.completion_request,
        extract.completion_response,
        _cut_completion,
        "completion",
    ),
    Api("/v1/embeddings", "/embeddings", extract.embeddings_request, None, None),
    Api(
        "/v1/responses",
        "/responses",
        extract.responses_request,
        extract.responses_response,
        _cut_responses,
        "responses",
    ),
    Api(
        "/v1/messages",
        "/messages",
        extract.messages_request,
        extract.messages_response,
        _cut_messages,
        "anthropic",
        anthropic=True,
    ),
)


class Proxy:
    def __init__(self, gw: Gateway, api: Api) -> None:
        self.gw = gw
        self.api = api

    async def handle(self, request: Request) -> Response:
        gw, api = self.gw, self.api
        t0 = time.perf_counter()
        tr_id = new_tr_id()
        caller: Caller | None = None
        try:
            caller = gw.caller(request)  # before reading the body: strangers do not get 8 MiB read
            raw, body = await gw.read_json(request)
            return await self._proxy(request, raw, body, caller, tr_id, t0)
        except HttpError as exc:
            if caller is not None and exc.status in (403, 413, 429):
                verdict = Verdict(action=Action.BLOCK, reasons=(exc.message,))
                gw.record(route=api.route, caller=caller, tr_id=tr_id, verdict=verdict, t0=t0, extra={})
            return error_response(
                exc.status,
                exc.message,
                code=exc.code,
                anthropic=api.anthropic,
                headers={"x-tutela-tr-id": tr_id, **(exc.headers or {})},
            )

    async def _check_tools(self, caller: Caller, names: list[str], arguments: str) -> Judgement | None:
        bad = [n for n in names if not caller.profile.tool_allowed(n)]
        if bad:
            verdict = Verdict(action=Action.BLOCK, reasons=(f"tool {bad[0]!r} is not on the profile's allow-list",))
            return Judgement("output", verdict)
        if not arguments:
            return None
        j = await self.gw.guard.judge(caller.profile, "output", [Item("tool_call.arguments", arguments)])
        if j.action is Action.REDACT:  # held tool calls are released whole or not at all
            j.verdict = Verdict(
                action=Action.BLOCK,
                findings=j.verdict.findings,
                reasons=(*j.verdict.reasons, "tool-call arguments to redact -> block"),
            )
        return j

    async def _proxy(
        self, request: Request, raw: bytes, body: dict[str, Any], caller: Caller, tr_id: str, t0: float
    ) -> Response:
        gw, api = self.gw, self.api
        profile = caller.profile
        try:
            ex = api.request(body)
        except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as exc:
            raise HttpError(
                400, f"request has an unexpected shape ({type(exc).__name__})", code="invalid_request"
            ) from None
        if ex.messages > gw.settings.max_messages:
            raise HttpError(
                413, f"{ex.messages} messages; the limit is {gw.settings.max_messages}", code="too_many_messages"
            )
        chars = sum(len(s.text) for s in ex.slots)
        budgets = profile.config.budgets
        if chars > budgets.max_prompt_chars:
            raise HttpError(413, f"prompt is {chars} characters; the limit is {budgets.max_prompt_chars}")
        who = who_of(caller, ex, request)
        refusal = gw.budgets.admit(profile.name, who, budgets)
        if refusal is not None:
            raise HttpError(429, refusal.reason, code="budget", headers={"retry-after": str(refusal.retry_after)})
        stream = body.get("stream") is True
        if stream and api.stream is None:
            raise HttpError(400, f"streaming through the gateway is not supported on {api.route}", code="stream")

        verdicts: list[Verdict] = []
        channels: dict[str, str] = {}
        bad_tools = [t for t in ex.tools if not profile.tool_allowed(t)]
        if bad_tools:
            verdicts.append(
                Verdict(action=Action.BLOCK, reasons=(f"tool {bad_tools[0]!r} is not on the profile's allow-list",))
            )
        changed = False
        for channel, slots in ex.by_channel().items():
            j = await gw.guard.judge(profile, channel, [Item(s.location, s.text) for s in slots])
            verdict = j.verdict
            if j.redacted is not None:
                for slot, new in zip(slots, j.redacted, strict=True):
                    if new != slot.text:
                        if slot.set is None:
                            verdict = Verdict(
                                action=Action.BLOCK,
                                findings=verdict.findings,
                                reasons=(*verdict.reasons, f"{slot.location} cannot be redacted -> block"),
                            )
                            break
                        slot.set(new)
                        changed = True
            channels[channel] = verdict.action.value
            verdicts.append(verdict)
        judged = combine(verdicts)
        extra: dict[str, Any] = {"channels": channels, "model": ex.model, "stream": stream}
        if judged.action is Action.BLOCK:
            extra["request_sha256"] = digest(raw)
            gw.record(route=api.route, caller=caller, tr_id=tr_id, verdict=judged, t0=t0, extra=extra)
            return error_response(
                400,
                "request blocked by the tutela gateway: " + "; ".join(judged.reasons[:3]),
                code="content_filter",
                anthropic=api.anthropic,
                extra=_tutela(judged, tr_id),
                headers={"x-tutela-tr-id": tr_id, "x-tutela-action": "block"},
            )
        content = orjson.dumps(body) if changed else raw
        extra["request_sha256"] = digest(content)
        url = gw.upstream_url(api.upstream_path, anthropic=api.anthropic)
        query = request.scope.get("query_string")
        if query:  # e.g. Azure OpenAI's api-version
            url += "?" + query.decode("latin-1")
        headers = gw.upstream_headers(request, caller)
        if stream:
            return await self._stream(url, headers, content, caller, tr_id, t0, judged, extra, ex.model, who)
        try:
            resp = await gw.client.request("POST", url, content=content, headers=headers)
        except UpstreamError as exc:
            raise upstream_failed(gw, exc) from None
        extra["upstream_status"] = resp.status
        passthrough = {"x-tutela-tr-id": tr_id}
        ctype = resp.content_type
        if resp.status >= 300 or api.response is None:
            if resp.status >= 300:
                gw.metrics.upstream_errors[str(resp.status)] += 1
            extra["output_sha256"] = digest(resp.body)
            gw.record(route=api.route, caller=caller, tr_id=tr_id, verdict=judged, t0=t0, extra=extra)
            return Response(resp.body, status_code=resp.status, media_type=ctype, headers=passthrough)
        try:
            answer = orjson.loads(resp.body)
            if not isinstance(answer, dict):
                raise ValueError
        except ValueError:
            gw.metrics.upstream_errors["malformed"] += 1
            if profile.config.on_error == "closed":
                raise HttpError(502, "the upstream answer is not a JSON object; failing closed") from None
            gw.record(route=api.route, caller=caller, tr_id=tr_id, verdict=judged, t0=t0, extra=extra)
            return Response(resp.body, status_code=resp.status, media_type=ctype, headers=passthrough)

        try:
            out = api.response(answer)
        except (TypeError, ValueError, AttributeError, KeyError, RecursionError):
            gw.metrics.upstream_errors["malformed"] += 1
            raise HttpError(502, "the upstream answer has an unexpected shape", code="upstream_error") from None
        out_verdicts: list[Verdict] = []
        j_tools = await self._check_tools(caller, out.tools, "") if out.tools else None
        if j_tools is not None:
            out_verdicts.append(j_tools.verdict)
        out_changed = False
        slots = out.by_channel().get("output", [])
        if slots:
            j = await gw.guard.judge(profile, "output", [Item(s.location, s.text) for s in slots])
            out_verdicts.append(j.verdict)
            if j.redacted is not None and j.action is Action.REDACT:
                for slot, new in zip(slots, j.redacted, strict=True):
                    if new != slot.text and slot.set is not None:
                        slot.set(new)
                        out_changed = True
        answered = combine(out_verdicts)
        channels["output"] = answered.action.value
        p_tok, c_tok = _usage(answer)
        extra["cost"] = gw.budgets.spend(
            profile.name,
            who,
            profile.config.budgets,
            model=ex.model,
            prompt_tokens=p_tok,
            completion_tokens=c_tok,
            prices=gw.profiles.current.config.prices,
        )
        extra["tokens"] = p_tok + c_tok
        final = combine([judged, answered])
        if answered.action is Action.BLOCK and api.cut is not None:
            answer = api.cut(answer, answered, tr_id)
            data = orjson.dumps(answer)
            passthrough["x-tutela-action"] = "block"
        elif out_changed:
            data = orjson.dumps(answer)
        else:
            data = resp.body
        extra["output_sha256"] = digest(data)
        raw_log = {"request": body, "answer": answer} if profile.config.store_raw else None
        gw.record(route=api.route, caller=caller, tr_id=tr_id, verdict=final, t0=t0, extra=extra, raw=raw_log)
        return Response(data, status_code=resp.status, media_type=ctype, headers=passthrough)

    async def _stream(
        self,
        url: str,
        headers: dict[str, str],
        content: bytes,
        caller: Caller,
        tr_id: str,
        t0: float,
        judged: Verdict,
        extra: dict[str, Any],
        model: str | None,
        who: str,
    ) -> Response:
        gw, api = self.gw, self.api
        try:
            resp = await gw.client.stream(url, content=content, headers=headers)
        except UpstreamError as exc:
            raise upstream_failed(gw, exc) from None
        extra["upstream_status"] = resp.status
        if resp.status != 200:
            gw.metrics.upstream_errors[str(resp.status)] += 1
            try:
                data = await resp.read(MAX_ERROR_BODY)
            except UpstreamError:
                data = b""
            finally:
                resp.close()
            gw.record(route=api.route, caller=caller, tr_id=tr_id, verdict=judged, t0=t0, extra=extra)
            ctype = resp.headers.get("content-type", "application/json")
            return Response(data, status_code=resp.status, media_type=ctype, headers={"x-tutela-tr-id": tr_id})

        async def check(names: list[str], arguments: str) -> Judgement | None:
            return await self._check_tools(caller, names, arguments)

        filt: StreamFilter
        if api.stream == "anthropic":
            filt = AnthropicStream(gw.guard, caller.profile, check)
        elif api.stream == "responses":
            filt = ResponsesStream(gw.guard, caller.profile, check)
        else:
            filt = OpenAIStream(gw.guard, caller.profile, check, chat=api.stream == "chat")

        async def events() -> AsyncIterator[tuple[str | None, str]]:
            parser = SseParser()
            async for chunk in resp.chunks():
                for ev in parser.feed(chunk):
                    yield ev

        async def body() -> AsyncIterator[bytes]:
            try:
                async for part in filt.run(events()):
                    yield part
            except (StreamError, UpstreamError) as exc:
                gw.metrics.upstream_errors["stream"] += 1
                yield filt.fail(f"upstream stream failed: {exc}")
            except (ValueError, TypeError, AttributeError, KeyError) as exc:  # odd shapes from the upstream
                gw.metrics.upstream_errors["malformed"] += 1
                yield filt.fail(f"malformed upstream stream ({type(exc).__name__})")
            finally:
                resp.close()
                summary = filt.summary
                text = "".join(summary.output_text)
                p_tok = summary.usage.get("prompt_tokens", summary.usage.get("input_tokens", 0))
                c_tok = summary.usage.get("completion_tokens", summary.usage.get("output_tokens", 0)) or (
                    len(text) // 4
                )
                prof = caller.profile
                extra["cost"] = gw.budgets.spend(
                    prof.name,
                    who,
                    prof.config.budgets,
                    model=model,
                    prompt_tokens=p_tok,
                    completion_tokens=c_tok,
                    prices=gw.profiles.current.config.prices,
                )
                extra.update(tokens=p_tok + c_tok, cut=summary.cut, output_sha256=digest(text))
                extra["channels"]["output"] = summary.action.value
                final = combine([judged, summary.verdict()])
                raw_log = {"answer": text} if prof.config.store_raw else None
                gw.record(route=api.route, caller=caller, tr_id=tr_id, verdict=final, t0=t0, extra=extra, raw=raw_log)

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"x-tutela-tr-id": tr_id, "cache-control": "no-cache"},
        )


def upstream_failed(gw: Gateway, exc: UpstreamError) -> HttpError:
    gw.metrics.upstream_errors[exc.kind] += 1
    if exc.kind == "timeout":
        return HttpError(504, str(exc), code="upstream_timeout")
    return HttpError(502, str(exc), code="upstream_error")


def who_of(caller: Caller, ex: extract.Extracted, request: Request) -> str:
    user = ex.user or request.headers.get("x-tutela-user") or "-"
    return f"{caller.tenant}/{caller.key.id if caller.key else '-'}/{user}"


def routes(gw: Gateway) -> list[Route]:
    async def models(request: Request) -> Response:
        tr_id = new_tr_id()
        try:
            caller = gw.caller(request)
            url = gw.upstream_url("/models")
            try:
                resp = await gw.client.request("GET", url, headers=gw.upstream_headers(request, caller))
            except UpstreamError as exc:
                raise upstream_failed(gw, exc) from None
        except HttpError as exc:
            return error_response(exc.status, exc.message, code=exc.code, headers={"x-tutela-tr-id": tr_id})
        return Response(resp.body, status_code=resp.status, media_type=resp.content_type)

    out = [Route(api.route, Proxy(gw, api).handle, methods=["POST"]) for api in APIS]
    out.append(Route("/v1/models", models, methods=["GET"]))
    return out
