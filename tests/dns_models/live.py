"""Running real DNS tunnel tools on this machine: shared by the live tests (test_live_tunnel.py,
test_live_iodine.py) and bench/dns_tunnel_tools.py.

Processes, an echo server, the sensor's command line and config, and why a TUN device cannot be used.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000

# Every query becomes an event (log_allowed), so the queries before a block can be counted.
SENSOR_CONFIG = "dns:\n  log_allowed: true\ndetectors:\n  dns:\n    - {id: dns.tunnel}\n    - {id: dns.dga}\n"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def echo_server(host: str = "127.0.0.1") -> Iterator[int]:
    """A TCP echo server on host; yields its port."""
    srv = socket.create_server((host, 0))
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
    """A child process with its output in log, terminated (then killed) on exit."""
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


def sensor_argv(config: Path, listen_ip: str, upstream_port: int) -> list[str]:
    """`tutela dns serve` on listen_ip:53 (the tunnel clients only query port 53), forwarding to the tool's server."""
    return [sys.executable, "-m", "tutela", "--config", str(config), "dns", "serve",
            "--listen", f"{listen_ip}:53", "--upstream", f"127.0.0.1:{upstream_port}"]  # fmt: skip


@contextlib.contextmanager
def dns2tcp_server(work: Path, domain: str, echo_port: int) -> Iterator[int]:
    """dns2tcpd on 127.0.0.1 at a free UDP port (yielded), its resource "echo" being 127.0.0.1:echo_port. It
    chroots to work and runs as nobody."""
    port = free_port(socket.SOCK_DGRAM)
    conf = work / "d2t.conf"
    conf.write_text(
        f"listen = 127.0.0.1\nport = {port}\nuser = nobody\nchroot = {work}\n"
        f"domain = {domain}\nresources = echo:127.0.0.1:{echo_port}\n"
    )
    with process(["dns2tcpd", "-F", "-f", str(conf)], work / "dns2tcpd.log"):
        yield port


def dns2tcp_client(domain: str, local_port: int, server_ip: str) -> list[str]:
    """dns2tcpc's command line: the tunnel's "echo" resource on 127.0.0.1:local_port, via server_ip:53."""
    return ["dns2tcpc", "-z", domain, "-r", "echo", "-l", str(local_port), server_ip]


def tun_problem() -> str | None:
    """Why a TUN device cannot be opened here, or None when it can."""
    if os.geteuid() != 0:
        return "iodine needs root (TUN device, port 53)"
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR)
    except OSError as exc:
        return f"no usable /dev/net/tun ({exc})"
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", b"tutelaprobe0", IFF_TUN | IFF_NO_PI))
    except OSError as exc:
        return f"this machine does not allow creating a TUN device ({exc})"
    finally:
        os.close(fd)
    return None


def tail_logs(folder: Path, chars: int = 500) -> str:
    """The end of every *.log in folder, for an assertion message."""
    return "\n".join(f"{p.name}: {p.read_text(errors='replace')[-chars:]}" for p in sorted(folder.glob("*.log")))
