"""A real NSD authoritative server on loopback, started by a test, with zones given as text."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.dns.takeover.daemon import LoopbackDaemon
from tests.dns.unbound import free_port

NSD = shutil.which("nsd") or "/usr/sbin/nsd"


def soa(origin: str, serial: int = 1) -> str:
    return (
        f"$ORIGIN {origin}.\n$TTL 300\n"
        f"@ IN SOA ns1.{origin}. hostmaster.{origin}. {serial} 3600 600 86400 60\n"
        f"@ IN NS ns1.{origin}.\nns1 IN A 127.0.0.1\n"
    )


class Nsd(LoopbackDaemon):
    name = "nsd"

    def __init__(self, workdir: Path, zones: dict[str, str], *, xfr: bool = False) -> None:
        if not Path(NSD).exists():
            pytest.skip("nsd is not installed (scripts/system-deps.sh installs it)")
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.zones = zones
        conf = [
            "server:",
            "  ip-address: 127.0.0.1",
            f"  port: {self.port}",
            '  username: ""',
            '  chroot: ""',
            f'  zonesdir: "{self.dir}"',
            '  database: ""',
            f'  zonelistfile: "{self.dir}/zone.list"',
            f'  xfrdfile: "{self.dir}/xfrd.state"',
            f'  xfrdir: "{self.dir}"',
            f'  pidfile: "{self.dir}/nsd.pid"',
            f'  logfile: "{self.dir}/nsd.log"',
            "  server-count: 1",
            "  verbosity: 1",
            "  reuseport: no",
            "  rrl-ratelimit: 0",  # response rate limiting would slip (TC) and drop a scanner's queries
            "  rrl-whitelist-ratelimit: 0",
            "remote-control:",
            "  control-enable: no",
        ]
        for name, text in zones.items():
            (self.dir / f"{name}.zone").write_text(text)
            conf += ["zone:", f"  name: {name}", f'  zonefile: "{name}.zone"']
            if xfr:
                conf.append("  provide-xfr: 127.0.0.1 NOKEY")
        self.conf = self.dir / "nsd.conf"
        self.conf.write_text("\n".join(conf) + "\n")

    def start(self) -> Nsd:
        self.launch(
            [NSD, "-d", "-c", str(self.conf)], next(iter(self.zones)), need_answer=True, timeout=0.2, log="nsd.log"
        )
        return self

    def __enter__(self) -> Nsd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
