"""The tests' readiness probe (tests/dns/unbound.py wait_udp) only takes a DNS response as ready.

A port picked free for a server stays free until the server binds it, so the kernel may give it to
the probe's own socket as its source port: that socket then receives its own query. The old probe
took any datagram for an answer and let a test query a sensor still starting (one dnspython query
timed out in a fresh-clone `make test`). The echo below is what such a probe socket sees."""

from __future__ import annotations

import socket
import threading

import pytest

from tests.dns.unbound import free_port, wait_udp


def test_a_socket_sending_to_its_own_port_receives_its_own_query() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(2)
        s.sendto(b"query", s.getsockname())
        assert s.recv(100) == b"query"


def test_an_echo_of_the_query_is_not_taken_for_a_listening_server() -> None:
    port = free_port()
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", port))
    echo.settimeout(0.1)
    stop = threading.Event()

    def reflect() -> None:
        while not stop.is_set():
            try:
                data, addr = echo.recvfrom(4096)
            except OSError:
                continue
            echo.sendto(data, addr)  # the query itself, as a self-connected probe socket gets it

    t = threading.Thread(target=reflect, daemon=True)
    t.start()
    try:
        with pytest.raises(RuntimeError, match="nothing answers DNS"):
            wait_udp(port, timeout=1.0)
    finally:
        stop.set()
        t.join(2)
        echo.close()
