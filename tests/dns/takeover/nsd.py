"""A real NSD authoritative server on loopback, started by a test, with zones given as text."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.dns.unbound import free_port

NSD = shutil.which("nsd") or "/usr/sbin/nsd"


def soa(origin: str, serial: int = 1) -> str:
    return (
        f"$ORIGIN {origin}.\n$TTL 300\n"
        f"@ IN SOA ns1.{origin}. hostmaster.{origin}. {serial} 3600 600 86400 60\n"
        f"@ IN NS ns1.{origin}.\nns1 IN A 127.0.0.1\n"
    )


class Nsd:
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
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def start(self) -> Nsd:
        self.proc = subprocess.Popen(
            [NSD, "-d", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        import dns.message
        import dns.query

        probe = next(iter(self.zones))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                log = (self.dir / "nsd.log").read_text() if (self.dir / "nsd.log").exists() else ""
                raise RuntimeError(f"nsd exited: {err} {log}")
            try:
                r = dns.query.udp(dns.message.make_query(probe, "SOA"), "127.0.0.1", port=self.port, timeout=0.2)
                if r.answer:
                    return self
            except Exception:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nsd did not answer within 15 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def __enter__(self) -> Nsd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
