"""`tutela dns serve` as a child process on a free loopback port, stopped with SIGTERM (which must exit 0)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.dns.unbound import free_port, wait_udp


@contextlib.contextmanager
def serve_process(
    config: Path, home: Path, upstream: int, timeout_s: float = 30, output: list[str] | None = None
) -> Iterator[int]:
    """Yields the sensor's port once it answers; on exit, stops it and asserts a clean exit (its output if not).
    `output` receives the sensor's output (printed too, so pytest shows the sensor's own account of a failure)."""
    port = free_port()
    env = {**os.environ, "TUTELA_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tutela", "--config", str(config), "dns", "serve", "--listen", f"127.0.0.1:{port}",
         "--upstream", f"127.0.0.1:{upstream}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_udp(port)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=timeout_s)[0].decode()
        if output is not None:
            output.append(out)
            print(out)
    assert proc.returncode == 0, out
