"""The events API: a small read-only HTTP service over the event store, on loopback.

GET /health            {"status": "ok", "schema": N, "events": N}
GET /events?limit=&pillar=&action=&since=   newest first, JSON
GET /services          what `tutela up` started
It is the platform's core service; the console and the copilot read through it.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tutela.core.config import TutelaSettings
from tutela.core.errors import ServiceError, TutelaError
from tutela.core.services import ServiceSpec, ServiceState, split_listen, status_rows
from tutela.core.store import EventStore

MAX_LIMIT = 10_000
LOOPBACK = ("127.", "::1", "localhost")


def recent_events(
    store: EventStore, *, limit: int = 50, pillar: str | None = None, action: str | None = None
) -> list[dict[str, Any]]:
    clauses, params = [], []
    if pillar:
        clauses.append("pillar = ?")
        params.append(pillar)
    if action:
        clauses.append("action = ?")
        params.append(action)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    columns, rows = store.query(
        f"SELECT * FROM events {where} ORDER BY ts DESC LIMIT {min(max(limit, 1), MAX_LIMIT)}", params
    )
    out = []
    for row in rows:
        item = dict(zip(columns, row, strict=True))
        item["ts"] = item["ts"].isoformat() + "Z"
        for key in ("findings", "attrs"):
            if isinstance(item.get(key), str):
                item[key] = json.loads(item[key])
        out.append(item)
    return out


def make_handler(settings: TutelaSettings) -> type[BaseHTTPRequestHandler]:
    store = EventStore(settings.store_path, home=settings.home)
    state = ServiceState(settings.home)

    class Handler(BaseHTTPRequestHandler):
        server_version = "tutela-events"

        def log_message(self, format: str, *args: Any) -> None:  # no request logs: URLs may hold data
            return

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                if url.path == "/health":
                    self._send(200, {"status": "ok", "schema": store.open(), "events": store.count()})
                elif url.path == "/events":
                    limit = int(query.get("limit", "50"))
                    events = recent_events(store, limit=limit, pillar=query.get("pillar"), action=query.get("action"))
                    self._send(200, {"events": events})
                elif url.path == "/services":
                    self._send(200, {"services": status_rows(state)})
                else:
                    self._send(404, {"error": f"no such endpoint {url.path}"})
            except ValueError as exc:
                self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            except TutelaError as exc:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})

    return Handler


def serve(settings: TutelaSettings, listen: str, ready: threading.Event | None = None) -> None:
    host, port = split_listen(listen)
    if not host.startswith(LOOPBACK):
        raise ServiceError(f"the events API serves loopback only; refusing to listen on {host}")
    EventStore(settings.store_path, home=settings.home).open()
    server = ThreadingHTTPServer((host, port), make_handler(settings))
    server.daemon_threads = True
    if ready:
        ready.set()
    try:
        server.serve_forever()
    finally:
        server.server_close()


SERVICE = ServiceSpec(
    name="api",
    pillar="core",
    description="read-only events API over the store",
    default_listen="127.0.0.1:8470",
    protocol="http",
    argv=lambda settings, listen: ["events", "serve", "--listen", listen],
)

__all__ = ["SERVICE", "recent_events", "serve"]
