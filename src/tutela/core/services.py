"""Platform services: what `tutela up` starts and `tutela status` reports.

Each pillar's server registers a ServiceSpec under the `tutela.services` entry point group and so
"registers itself as it arrives". A service runs as its own process (`python -m tutela ...`),
listens on loopback by default, and is recorded in `<home>/run/services.json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tutela.core.errors import ServiceError

if TYPE_CHECKING:
    from tutela.core.config import TutelaSettings


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    pillar: str
    description: str
    default_listen: str  # HOST:PORT on loopback
    protocol: str  # "http", "dns" (udp+tcp), ...
    # CLI arguments after `tutela` that run the service in the foreground, given the listen address.
    argv: Callable[[TutelaSettings, str], list[str]]


@dataclass(frozen=True, slots=True)
class RunningService:
    name: str
    pillar: str
    protocol: str
    listen: str
    pid: int
    started: float
    log: str


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ServiceError(f"invalid listen address {listen!r}; use HOST:PORT")
    return host.strip("[]"), int(port)


def port_open(listen: str, timeout: float = 0.3) -> bool:
    host, port = split_listen(listen)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ServiceState:
    """The record of started services under <home>/run."""

    def __init__(self, home: Path) -> None:
        self.dir = home / "run"
        self.file = self.dir / "services.json"

    def read(self) -> list[RunningService]:
        try:
            data = json.loads(self.file.read_text())
            return [RunningService(**item) for item in data]
        except FileNotFoundError:
            return []
        except (ValueError, TypeError) as exc:
            raise ServiceError(
                f"{self.file} is corrupted ({exc})", hint="run `tutela down`, then `tutela up`"
            ) from None

    def write(self, services: Sequence[RunningService]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(s) for s in services], indent=2))
        os.replace(tmp, self.file)

    def clear(self) -> None:
        self.file.unlink(missing_ok=True)


def status_rows(state: ServiceState) -> list[dict[str, Any]]:
    rows = []
    now = time.time()
    for s in state.read():
        alive = pid_alive(s.pid)
        reachable = alive and s.protocol in ("http", "dns") and port_open(s.listen)
        rows.append(
            {
                "name": s.name,
                "pillar": s.pillar,
                "protocol": s.protocol,
                "listen": s.listen,
                "pid": s.pid,
                "state": "running" if reachable else ("starting" if alive else "dead"),
                "uptime_s": round(now - s.started, 1),
                "log": s.log,
            }
        )
    return rows


def start_services(
    settings: TutelaSettings,
    specs: Sequence[ServiceSpec],
    *,
    ready_timeout: float = 60.0,  # services load their models before they listen (ONNX session, spaCy)
) -> list[RunningService]:
    """Start each enabled service detached, wait until its port answers, and record it."""
    state = ServiceState(settings.home)
    already = [s for s in state.read() if pid_alive(s.pid)]
    if already:
        names = ", ".join(s.name for s in already)
        raise ServiceError(f"services already running: {names}", hint="run `tutela down` first")
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started: list[RunningService] = []
    try:
        for spec in specs:
            cfg = settings.service(spec.name)
            if not cfg.enabled:
                continue
            listen = cfg.listen or spec.default_listen
            argv = [sys.executable, "-m", "tutela"]
            if settings.config_file:
                argv += ["--config", str(settings.config_file)]
            argv += spec.argv(settings, listen)
            log = logs / f"{spec.name}.log"
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    env={**os.environ, "TUTELA_HOME": str(settings.home)},
                )
            started.append(
                RunningService(spec.name, spec.pillar, spec.protocol, listen, proc.pid, time.time(), str(log))
            )
            state.write(started)
            _wait_ready(spec, listen, proc, log, ready_timeout)
    except BaseException:
        stop_services(settings.home)
        raise
    return started


def _wait_ready(spec: ServiceSpec, listen: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise ServiceError(f"service {spec.name} exited with code {proc.returncode}: {tail[0]}", hint=f"see {log}")
        if port_open(listen):
            return
        time.sleep(0.1)
    raise ServiceError(f"service {spec.name} did not answer on {listen} within {timeout:.0f} s", hint=f"see {log}")


def stop_services(home: Path, timeout: float = 10.0) -> list[str]:
    state = ServiceState(home)
    stopped = []
    services = state.read()
    for s in services:
        if pid_alive(s.pid):
            try:
                os.killpg(s.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                continue
            stopped.append(s.name)
    deadline = time.monotonic() + timeout
    for s in services:
        while pid_alive(s.pid) and time.monotonic() < deadline:
            _reap(s.pid)
            time.sleep(0.05)
        if pid_alive(s.pid):
            os.killpg(s.pid, signal.SIGKILL)
        _reap(s.pid)
    state.clear()
    return stopped


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
