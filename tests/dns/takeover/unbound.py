"""A real Unbound recursive resolver on loopback whose stub zones point at a test's NSD."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.dns.takeover.daemon import LoopbackDaemon
from tests.dns.takeover.nsd import free_port

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"


class Unbound(LoopbackDaemon):
    name = "unbound"

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

    def __enter__(self) -> Unbound:
        self.launch([UNBOUND, "-d", "-c", str(self.conf)], "com.", need_answer=False, timeout=0.3)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
