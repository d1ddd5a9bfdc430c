"""A live iodine tunnel (IP over DNS) through the real sensor: Debian's iodine client and iodined on loopback,
with `tutela dns serve` in between. The session must be blocked within 10 queries, and the client must not
get its tunnel up.

iodine's client opens a TUN device and only talks to port 53, so the test needs root and a usable
/dev/net/tun; it is skipped, saying which is missing, where the machine does not allow them. The server runs
with -s (no TUN of its own: only the client's side needs one).
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import time
from pathlib import Path

import pytest

from tests.dns_models.live import SENSOR_CONFIG, free_port, process, sensor_argv, tail_logs, tun_problem, wait_for_dns
from tutela.core.store import EventStore

DOMAIN = "iodine.test"


pytestmark = [
    pytest.mark.skipif(
        shutil.which("iodine") is None or shutil.which("iodined") is None,
        reason="iodine is not installed (bash scripts/system-deps.sh installs it)",
    ),
    pytest.mark.skipif(tun_problem() is not None, reason=tun_problem() or ""),
]


@pytest.mark.slow
def test_iodine_session_is_blocked_within_ten_queries(tmp_path: Path, tutela_home: Path) -> None:
    listen_ip = f"127.0.0.{random.randint(2, 250)}"
    server_port = free_port(socket.SOCK_DGRAM)
    config = tmp_path / "tutela.yaml"
    config.write_text(SENSOR_CONFIG)
    env = {**os.environ, "TUTELA_HOME": str(tutela_home)}
    net = f"10.{random.randint(64, 127)}.{random.randint(0, 255)}.1/27"
    server_argv = ["iodined", "-f", "-c", "-s", "-P", "tutela-test", "-l", "127.0.0.1", "-p", str(server_port),
                   net, DOMAIN]  # fmt: skip
    client_argv = ["iodine", "-f", "-r", "-P", "tutela-test", "-d", f"tut{random.randint(0, 9999)}", listen_ip,
                   DOMAIN]  # fmt: skip
    with (
        process(server_argv, tmp_path / "iodined.log"),
        process(sensor_argv(config, listen_ip, server_port), tmp_path / "sensor.log", env=env) as sensor,
    ):
        wait_for_dns(listen_ip)
        with process(client_argv, tmp_path / "iodine.log") as client:
            deadline = time.monotonic() + 12
            while time.monotonic() < deadline and client.poll() is None:
                time.sleep(0.2)
        sensor.terminate()
        sensor.wait(15)
    store = EventStore(tutela_home / "events.duckdb", home=tutela_home)
    _, rows = store.query(
        "SELECT subject, action FROM events WHERE pillar = 'dns' AND subject LIKE ? ORDER BY ts", [f"%.{DOMAIN}"]
    )
    logs = tail_logs(tmp_path, 600)
    assert rows, f"no iodine queries reached the sensor\n{logs}"
    actions = [a for _, a in rows]
    assert "block" in actions, f"iodine session never blocked: {actions}\n{logs}"
    assert actions.index("block") < 10, f"blocked only at query {actions.index('block') + 1}: {actions}\n{logs}"
    client_log = (tmp_path / "iodine.log").read_text(errors="replace")
    assert "Connection setup complete" not in client_log, f"the tunnel came up despite the block\n{logs}"
