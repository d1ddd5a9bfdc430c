"""The gateway's ASGI application: state, access control, health, metrics and the audit trail.

`create_app()` builds a Starlette app around one `Gateway` object (no module globals): the
compiled profiles (hot-reloaded), the Guard running detectors, budgets, the HTTP client to the
upstream, the store's EventWriter and the hash-chained audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tutela import __version__
from tutela.core.findings import Action, Verdict, digest
from tutela.core.models import ModelCache
from tutela.core.pipeline import DetectorSpec
from tutela.core.registry import DetectorRegistry
from tutela.core.stalls import GcControl, LagSampler, StallCounters
from tutela.core.store import EventWriter
from tutela.runtime.gateway.audit import AuditLog
from tutela.runtime.gateway.budgets import Budgets
from tutela.runtime.gateway.engine import Guard
from tutela.runtime.gateway.keys import lookup, presented_key
from tutela.runtime.gateway.profiles import GatewaySettings, KeyConfig, Profile, ProfileStore
from tutela.runtime.gateway.schemas import error_response, json_response
from tutela.runtime.gateway.upstream import UpstreamClient


class HttpError(Exception):
    """An answer to send instead of proceeding (4xx/5xx with an error body)."""

    def __init__(self, status: int, message: str, *, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})  # the usual ones, without parsing an address


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host in _LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@dataclass
class Caller:
    key: KeyConfig | None
    tenant: str
    profile: Profile
    app: str | None
    raw_key: str | None


@dataclass
class Metrics:
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # (route, action)
    upstream_errors: Counter[str] = field(default_factory=Counter)
    overhead_ms_sum: float = 0.0
    overhead_count: int = 0
    ingested: int = 0  # events moved into DuckDB by the ingest process
    ingest_errors: int = 0
    last_ingest_error: str | None = None


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        *,
        home: Path,
        store_path: Path | None,
        registry: DetectorRegistry,
        models: ModelCache | None = None,
        writer: EventWriter | None = None,
        default_specs: Sequence[DetectorSpec] | None = None,
    ) -> None:
        self.settings = settings
        self.home = home
        self.models = models or ModelCache()
        self.profiles = ProfileStore(
            settings.gateway_config(), registry, self.models, settings.config_file, default_specs
        )
        self.guard = Guard(settings.detector_threads)
        self.budgets = Budgets()
        self.metrics = Metrics()
        # ingestion into DuckDB runs in a process of its own (ingest_loop), never on the serving process
        self.writer = writer or EventWriter(home, store_path, flush_interval=0.5, ingest_interval=None)
        self.audit = AuditLog(settings.audit_file or home / "gateway" / "audit.jsonl")
        self.started = time.time()
        self.worker = 0  # index among the gateway's worker processes (server.serve)
        self.client = UpstreamClient(timeout_s=settings.upstream_timeout_s)
        self.stalls = StallCounters()  # GC pauses and event-loop lag, in /health and /metrics
        self.gc = GcControl(self.stalls, settings.gc_freeze_s, settings.gc_full_s)
        self._lag = LagSampler(self.stalls, settings.loop_lag_tick_s)
        key_env = settings.upstream_api_key_env
        self._upstream_key = os.environ.get(key_env) if key_env else None

    # --- lifecycle ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.client.start()
        profiles = list(self.profiles.current.profiles.values())
        await asyncio.get_running_loop().run_in_executor(None, self.guard.warm, profiles)
        loop = asyncio.get_running_loop()
        self.gc.start(loop)  # start-up objects (modules, compiled profiles) out of the collector's way
        self._lag.start(loop)
        self.writer.start()
        self.audit.start()
        reload = asyncio.create_task(self._reload_loop())
        ingest = asyncio.create_task(self.ingest_loop())
        try:
            yield
        finally:
            reload.cancel()
            ingest.cancel()
            self._lag.close()
            self.gc.close()
            await self.client.close()
            self.guard.close()
            self.budgets.windows.close()
            self.audit.close()
            self.writer.close()

    async def ingest_loop(self) -> None:
        """Every `store_ingest_interval_s`, move the spool into DuckDB in a child process (ingest.py)."""
        interval = self.settings.store_ingest_interval_s
        if interval is None:
            return
        from tutela.core.store import spool

        while True:
            await asyncio.sleep(interval)
            if not spool.pending_segments(self.home):
                continue
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tutela.runtime.gateway.ingest", str(self.home), str(self.writer.store_path),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                out, err = await proc.communicate()
            except asyncio.CancelledError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
                raise
            if proc.returncode == 0:
                self.metrics.ingested += int(out.strip() or 0)
            else:
                self.metrics.ingest_errors += 1
                self.metrics.last_ingest_error = err.decode("utf-8", "replace").strip()[-300:]

    async def _reload_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.settings.reload_interval_s)
            try:  # off the event loop: compiling a profile may load models
                if await loop.run_in_executor(None, self.profiles.maybe_reload):
                    profiles = list(self.profiles.current.profiles.values())
                    await loop.run_in_executor(None, self.guard.warm, profiles)
            except Exception as exc:  # a reload must never take the gateway down
                self.profiles.last_error = f"{type(exc).__name__}: {exc}"
                self.profiles.reload_errors += 1

    # --- upstream ----------------------------------------------------------------------------

    def upstream_url(self, path: str, *, anthropic: bool = False) -> str:
        base = (self.settings.anthropic_upstream if anthropic else None) or self.settings.upstream
        if not base:
            raise HttpError(503, "no upstream configured: set gateway.upstream or pass --upstream", code="no_upstream")
        return base.rstrip("/") + path

    def upstream_headers(self, request: Request, caller: Caller) -> dict[str, str]:
        out = {"content-type": "application/json"}
        for name in ("accept", "anthropic-version", "anthropic-beta", "openai-organization", "openai-project"):
            value = request.headers.get(name)
            if value:
                out[name] = value
        if self._upstream_key:
            out["authorization"] = f"Bearer {self._upstream_key}"
            out["x-api-key"] = self._upstream_key
        elif caller.key is None:  # no gateway keys: the client's own credential goes upstream
            for name in ("authorization", "x-api-key", "api-key"):
                value = request.headers.get(name)
                if value:
                    out[name] = value
        return out

    # --- access ------------------------------------------------------------------------------

    def caller(self, request: Request, body_app: str | None = None) -> Caller:
        compiled = self.profiles.current
        raw = presented_key(request.headers)
        key = None
        if compiled.keys:
            key = lookup(raw, compiled.keys)
            if key is None:
                raise HttpError(401, "missing or invalid gateway API key", code="invalid_api_key")
        elif not is_loopback(request.client.host if request.client else None):
            raise HttpError(403, "no gateway keys are configured: only loopback clients are served")
        app = request.headers.get("x-tutela-app") or body_app
        profile = compiled.profile_for(key, app)
        return Caller(key, key.tenant if key else "default", profile, app or (key.app if key else None), raw)

    async def read_body(self, request: Request) -> bytes:
        """The body, bounded in size (413) and in time (408: slow clients do not hold a worker)."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise HttpError(413, f"request body is {declared} bytes; the limit is {limit}", code="body_too_large")

        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.settings.body_timeout_s):  # no task of its own, unlike wait_for
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise HttpError(413, f"request body exceeds {limit} bytes", code="body_too_large")
                    chunks.append(chunk)
            return b"".join(chunks)
        except TimeoutError:
            raise HttpError(408, f"request body not received within {self.settings.body_timeout_s:g} s") from None

    async def read_any_json(self, request: Request) -> tuple[bytes, Any]:
        body = await self.read_body(request)
        if not body:
            raise HttpError(400, "request body is empty; send a JSON object", code="invalid_json")
        try:
            return body, orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            why = "is not valid UTF-8" if "utf-8" in str(exc).lower() else f"is not valid JSON ({exc})"
            raise HttpError(400, f"request body {why}", code="invalid_json") from None

    async def read_json(self, request: Request) -> tuple[bytes, dict[str, Any]]:
        body, data = await self.read_any_json(request)
        if not isinstance(data, dict):
            raise HttpError(400, "request body must be a JSON object", code="invalid_json")
        return body, data

    # --- audit -------------------------------------------------------------------------------

    def record(
        self,
        *,
        route: str,
        caller: Caller | None,
        tr_id: str,
        verdict: Verdict,
        t0: float,
        extra: dict[str, Any],
        raw: dict[str, Any] | None = None,
    ) -> None:
        latency_ms = round((time.perf_counter() - t0) * 1000, 3)
        profile = caller.profile.name if caller else None
        tenant = caller.tenant if caller else None
        attrs = {"tr_id": tr_id, "profile": profile, "route": route, "latency_ms": latency_ms, **extra}
        if caller is not None:
            attrs["app"] = caller.app
            attrs["key_id"] = caller.key.id if caller.key else None
        self.metrics.requests[(route, verdict.action.value)] += 1
        self.writer.append("runtime", verdict, source=f"gateway:{route}", subject=tr_id, tenant=tenant, attrs=attrs)
        rec: dict[str, Any] = {
            "tr_id": tr_id,
            "tenant": tenant,
            "profile": profile,
            "route": route,
            "action": verdict.action.value,
            "findings": [
                {k: d[k] for k in ("detector", "rule", "category", "severity", "confidence", "fingerprint")}
                for d in (f.to_dict() for f in verdict.findings[:100])
            ],
            "failures": [f.to_dict() for f in verdict.failures[:20]],
            "latency_ms": latency_ms,
            **{k: v for k, v in extra.items() if k.endswith("sha256") or k in ("upstream_status", "model", "cut")},
        }
        if raw is not None and caller is not None and caller.profile.config.store_raw:
            rec["raw"] = raw
        self.audit.append(rec)

    # --- health ------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        compiled = self.profiles.current
        configured: set[str] = set()
        for prof in compiled.profiles.values():
            for plan in prof.channels.values():
                if plan is not None:
                    configured.update(d.id for d in plan.pipeline.detectors)
        book = self.guard.health.detectors
        detectors = {d: book[d].to_dict() if d in book else {"state": "idle", "runs": 0} for d in sorted(configured)}
        failing = [d for d, h in detectors.items() if h["state"] == "failing"]
        status = "degraded" if failing or self.profiles.last_error else "ok"
        return {
            "status": status,
            "version": __version__,
            "uptime_s": round(time.time() - self.started, 1),
            "pid": os.getpid(),  # with several workers, each answers for itself
            "worker": self.worker,
            "upstream": self.settings.upstream is not None,
            "config": {
                "version": self.profiles.version,
                "loaded_at": self.profiles.loaded_at,
                "last_error": self.profiles.last_error,
                "reload_errors": self.profiles.reload_errors,
                "keys": len(compiled.keys),
            },
            "profiles": {
                name: {
                    "on_error": p.config.on_error,
                    "channels": {
                        ch: None
                        if plan is None
                        else {"action": plan.action.value, "detectors": [d.id for d in plan.pipeline.detectors]}
                        for ch, plan in p.channels.items()
                    },
                }
                for name, p in compiled.profiles.items()
            },
            "detectors": detectors,
            "failing_detectors": failing,
            "fail_open": self.guard.health.fail_open,
            "fail_closed": self.guard.health.fail_closed,
            "events_dropped": self.writer.dropped,
            "events_ingested": self.metrics.ingested,
            "ingest_errors": self.metrics.ingest_errors,
            "last_ingest_error": self.metrics.last_ingest_error,
            "audit_errors": self.audit.errors,
            "stalls": self.stalls.to_dict(),
        }

    def metrics_text(self) -> str:
        lines = ["# TYPE tutela_gateway_requests_total counter"]
        for (route, action), n in sorted(self.metrics.requests.items()):
            lines.append(f'tutela_gateway_requests_total{{route="{route}",action="{action}"}} {n}')
        lines.append("# TYPE tutela_gateway_upstream_errors_total counter")
        for kind, n in sorted(self.metrics.upstream_errors.items()):
            lines.append(f'tutela_gateway_upstream_errors_total{{kind="{kind}"}} {n}')
        lines.append("# TYPE tutela_gateway_detector_runs_total counter")
        book = self.guard.health.detectors
        for det, h in sorted(book.items()):
            lines.append(f'tutela_gateway_detector_runs_total{{detector="{det}"}} {h.runs}')
        lines.append("# TYPE tutela_gateway_detector_failures_total counter")
        for det, h in sorted(book.items()):
            lines.append(f'tutela_gateway_detector_failures_total{{detector="{det}"}} {h.failures}')
        lines.append("# TYPE tutela_gateway_detector_up gauge")
        for det, h in sorted(book.items()):
            lines.append(f'tutela_gateway_detector_up{{detector="{det}"}} {0 if h.consecutive_failures else 1}')
        lines.append("# TYPE tutela_gateway_fail_open_total counter")
        lines.append(f"tutela_gateway_fail_open_total {self.guard.health.fail_open}")
        lines.append("# TYPE tutela_gateway_fail_closed_total counter")
        lines.append(f"tutela_gateway_fail_closed_total {self.guard.health.fail_closed}")
        lines.append("# TYPE tutela_gateway_config_error gauge")
        lines.append(f"tutela_gateway_config_error {1 if self.profiles.last_error else 0}")
        lines.append("# TYPE tutela_gateway_events_dropped_total counter")
        lines.append(f"tutela_gateway_events_dropped_total {self.writer.dropped}")
        lines.append("# TYPE tutela_gateway_events_ingested_total counter")
        lines.append(f"tutela_gateway_events_ingested_total {self.metrics.ingested}")
        lines.append("# TYPE tutela_gateway_ingest_errors_total counter")
        lines.append(f"tutela_gateway_ingest_errors_total {self.metrics.ingest_errors}")
        lines.extend(self.stalls.render("tutela_gateway"))
        return "\n".join(lines) + "\n"


class _TrIds:
    """32 hex digits, unique: a random per-process prefix and a counter (uuid4 costs a syscall each);
    a forked child draws a new prefix."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.count = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.count) & 0xFFFFFFFFFFFFFFFF:016x}"


new_tr_id = _TrIds()


def payload_hash(obj: Any) -> str:
    return digest(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS))


def blocked(verdicts: list[Verdict]) -> Verdict | None:
    for v in verdicts:
        if v.action is Action.BLOCK:
            return v
    return None


def create_app(gateway: Gateway) -> DirectPosts:
    from tutela.runtime.gateway import routes, scan

    def allowed(request: Request) -> bool:  # loopback, or any valid key: detector names are not public
        if is_loopback(request.client.host if request.client else None):
            return True
        return lookup(presented_key(request.headers), gateway.profiles.current.keys) is not None

    async def health(request: Request) -> Response:
        if not allowed(request):
            return error_response(401, "a gateway API key is needed off loopback", code="invalid_api_key")
        return json_response(gateway.health())

    async def metrics(request: Request) -> Response:
        if not allowed(request):
            return error_response(401, "a gateway API key is needed off loopback", code="invalid_api_key")
        return PlainTextResponse(gateway.metrics_text(), media_type="text/plain; version=0.0.4")

    async def openapi(request: Request) -> Response:
        from tutela.runtime.gateway.openapi import openapi_spec

        return json_response(openapi_spec())

    route_list = [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *routes.routes(gateway),
        *scan.routes(gateway),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return error_response(status, f"{request.method} {request.url.path}: no such endpoint", code="not_found")

    app = Starlette(
        routes=route_list,
        lifespan=gateway.lifespan,
        exception_handlers={404: not_found, 405: not_found},
    )
    app.state.gateway = gateway
    posts = {r.path: r.endpoint for r in route_list if r.methods == {"POST"}}
    return DirectPosts(app, posts)


class _FirstHeaders(Headers):
    """Starlette's request headers with one dict for lookups: a proxied request looks up a dozen names, each a
    scan of the raw list encoding the name again. The same answers: names as sent, the first occurrence wins."""

    def __init__(self, scope: dict[str, Any]) -> None:
        super().__init__(scope=scope)
        self._first = {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(self._list)}

    def __getitem__(self, key: str) -> str:
        try:
            return self._first[key.lower()]
        except KeyError:
            raise KeyError(key) from None

    def __contains__(self, key: Any) -> bool:
        return key.lower() in self._first

    def get(self, key: str, default: Any = None) -> Any:
        return self._first.get(key.lower(), default)


class PostRequest(Request):
    @property
    def headers(self) -> Headers:
        if not hasattr(self, "_headers"):
            self._headers = _FirstHeaders(self.scope)
        return self._headers


class DirectPosts:
    """The POST endpoints (the proxied APIs, the scan API) called straight from the request's path; the rest
    through Starlette's middleware and router. Every endpoint answers its own errors (HttpError -> a JSON
    error body), so the layers skipped only routed: the same answers, for less CPU per request."""

    def __init__(self, app: Starlette, endpoints: dict[str, Any]) -> None:
        self.app = app
        self.state = app.state
        self._endpoints = endpoints

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._endpoints.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self.app
                response = await endpoint(PostRequest(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
