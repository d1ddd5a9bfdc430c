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
import time
from pathlib import Path

import pytest

from tests.dns_models.live import (
    SENSOR_CONFIG,
    dns2tcp_client,
    dns2tcp_server,
    echo_server,
    free_port,
    process,
    sensor_argv,
    tail_logs,
    wait_for_dns,
)
from tutela.core.store import EventStore

pytestmark = pytest.mark.skipif(
    shutil.which("dns2tcpc") is None or shutil.which("dns2tcpd") is None,
    reason="dns2tcp is not installed (bash scripts/system-deps.sh installs it)",
)

DOMAIN = "tunnel.test"


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="dns2tcpc only queries port 53, which needs root to listen on")
def test_dns2tcp_session_is_blocked_within_ten_queries(tmp_path: Path, tutela_home: Path) -> None:
    listen_ip = f"127.0.0.{random.randint(2, 250)}"
    local_port = free_port()
    config = tmp_path / "tutela.yaml"
    config.write_text(SENSOR_CONFIG)
    env = {**os.environ, "TUTELA_HOME": str(tutela_home)}
    with (
        echo_server() as echo_port,
        dns2tcp_server(tmp_path, DOMAIN, echo_port) as d2t_port,
        process(sensor_argv(config, listen_ip, d2t_port), tmp_path / "sensor.log", env=env) as sensor,
    ):
        wait_for_dns(listen_ip)
        with process(dns2tcp_client(DOMAIN, local_port, listen_ip), tmp_path / "dns2tcpc.log"):
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
    logs = tail_logs(tmp_path)
    assert rows, f"no tunnel queries reached the sensor\n{logs}"
    actions = [a for _, a in rows]
    assert "block" in actions, f"tunnel never blocked: {actions}\n{logs}"
    assert actions.index("block") < 10, f"blocked only at query {actions.index('block') + 1}: {actions}"
    assert b"exfiltrated" not in echoed, f"data crossed the tunnel despite the block\n{logs}"
    log = (tmp_path / "dns2tcpc.log").read_text()
    assert "Authentication failed" in log or "error" in log.lower()
