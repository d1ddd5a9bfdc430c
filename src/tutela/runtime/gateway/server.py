"""Running the gateway: uvicorn on the listen address, and the `tutela up` service entry."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tutela.core.config import TutelaSettings
from tutela.core.errors import ServiceError
from tutela.core.registry import DetectorRegistry
from tutela.core.services import ServiceSpec, split_listen
from tutela.runtime.gateway.app import Gateway, create_app, is_loopback
from tutela.runtime.gateway.budgets import Budgets
from tutela.runtime.gateway.profiles import GatewaySettings
from tutela.runtime.gateway.shared_windows import SharedWindows, table_path

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
    if gw.workers == 0:
        update["workers"] = resolve_workers(0)
    return gw.model_copy(update=update) if update else gw


AUTO_WORKERS_MAX = 8


def resolve_workers(workers: int) -> int:
    """`workers` 0 means one process per usable CPU core (at most AUTO_WORKERS_MAX): one worker runs its
    detectors on one core, and on 2 cores one worker left the added p50 ~0.4 ms over issue 7's 5 ms
    where two met it (docs/gateway.md)."""
    if workers:
        return workers
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, AUTO_WORKERS_MAX))


def worker_audit_file(path: Path, worker: int) -> Path:
    """Worker 0 writes `audit.jsonl`, worker i `audit.w<i>.jsonl`: one hash chain per process."""
    if worker == 0:
        return path
    return path.with_name(f"{path.stem}.w{worker}{path.suffix}")


def build(
    settings: TutelaSettings,
    gw: GatewaySettings,
    listen: str,
    registry: DetectorRegistry | None = None,
    worker: int = 0,
    leader: int | None = None,
) -> tuple[Gateway, Any]:
    """`leader`: the pid of worker 0, whose budget table several workers share (default: this process)."""
    host, _ = split_listen(listen)
    if worker:
        audit = gw.audit_file or settings.home / "gateway" / "audit.jsonl"
        gw = gw.model_copy(update={"audit_file": worker_audit_file(audit, worker)})
    gateway = Gateway(
        gw,
        home=settings.home,
        store_path=settings.store_path,
        registry=registry or DetectorRegistry.load(),
        default_specs=settings.detectors.get("runtime"),  # tutela's `detectors.runtime` pipeline, if set
    )
    gateway.worker = worker
    if gw.workers > 1 or worker > 0:  # one budget table for all workers: a caller's limits hold across them
        path = table_path(settings.home, leader or os.getpid())
        gateway.budgets = Budgets(windows=SharedWindows(path, owner=worker == 0))
    if not gateway.profiles.current.keys and not is_loopback(host):
        raise ServiceError(
            f"no gateway keys are configured: refusing to listen on {host}",
            hint="listen on 127.0.0.1, or add keys (`tutela gateway keys new`) to the gateway config",
        )
    return gateway, create_app(gateway)


def http_protocol() -> Any:
    """uvicorn's httptools protocol writing each answer with a length in one send (onewrite.py); h11 without it."""
    if importlib.util.find_spec("httptools") is None:
        return "h11"
    from tutela.runtime.gateway.onewrite import OneWriteHttpTools

    return OneWriteHttpTools


def _listen_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # the kernel spreads new connections over the workers' sockets
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServiceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(False)
    return sock


def _spawn_workers(workers: int, argv: Sequence[str]) -> list[subprocess.Popen[bytes]]:
    """Workers 1..N-1: this command again with `--worker-index i` (worker 0 is this process)."""
    procs = []
    for i in range(1, workers):
        cmd = [sys.executable, "-m", "tutela", *argv, "--worker-index", str(i), "--worker-of", str(os.getpid())]
        procs.append(subprocess.Popen(cmd))
    return procs


def _exit_with_parent(parent: int) -> None:
    """A worker stops when the process that started it is gone (killed without a chance to stop us)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="tutela-gateway-parent", daemon=True).start()


def serve(
    settings: TutelaSettings,
    gw: GatewaySettings,
    listen: str,
    registry: DetectorRegistry | None = None,
    *,
    worker: int = 0,
    argv: Sequence[str] | None = None,
    parent: int | None = None,
) -> None:
    """Serve in the foreground. With `gw.workers` > 1, worker 0 (this process) starts the others with
    `argv` + `--worker-index i --worker-of PID` (`parent`: a worker stops when PID is gone); each binds
    the listen address with SO_REUSEPORT."""
    import uvicorn

    host, port = split_listen(listen)
    leader = (parent or os.getppid()) if worker else None
    _, app = build(settings, gw, listen, registry, worker=worker, leader=leader)
    many = gw.workers > 1 or worker > 0
    if worker > 0:
        _exit_with_parent(parent or os.getppid())
    sock = _listen_socket(host, port, reuse_port=many)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http=http_protocol(),
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
    children: list[subprocess.Popen[bytes]] = []
    if worker == 0 and gw.workers > 1:
        if argv is None:
            raise ServiceError("several gateway workers need the command line to start them with")
        children = _spawn_workers(gw.workers, argv)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        sock.close()


SERVICE = ServiceSpec(
    name="gateway",
    pillar="runtime",
    description="AI gateway: OpenAI/Anthropic-compatible firewall and scan API",
    default_listen=DEFAULT_LISTEN,
    protocol="http",
    argv=lambda settings, listen: ["gateway", "serve", "--listen", listen],  # gateway.workers: from the config
)
