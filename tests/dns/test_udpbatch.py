"""Batched UDP (recvmmsg/sendmmsg) on real loopback sockets, and the sensor on its batched and
unbatched client paths against a real Unbound."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import dns.message
import dns.query
import dns.rcode
import pytest

from tests.dns.conftest import StartSensor
from tutela.dns import udpbatch

pytestmark = pytest.mark.skipif(not udpbatch.available(), reason="recvmmsg/sendmmsg: Linux only")


@pytest.fixture
def pair() -> Iterator[tuple[udpbatch.BatchSocket, socket.socket]]:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    batch = udpbatch.BatchSocket(server, slots=16, size=512)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.settimeout(2)
    yield batch, client
    batch.close()
    client.close()


def test_reads_many_datagrams_per_call_and_answers_each_to_its_sender(
    pair: tuple[udpbatch.BatchSocket, socket.socket],
) -> None:
    batch, client = pair
    port = batch.sock.getsockname()[1]
    for i in range(40):
        client.sendto(struct.pack("!H", i) + b"x" * i, ("127.0.0.1", port))
    got: list[tuple[bytes, bytes]] = []
    calls = 0
    while len(got) < 40 and calls < 100:
        part = batch.receive()
        assert len(part) <= 16
        got += part
        calls += 1
    assert [d for d, _ in got] == [struct.pack("!H", i) + b"x" * i for i in range(40)]
    assert calls <= 4  # 16 per call (the kernel already had them all)
    assert {batch.address(name) for _, name in got} == {client.getsockname()}
    for data, name in got:
        batch.push(data[::-1], name)
    batch.flush()
    assert sorted(client.recv(600) for _ in range(40)) == sorted(d[::-1] for d, _ in got)
    assert batch.receive() == []  # nothing waiting: never blocks
    assert batch.send_errors == 0


def test_datagram_larger_than_a_slot_is_marked_and_a_large_reply_still_goes_out(
    pair: tuple[udpbatch.BatchSocket, socket.socket],
) -> None:
    batch, client = pair
    port = batch.sock.getsockname()[1]
    client.sendto(b"y" * 1000, ("127.0.0.1", port))  # slots are 512 bytes
    client.sendto(b"small", ("127.0.0.1", port))
    got = batch.receive()
    assert [d for d, _ in got] == [b"", b"small"]
    assert batch.truncated == 1
    batch.push(b"z" * 3000, got[1][1])  # larger than a slot: sent on its own
    batch.flush()
    assert client.recv(4096) == b"z" * 3000
    batch.sendto(b"by tuple", client.getsockname())
    batch.sendto(b"nowhere", ("not an address", 53))
    assert client.recv(100) == b"by tuple"
    assert batch.send_errors == 1


def test_a_reply_the_kernel_refuses_is_counted_and_the_rest_still_go_out(
    pair: tuple[udpbatch.BatchSocket, socket.socket],
) -> None:
    batch, client = pair
    client.sendto(b"q", batch.sock.getsockname())
    name = batch.receive()[0][1]
    batch.push(b"first", name)
    batch.push(b"lost", bytes(16))  # family 0: sendmmsg stops at it
    batch.push(b"third", name)
    batch.flush()
    assert [client.recv(100), client.recv(100)] == [b"first", b"third"]
    assert batch.send_errors == 1


def test_queue_on_a_connected_socket_sends_in_order_and_counts_what_the_kernel_refuses() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(2)
        sender.connect(receiver.getsockname())
        queue = udpbatch.DatagramQueue(sender.fileno(), slots=4, size=64)
        for i in range(6):  # the queue holds 4: it sends when full, the rest on flush
            queue.push(b"q%d" % i)
        assert queue.queued == 2
        queue.push(b"L" * 100)  # larger than a slot: sent on its own, ahead of the batch it was queued in
        queue.flush()
        assert queue.failed == 0
        got = [receiver.recv(200) for _ in range(7)]
        assert got == [b"q0", b"q1", b"q2", b"q3", b"L" * 100, b"q4", b"q5"]
        port = receiver.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as gone:  # nobody listens there any more
        gone.connect(("127.0.0.1", port))
        queue = udpbatch.DatagramQueue(gone.fileno())
        queue.push(b"first")
        queue.flush()  # alone: one sendto
        time.sleep(0.05)  # the port-unreachable ICMP comes back as ECONNREFUSED on the next send
        queue.push(b"second")
        queue.push(b"third")
        queue.flush()  # sendmmsg: the first one fails and is skipped, the rest go out
        assert queue.failed == 1 and queue.queued == 0
        assert queue.take_failed() == 1 and queue.failed == 0
        queue.push(b"dropped")
        assert queue.drop() == 1 and queue.queued == 0


def test_ipv6_addresses_round_trip() -> None:
    try:
        server = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        server.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    batch = udpbatch.BatchSocket(server)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as client:
        client.bind(("::1", 0))
        client.settimeout(2)
        client.sendto(b"hello", server.getsockname())
        got = []
        for _ in range(1000):
            got = batch.receive()
            if got:
                break
        assert batch.address(got[0][1]) == client.getsockname()
        batch.push(b"world", got[0][1])
        batch.flush()
        assert client.recv(100) == b"world"
        batch.sendto(b"again", client.getsockname())  # a (host, port, flowinfo, scope_id) tuple
        assert client.recv(100) == b"again"
    batch.close()


@pytest.mark.network
@pytest.mark.parametrize("batched", [True, False])
def test_sensor_answers_a_burst_from_the_cache_with_each_clients_id(
    upstream: int, start_sensor: StartSensor, batched: bool
) -> None:
    s = start_sensor([f"127.0.0.1:{upstream}"], dns={"udp_batch": batched})
    assert (s.sensor._batch is not None) is batched
    first = dns.query.udp(dns.message.make_query("good.example.com", "A"), "127.0.0.1", port=s.port, timeout=5)
    # the first cache hit is served in Python and arms the entry for the hot path; without it, however many
    # of the burst the first read takes (up to a batch) go the slow way too, which made the count below flaky
    dns.query.udp(dns.message.make_query("good.example.com", "A"), "127.0.0.1", port=s.port, timeout=5)
    queries = []
    for i in range(200):  # sent before any is read: the batched path reads them many per call
        q = dns.message.make_query("good.example.com", "A")
        q.id = i
        queries.append(q)
    blocked = dns.message.make_query("ads.tracker.example.net", "A")
    blocked.id = 999
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        for q in [*queries, blocked]:
            sock.sendto(q.to_wire(), ("127.0.0.1", s.port))
        replies = {}
        for _ in range(201):
            r = dns.message.from_wire(sock.recv(4096))
            replies[r.id] = r
    assert sorted(replies) == [*range(200), 999]
    assert all(replies[i].answer == first.answer for i in range(200))
    assert replies[999].rcode() == dns.rcode.NXDOMAIN
    m = s.engine.metrics
    assert m.hot_hits() == 200  # every one from the hot path: neither forwarded nor served in Python
    assert m.queries["udp"] == 203
    assert m.response_counts()[0] == 202 and m.response_counts()[3] == 1
    if batched:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(first.to_wire() + b"\0" * 5000, ("127.0.0.1", s.port))  # over a 4 KiB slot
            for _ in range(50):
                if m.malformed:
                    break
                time.sleep(0.05)
        assert m.malformed == 1
        assert "tutela_dns_udp_truncated_total 1" in m.render()
        assert "tutela_dns_udp_send_errors_total 0" in m.render()


@pytest.mark.network
@pytest.mark.parametrize("batched", [True, False])
def test_sensor_forwards_a_burst_of_new_names_and_answers_each_client_with_its_id(
    upstream: int, start_sensor: StartSensor, batched: bool
) -> None:
    """First sightings: the batched path queues the forwarded queries and the upstream answers and
    sends them many per sendmmsg; every client still gets its own answer, with its id."""
    s = start_sensor([f"127.0.0.1:{upstream}"], dns={"udp_batch": batched})
    assert bool(s.sensor._up_queues) is batched
    flushes = 0
    if batched:
        queue = s.sensor._up_queues[0]
        assert queue is not None
        real = queue.flush

        def counted() -> int:
            nonlocal flushes
            flushes += 1
            return real()

        queue.flush = counted  # type: ignore[method-assign]
    names = [f"new{i}.example.com" for i in range(100)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        for i, name in enumerate(names):  # sent before any is read: read and forwarded many per call
            q = dns.message.make_query(name, "A")
            q.id = i
            sock.sendto(q.to_wire(), ("127.0.0.1", s.port))
        replies = {}
        for _ in names:
            r = dns.message.from_wire(sock.recv(4096))
            replies[r.id] = r
    assert sorted(replies) == list(range(100))
    assert all(replies[i].question[0].name.to_text() == names[i] + "." for i in range(100))
    assert all(replies[i].rcode() == dns.rcode.NXDOMAIN for i in range(100))  # the test Unbound's answer
    m = s.engine.metrics
    assert m.upstream_errors == 0 and m.upstream_timeouts == 0
    if batched:
        assert 1 <= flushes < 100  # many queries per send call


@pytest.mark.network
def test_a_query_queued_for_an_upstream_socket_that_closed_is_dropped_and_counted(
    upstream: int, start_sensor: StartSensor
) -> None:
    """The send queue writes to the upstream endpoint's file descriptor: once that endpoint is
    closing, what was queued for it is never written there (the number may belong to another
    socket by then); it counts as an upstream error and the query fails like a timeout."""
    s = start_sensor([f"127.0.0.1:{upstream}"], dns={"timeout_s": 0.3, "max_attempts": 1})
    assert s.sensor._up_queues and s.sensor._up_queues[0] is not None
    closed = threading.Event()

    def close_upstream() -> None:
        transport = s.sensor.upstreams[0].transport
        assert transport is not None
        transport.close()
        closed.set()

    s.loop.call_soon_threadsafe(close_upstream)
    assert closed.wait(5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # a burst: the loop is busy, sends are queued
        sock.settimeout(5)
        for i in range(30):
            q = dns.message.make_query(f"fresh{i}.example.com", "A")
            q.id = i
            sock.sendto(q.to_wire(), ("127.0.0.1", s.port))
        replies = [dns.message.from_wire(sock.recv(4096)) for _ in range(30)]
    assert sorted(r.id for r in replies) == list(range(30))
    assert all(r.rcode() == dns.rcode.SERVFAIL for r in replies)
    assert s.engine.metrics.upstream_errors >= 1  # the queued ones; a lone one went to the closed transport
    assert s.sensor._up_queues[0].queued == 0


@pytest.mark.network
def test_a_query_that_raises_loses_only_itself_not_the_rest_of_its_batch(
    upstream: int, start_sensor: StartSensor
) -> None:
    """The datagram protocol loses one datagram when its handler raises; the batched path lost every
    datagram read after it in the same batch (silently for their clients: a 5 s timeout)."""
    s = start_sensor([f"127.0.0.1:{upstream}"])
    assert s.sensor._batch is not None
    slow = s.sensor._slow_query

    def fragile(data: bytes, addr: Any, t0: float) -> None:
        if b"boom" in data:
            raise RuntimeError("a bug on one query")
        slow(data, addr, t0)

    s.sensor._slow_query = fragile  # type: ignore[method-assign]
    boom = dns.message.make_query("boom.example.com", "A").to_wire()
    queries = [dns.message.make_query(f"n{i}.example.com", "A") for i in range(25)]
    for i, q in enumerate(queries):
        q.id = i
    wires = [q.to_wire() for q in queries]
    # five new names keep the sensor busy while the rest queue up and are read as one batch or a few
    burst = [*wires[:5], *(d for k in range(10) for d in (boom, wires[5 + 2 * k], wires[6 + 2 * k]))]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        for data in burst:
            sock.sendto(data, ("127.0.0.1", s.port))
        ids = []
        with contextlib.suppress(TimeoutError):
            while len(ids) < len(queries):
                ids.append(dns.message.from_wire(sock.recv(4096)).id)
    assert sorted(ids) == list(range(25))
    assert s.engine.metrics.query_errors == 10
    assert "tutela_dns_query_errors_total 10" in s.engine.metrics.render()


@pytest.mark.network
@pytest.mark.parametrize("batched", [True, False])
def test_a_query_waiting_when_the_sensor_starts_is_forwarded_at_once(
    upstream: int, start_sensor: StartSensor, monkeypatch: pytest.MonkeyPatch, batched: bool
) -> None:
    """The client socket used to be armed before the upstream sockets existed: a query already
    waiting was forwarded to no socket and only retried by the sweep after dns.timeout_s."""
    from tutela.dns.server import DnsSensor

    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.settimeout(5)
    make = DnsSensor._udp_socket
    sent: list[float] = []

    def queued_first(self: DnsSensor, host: str, port: int) -> socket.socket:
        sock = make(self, host, port)
        client.sendto(dns.message.make_query("good.example.com", "A").to_wire(), sock.getsockname())
        sent.append(time.monotonic())
        return sock

    monkeypatch.setattr(DnsSensor, "_udp_socket", queued_first)
    try:
        start_sensor([f"127.0.0.1:{upstream}"], dns={"udp_batch": batched, "timeout_s": 2.0})
        reply = dns.message.from_wire(client.recv(4096))
        waited = time.monotonic() - sent[0]
    finally:
        client.close()
    assert reply.answer and reply.answer[0][0].address == "93.184.216.34"
    assert waited < 1.0, f"answered after {waited:.2f} s: retried by the sweep, not forwarded"
