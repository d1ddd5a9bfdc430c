"""A live DNS tunnel through the real sensor: Debian's dns2tcp client and server on loopback, with
`tutela dns serve` in between. The session must be blocked within 10 queries.

dns2tcpc only talks to port 53, so the sensor listens on 127.0.0.N:53 (needs root, as in CI).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tutela.core.store import EventStore

pytestmark = pytest.mark.skipif(
    shutil.which("dns2tcpc") is None or shutil.which("dns2tcpd") is None,
    reason="dns2tcp is not installed (bash scripts/system-deps.sh installs it)",
)

DOMAIN = "tunnel.test"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def echo_server() -> Iterator[int]:
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    while data := conn.recv(4096):
                        conn.sendall(data)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield int(srv.getsockname()[1])
    finally:
        stop.set()
        t.join(2)
        srv.close()


@contextlib.contextmanager
def process(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_dns(host: str, timeout: float = 20.0) -> None:
    """The sensor listens on TCP as well as UDP; its TCP port accepting means it is serving."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, 53), timeout=0.5):
            return
        time.sleep(0.2)
    raise AssertionError(f"the sensor did not listen on {host}:53")


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="dns2tcpc only queries port 53, which needs root to listen on")
def test_dns2tcp_session_is_blocked_within_ten_queries(tmp_path: Path, tutela_home: Path) -> None:
    listen_ip = f"127.0.0.{random.randint(2, 250)}"
    d2t_port = free_port(socket.SOCK_DGRAM)
    local_port = free_port()
    config = tmp_path / "tutela.yaml"
    # Every query becomes an event, so the test can count the queries before the block.
    config.write_text("dns:\n  log_allowed: true\ndetectors:\n  dns:\n    - {id: dns.tunnel}\n    - {id: dns.dga}\n")
    env = {**os.environ, "TUTELA_HOME": str(tutela_home)}
    with echo_server() as echo_port:
        (tmp_path / "d2t.conf").write_text(
            f"listen = 127.0.0.1\nport = {d2t_port}\nuser = nobody\nchroot = {tmp_path}\n"
            f"domain = {DOMAIN}\nresources = echo:127.0.0.1:{echo_port}\n"
        )
        sensor_argv = [
            sys.executable,
            "-m",
            "tutela",
            "--config",
            str(config),
            "dns",
            "serve",
            "--listen",
            f"{listen_ip}:53",
            "--upstream",
            f"127.0.0.1:{d2t_port}",
        ]
        with (
            process(["dns2tcpd", "-F", "-f", str(tmp_path / "d2t.conf")], tmp_path / "dns2tcpd.log"),
            process(sensor_argv, tmp_path / "sensor.log", env=env) as sensor,
        ):
            wait_for_dns(listen_ip)
            client_argv = ["dns2tcpc", "-z", DOMAIN, "-r", "echo", "-l", str(local_port), listen_ip]
            with process(client_argv, tmp_path / "dns2tcpc.log"):
                time.sleep(1.0)
                echoed = b""
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local_port), 3) as conn:
                    conn.settimeout(3)
                    conn.sendall(b"exfiltrated secret " * 20)
                    echoed = conn.recv(4096)
                time.sleep(1.0)
            sensor.terminate()
            sensor.wait(15)
    store = EventStore(tutela_home / "events.duckdb", home=tutela_home)
    _, rows = store.query(
        "SELECT subject, action FROM events WHERE pillar = 'dns' AND subject LIKE ? ORDER BY ts", [f"%.{DOMAIN}"]
    )
    logs = "\n".join(f"{p.name}: {p.read_text(errors='replace')[-500:]}" for p in sorted(tmp_path.glob("*.log")))
    assert rows, f"no tunnel queries reached the sensor\n{logs}"
    actions = [a for _, a in rows]
    assert "block" in actions, f"tunnel never blocked: {actions}\n{logs}"
    assert actions.index("block") < 10, f"blocked only at query {actions.index('block') + 1}: {actions}"
    assert b"exfiltrated" not in echoed, f"data crossed the tunnel despite the block\n{logs}"
    log = (tmp_path / "dns2tcpc.log").read_text()
    assert "Authentication failed" in log or "error" in log.lower()
