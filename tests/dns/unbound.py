"""A real upstream for tests and the benchmark: Debian's Unbound on a loopback port.

It answers only from local-data (the `.` zone is static, so every other name is NXDOMAIN at
once and nothing is ever sent to the internet).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

BIG_TXT = tuple(f'"{chr(97 + i) * 200}"' for i in range(6))

LOCAL_DATA = (
    "good.example.com. 300 IN A 93.184.216.34",
    "good.example.com. 300 IN AAAA 2606:2800:220:1:248:1893:25c8:1946",
    "www.example.org. 300 IN A 93.184.216.35",
    "rebind.example.com. 300 IN A 192.168.1.10",
    "loop.example.com. 300 IN A 127.0.0.1",
    "linklocal.example.com. 300 IN AAAA fe80::1",
    "ads.tracker.example.net. 300 IN A 198.51.100.7",
    "router.lan. 300 IN A 192.168.1.1",
    "paypa1.com. 300 IN A 203.0.113.9",
    *(f"big.example.com. 300 IN TXT {t}" for t in BIG_TXT),
)


def free_port() -> int:
    """A port free on loopback for both UDP and TCP."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return int(port)
    raise RuntimeError("no free port")


def wait_udp(port: int, timeout: float = 10.0) -> None:
    """Until something answers a DNS query on 127.0.0.1:port.

    Only a DNS response to this query counts (id kept, QR set): `port` is free until the server binds
    it, so the kernel may give it to the probe socket itself as its source port, which then receives
    its own query. Taking that for an answer let a test query a server not yet listening (it timed out)."""
    query = bytes.fromhex("abcd0100000100000000000004676f6f64076578616d706c6503636f6d0000010001")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(query, ("127.0.0.1", port))
                reply = s.recv(4096)
            except OSError:
                time.sleep(0.05)
                continue
            if len(reply) >= 12 and reply[:2] == query[:2] and reply[2] & 0x80:
                return
            time.sleep(0.05)
    raise RuntimeError(f"nothing answers DNS on 127.0.0.1:{port}")


@contextlib.contextmanager
def unbound(
    workdir: Path,
    *,
    port: int | None = None,
    local_data: Sequence[str] = LOCAL_DATA,
    extra: Sequence[str] = (),
    threads: int = 1,
) -> Iterator[int]:
    """Run Unbound on 127.0.0.1:<port>; yields the port."""
    binary = shutil.which("unbound") or "/usr/sbin/unbound"
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "unbound.conf"
    zones = sorted({".".join(d.split()[0].rstrip(".").split(".")[-2:]) + "." for d in local_data})
    lines = [
        "server:",
        "  interface: 127.0.0.1",
        f"  port: {port}",
        "  do-ip6: no",
        "  do-daemonize: no",
        "  use-syslog: no",
        '  logfile: ""',
        "  verbosity: 0",
        '  chroot: ""',
        '  username: ""',
        f'  directory: "{workdir}"',
        f'  pidfile: "{workdir}/unbound.pid"',
        f"  num-threads: {threads}",
        "  access-control: 127.0.0.0/8 allow",
        '  module-config: "iterator"',
        '  local-zone: "." static',
        *(f'  local-zone: "{z}" static' for z in zones),
        *(f"  local-data: '{d}'" for d in local_data),
        *(f"  {e}" for e in extra),
        "remote-control:",
        "  control-enable: no",
    ]
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([binary, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        try:
            wait_udp(port)
        except RuntimeError:
            proc.kill()
            err = proc.communicate(timeout=5)[1].decode(errors="replace")
            raise RuntimeError(f"unbound did not start: {err[-2000:]}") from None
        yield port
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
