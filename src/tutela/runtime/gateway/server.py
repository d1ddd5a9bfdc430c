"""Running the gateway: uvicorn on the listen address, and the `tutela up` service entry."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from tutela.core.config import TutelaSettings
from tutela.core.errors import ServiceError
from tutela.core.registry import DetectorRegistry
from tutela.core.services import ServiceSpec, split_listen
from tutela.runtime.gateway.app import Gateway, create_app, is_loopback
from tutela.runtime.gateway.profiles import GatewaySettings

DEFAULT_LISTEN = "127.0.0.1:8480"


def gateway_settings(
    settings: TutelaSettings, *, upstream: str | None = None, config_file: Path | None = None
) -> GatewaySettings:
    gw: GatewaySettings = settings.section("gateway", GatewaySettings)
    update: dict[str, Any] = {}
    if upstream:
        update["upstream"] = upstream
    if config_file:
        update["config_file"] = config_file
    return gw.model_copy(update=update) if update else gw


def build(
    settings: TutelaSettings,
    gw: GatewaySettings,
    listen: str,
    registry: DetectorRegistry | None = None,
) -> tuple[Gateway, Any]:
    host, _ = split_listen(listen)
    gateway = Gateway(
        gw,
        home=settings.home,
        store_path=settings.store_path,
        registry=registry or DetectorRegistry.load(),
        default_specs=settings.detectors.get("runtime"),  # tutela's `detectors.runtime` pipeline, if set
    )
    if not gateway.profiles.current.keys and not is_loopback(host):
        raise ServiceError(
            f"no gateway keys are configured: refusing to listen on {host}",
            hint="listen on 127.0.0.1, or add keys (`tutela gateway keys new`) to the gateway config",
        )
    return gateway, create_app(gateway)


def serve(settings: TutelaSettings, gw: GatewaySettings, listen: str, registry: DetectorRegistry | None = None) -> None:
    import uvicorn

    host, port = split_listen(listen)
    _, app = build(settings, gw, listen, registry)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        log_level="warning",
        access_log=False,  # URLs and headers may carry data; the audit log records requests
        timeout_keep_alive=30,
        limit_concurrency=gw.max_concurrency,
        server_header=False,
    )
    # Detectors run in a thread pool: hand the GIL over within 1 ms instead of 5 ms, or every judged
    # request can wait a full switch interval behind the event loop under load.
    sys.setswitchinterval(0.001)
    if gw.upstream is None:
        print("tutela gateway: no upstream configured; serving the scan API only", file=sys.stderr, flush=True)
    uvicorn.Server(config).run()


SERVICE = ServiceSpec(
    name="gateway",
    pillar="runtime",
    description="AI gateway: OpenAI/Anthropic-compatible firewall and scan API",
    default_listen=DEFAULT_LISTEN,
    protocol="http",
    argv=lambda settings, listen: ["gateway", "serve", "--listen", listen],
)
