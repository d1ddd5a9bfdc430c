"""A real Unbound recursive resolver on loopback whose stub zones point at a test's NSD."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.dns.takeover.nsd import free_port

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"


class Unbound:
    def __init__(self, workdir: Path, stubs: dict[str, tuple[str, int]], refuse: tuple[str, ...] = ()) -> None:
        if not Path(UNBOUND).exists():
            pytest.skip("unbound is not installed (scripts/system-deps.sh installs it)")
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        conf = [
            "server:",
            "  interface: 127.0.0.1",
            f"  port: {self.port}",
            "  do-ip6: no",
            "  do-daemonize: no",
            '  username: ""',
            '  chroot: ""',
            f'  directory: "{self.dir}"',
            f'  pidfile: "{self.dir}/unbound.pid"',
            "  use-syslog: no",
            "  verbosity: 0",
            "  num-threads: 1",
            "  do-not-query-localhost: no",
            '  module-config: "iterator"',
            "  qname-minimisation: no",
            "  ratelimit: 0",
            "  ip-ratelimit: 0",
            *(f'  local-zone: "{z}." refuse' for z in refuse),
            "remote-control:",
            "  control-enable: no",
        ]
        for zone, (host, port) in stubs.items():
            conf += ["stub-zone:", f'  name: "{zone}."', f"  stub-addr: {host}@{port}"]
        self.conf = self.dir / "unbound.conf"
        self.conf.write_text("\n".join(conf) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def __enter__(self) -> Unbound:
        import dns.message
        import dns.query

        self.proc = subprocess.Popen(
            [UNBOUND, "-d", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"unbound exited: {err}")
            try:
                dns.query.udp(dns.message.make_query("com.", "SOA"), "127.0.0.1", port=self.port, timeout=0.3)
                return self
            except Exception:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("unbound did not answer within 15 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None
