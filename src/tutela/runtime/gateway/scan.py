"""The scan API, for applications that do not proxy: Palo Alto AI Runtime Security's request shape.

POST /v1/scan/sync/request   one ScanRequest -> verdict (category benign|malicious, action allow|block)
POST /v1/scan/sync/batch     [{req_id, scan_req}] (at most 100) -> {results: [{req_id, result}]}
POST /v1/scan/async/request  the same list; answers {received, scan_id, report_id} at once
GET  /v1/scan/results?scan_ids=a,b   results of async scans (only the caller's tenant's)
GET  /v1/tutela/events?limit=N       the caller's tenant's gateway events from the store

Contents map to channels: prompt/code_prompt -> prompt, context -> document, response/code_response
-> output, tool_event.input -> output (arguments a model produced), tool_event.output and MCP
`tools` descriptions -> tool_output (poisoning, injection); tool names meet the allow-list.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tutela.core.findings import Action, Verdict
from tutela.runtime.gateway.app import Caller, Gateway, HttpError, new_tr_id
from tutela.runtime.gateway.engine import Item
from tutela.runtime.gateway.profiles import Profile
from tutela.runtime.gateway.schemas import (
    PROMPT_FLAGS,
    RESPONSE_FLAGS,
    BatchItem,
    ScanRequest,
    detected_flags,
    error_response,
    json_response,
)

MAX_BATCH = 100
MAX_RESULTS = 10_000
_batch = TypeAdapter(list[BatchItem])


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _items(req: ScanRequest) -> tuple[dict[str, list[Item]], list[str]]:
    channels: dict[str, list[Item]] = {}
    tools: list[str] = []

    def add(channel: str, where: str, text: str | None) -> None:
        if text:
            channels.setdefault(channel, []).append(Item(where, text))

    for i, c in enumerate(req.contents):
        add("prompt", f"contents[{i}].prompt", c.prompt)
        add("prompt", f"contents[{i}].code_prompt", c.code_prompt)
        add("document", f"contents[{i}].context", c.context)
        add("output", f"contents[{i}].response", c.response)
        add("output", f"contents[{i}].code_response", c.code_response)
        if c.tool_event is not None:
            add("output", f"contents[{i}].tool_event.input", c.tool_event.input)
            add("tool_output", f"contents[{i}].tool_event.output", c.tool_event.output)
            name = c.tool_event.metadata.get("tool_invoked")
            if isinstance(name, str):
                tools.append(name)
        for t, tool in enumerate(c.tools or []):
            tools.append(tool.name)
            add("tool_output", f"contents[{i}].tools[{t}].description", tool.description)
            if tool.inputSchema:
                add("tool_output", f"contents[{i}].tools[{t}].inputSchema", json.dumps(tool.inputSchema))
    return channels, tools


def _resolve_profile(gw: Gateway, caller: Caller, req: ScanRequest) -> Profile:
    name = req.ai_profile.profile_name or req.ai_profile.profile_id
    if not name:
        if req.metadata.app_name and req.metadata.app_name in gw.profiles.current.config.apps:
            return gw.profiles.current.profiles[gw.profiles.current.config.apps[req.metadata.app_name]]
        return caller.profile
    if name not in gw.profiles.current.profiles:
        raise HttpError(400, f"unknown profile {name!r}", code="unknown_profile")
    if caller.key is not None and caller.key.profile and caller.key.profile != name:
        raise HttpError(403, f"this key may only use profile {caller.key.profile!r}", code="profile_denied")
    return gw.profiles.current.profiles[name]


async def scan_one(gw: Gateway, caller: Caller, req: ScanRequest) -> dict[str, Any]:
    t0 = time.perf_counter()
    created = _now()
    profile = _resolve_profile(gw, caller, req)
    tr_id = req.tr_id or new_tr_id()
    channels, tools = _items(req)
    chars = sum(len(it.text) for items in channels.values() for it in items)
    if chars > profile.config.budgets.max_prompt_chars:
        raise HttpError(413, f"contents are {chars} characters; the limit is {profile.config.budgets.max_prompt_chars}")
    who = f"{caller.tenant}/{caller.key.id if caller.key else '-'}/{req.metadata.app_user or '-'}"
    refusal = gw.budgets.admit(profile.name, who, profile.config.budgets)
    if refusal is not None:
        raise HttpError(429, refusal.reason, code="budget", headers={"retry-after": str(refusal.retry_after)})
    verdicts: list[Verdict] = []
    findings: list[dict[str, Any]] = []
    flagged: dict[str, list[str]] = {"prompt": [], "response": []}
    masked: dict[str, str] = {}
    bad = [t for t in tools if not profile.tool_allowed(t)]
    if bad:
        verdicts.append(Verdict(action=Action.BLOCK, reasons=(f"tool {bad[0]!r} is not on the profile's allow-list",)))
        flagged["prompt"].append("agent")
    for channel, items in channels.items():
        j = await gw.guard.judge(profile, channel, items)
        verdicts.append(j.verdict)
        plan = profile.plan(channel)
        side = "response" if channel == "output" else "prompt"
        for f in j.verdict.findings:
            meets = plan is not None and plan.policy.action_for(f)[1].startswith("policy rule")
            if meets:
                flagged[side].append(f.category)
            findings.append({**f.to_dict(), "channel": channel, "acted": meets})
        if j.redacted is not None:
            masked[side] = "\n\n".join(j.redacted)
    action = Action.strongest(v.action for v in verdicts)
    reasons = [r for v in verdicts for r in v.reasons]
    failures = [f.to_dict() for v in verdicts for f in v.failures]
    scan_id = str(uuid.uuid4())
    result: dict[str, Any] = {
        "report_id": "R" + scan_id,
        "scan_id": scan_id,
        "tr_id": tr_id,
        "profile_name": profile.name,
        "profile_id": profile.name,
        "category": "malicious" if flagged["prompt"] or flagged["response"] or action is Action.BLOCK else "benign",
        "action": "block" if action is Action.BLOCK else "allow",
        "tutela_action": action.value,
        "prompt_detected": detected_flags(flagged["prompt"], PROMPT_FLAGS),
        "response_detected": detected_flags(flagged["response"], RESPONSE_FLAGS),
        "findings": findings,
        "failures": failures,
        "reasons": reasons[:50],
        "created_at": created,
        "completed_at": _now(),
        "timeout": any(f["error"] == "Timeout" for f in failures),
        "error": False,
    }
    if "prompt" in masked:
        result["prompt_masked_data"] = {"data": masked["prompt"]}
    if "response" in masked:
        result["response_masked_data"] = {"data": masked["response"]}
    verdict = Verdict(
        action=action,
        findings=tuple(f for v in verdicts for f in v.findings),
        failures=tuple(f for v in verdicts for f in v.failures),
        reasons=tuple(reasons),
    )
    extra = {"app": req.metadata.app_name, "model": req.metadata.ai_model, "scan_id": scan_id}
    gw.record(route="/v1/scan", caller=caller, tr_id=tr_id, verdict=verdict, t0=t0, extra=extra)
    return result


async def _body(gw: Gateway, request: Request) -> Any:
    return (await gw.read_any_json(request))[1]


def _invalid(exc: ValidationError) -> HttpError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return HttpError(400, f"{loc}: {err['msg']}" if loc else err["msg"], code="invalid_request")


def routes(gw: Gateway) -> list[Route]:
    results: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()  # scan_id -> (tenant, result)

    async def guarded(request: Request, work: Any) -> Response:
        try:
            caller = gw.caller(request)
            return await work(caller, await _body(gw, request))
        except HttpError as exc:
            return error_response(exc.status, exc.message, code=exc.code, headers=exc.headers)

    async def sync_request(request: Request) -> Response:
        async def work(caller: Caller, data: Any) -> Response:
            try:
                req = ScanRequest.model_validate(data)
            except ValidationError as exc:
                raise _invalid(exc) from None
            return json_response(await scan_one(gw, caller, req))

        return await guarded(request, work)

    async def _batch_items(data: Any) -> list[BatchItem]:
        if isinstance(data, dict) and isinstance(data.get("scan_reqs"), list):
            data = data["scan_reqs"]
        if not isinstance(data, list) or not 1 <= len(data) <= MAX_BATCH:
            raise HttpError(400, f"send a list of 1 to {MAX_BATCH} {{req_id, scan_req}} items", code="invalid_request")
        try:
            return _batch.validate_python(data)
        except ValidationError as exc:
            raise _invalid(exc) from None

    async def _run(caller: Caller, item: BatchItem) -> dict[str, Any]:
        try:
            return {"req_id": item.req_id, "result": await scan_one(gw, caller, item.scan_req)}
        except HttpError as exc:
            return {"req_id": item.req_id, "error": {"status": exc.status, "message": exc.message}}

    async def sync_batch(request: Request) -> Response:
        async def work(caller: Caller, data: Any) -> Response:
            items = await _batch_items(data)
            out = await asyncio.gather(*(_run(caller, it) for it in items))
            return json_response({"results": out})

        return await guarded(request, work)

    async def async_request(request: Request) -> Response:
        async def work(caller: Caller, data: Any) -> Response:
            items = await _batch_items(data)
            scan_id = str(uuid.uuid4())
            out = await asyncio.gather(*(_run(caller, it) for it in items))
            results[scan_id] = (caller.tenant, {"scan_id": scan_id, "status": "complete", "results": out})
            while len(results) > MAX_RESULTS:
                results.popitem(last=False)
            return json_response({"received": _now(), "scan_id": scan_id, "report_id": "R" + scan_id})

        return await guarded(request, work)

    async def get_results(request: Request) -> Response:
        try:
            caller = gw.caller(request)
        except HttpError as exc:
            return error_response(exc.status, exc.message, code=exc.code)
        ids = [s for s in request.query_params.get("scan_ids", "").split(",") if s][:MAX_BATCH]
        out = []
        for sid in ids:
            hit = results.get(sid)
            if hit is None or hit[0] != caller.tenant:  # another tenant's scan looks like no scan
                out.append({"scan_id": sid, "status": "not_found"})
            else:
                out.append(hit[1])
        return json_response(out)

    async def tenant_events(request: Request) -> Response:
        try:
            caller = gw.caller(request)
            limit = int(request.query_params.get("limit", "50"))
        except HttpError as exc:
            return error_response(exc.status, exc.message, code=exc.code)
        except ValueError:
            return error_response(400, "limit must be an integer")
        from tutela.core.store import EventStore

        def query() -> list[dict[str, Any]]:
            store = EventStore(gw.writer.store_path, home=gw.home)
            store.ingest(blocking=True)
            cols, rows = store.query(
                "SELECT ts, action, severity, category, subject, attrs, findings FROM events "
                "WHERE pillar = 'runtime' AND tenant = ? ORDER BY ts DESC LIMIT ?",
                [caller.tenant, min(max(limit, 1), 1000)],
            )
            return [
                dict(zip(cols, (str(v) if k == "ts" else v for k, v in zip(cols, r, strict=True)), strict=True))
                for r in rows
            ]

        gw.writer.flush()
        events = await asyncio.get_running_loop().run_in_executor(None, query)
        for e in events:
            for k in ("attrs", "findings"):
                if isinstance(e.get(k), str):
                    e[k] = json.loads(e[k])
        return json_response({"tenant": caller.tenant, "events": events})

    return [
        Route("/v1/scan/sync/request", sync_request, methods=["POST"]),
        Route("/v1/scan/sync/batch", sync_batch, methods=["POST"]),
        Route("/v1/scan/async/request", async_request, methods=["POST"]),
        Route("/v1/scan/results", get_results, methods=["GET"]),
        Route("/v1/tutela/events", tenant_events, methods=["GET"]),
    ]
