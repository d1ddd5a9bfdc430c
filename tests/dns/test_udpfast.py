"""The compiled hot loop (tutela/_native/udpfast.c) against its Python twin (udpbatch + hotpath), on
real loopback sockets: same replies to the same clients, same rcodes, same datagrams left for the
slow path, same counts; real names from the shared data and hostile datagrams. Then the sensor on
the C path with real dnspython clients."""

from __future__ import annotations

import collections
import csv
import functools
import importlib
import itertools
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dns.conftest import StartSensor
from tests.native_build import PURE, missing
from tutela.dns import hotpath, udpbatch
from tutela.dns.answercache import AnswerCache

pytestmark = pytest.mark.skipif(not udpbatch.available(), reason="recvmmsg/sendmmsg: Linux only")

NOW = 1000.25
SLOTS, SIZE = 64, 512
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "dns"
_FALLBACK_NAMES = [
    "good.example.com",
    "www.example.org",
    "a.b.c.example.net",
    "xn--nxasmq6b.example",
    "x" * 63 + ".com",
]


def _native() -> Any:
    """The compiled module; a missing build fails unless TUTELA_PURE_PYTHON=1 or TUTELA_ALLOW_NO_NATIVE=1."""
    try:
        return importlib.import_module("tutela._native.udpfast")
    except ImportError:
        missing("udpfast")


def test_the_extension_is_built_and_chosen_unless_python_is_forced() -> None:
    if PURE:
        assert udpbatch._udpfast is None
        return
    module = _native()
    assert udpbatch._udpfast is module


def _real_names(n: int) -> list[str]:
    names: list[str] = []
    tranco = DATA / "benign" / "tranco_top_50k.csv"
    if tranco.exists():
        with tranco.open(newline="") as f:
            names += [row[1] for row in itertools.islice(csv.reader(f), 1, n + 1) if len(row) > 1]
    tunnels = DATA / "tunneling" / "validate.csv"
    if tunnels.exists():  # long, tunnel-like names (near the 253-octet limit)
        with tunnels.open(newline="") as f:
            names += [row[1].rstrip(".") for row in itertools.islice(csv.reader(f), 1, n // 4 + 1) if len(row) > 1]
    names = [x for x in names if x and len(x) <= 250 and all(len(p) < 64 for p in x.split("."))]
    return names or _FALLBACK_NAMES


NAMES = _real_names(200)


def _query(name: str, qtype: str = "A", qid: int = 0, **kw: Any) -> bytes:
    q = dns.message.make_query(name, qtype, **kw)
    q.id = qid
    return q.to_wire()


@functools.cache
def _answers(names: tuple[str, ...]) -> list[tuple[bytes, bytes, int]]:
    """(query, response, question end) for each name, built once (dnspython shuffles records on output)."""
    out = []
    for i, name in enumerate(names):
        wire = _query(name, qid=7, use_edns=(i % 3 == 0))
        q = dns.message.from_wire(wire)
        r = dns.message.make_response(q)
        owner = q.question[0].name
        if i % 7 == 3:
            r.set_rcode(dns.rcode.NXDOMAIN)
            r.authority.append(dns.rrset.from_text(owner, 60, "IN", "SOA", "ns. host. 1 2 3 4 30"))
        else:
            count = 40 if i % 11 == 5 else 1 + i % 3  # some answers over a slot
            r.answer.append(dns.rrset.from_text(owner, 300, "IN", "A", *(f"192.0.2.{k}" for k in range(1, count + 1))))
        out.append((wire, r.to_wire(), len(wire) - (11 if i % 3 == 0 else 0)))
    return out


def _entries(names: list[str]) -> dict[bytes, Any]:
    """An answer cache's entries for `names` (the same each call): fresh, stale TTLs (age changed
    since `aged` was built), expired for the hot path, with and without passive-DNS keys, NXDOMAIN,
    answers larger than a 512-byte slot."""
    cache = AnswerCache(10_000)
    for i, (wire, response, qend) in enumerate(_answers(tuple(names))):
        stored = NOW - (i % 5) * 1.5  # ages 0..6 s
        entry = cache.put(wire[2:], response, qend, stored)
        assert entry is not None, names[i]
        entry.until = NOW - 1 if i % 9 == 4 else NOW + 100  # some no longer on the hot path
        entry.passive = (f"{names[i]}|A",) if i % 2 else ()
        if i % 13 == 6:
            entry.age = 99  # aged bytes out of date: rebuilt from the entry
    return cache._entries


class Side:
    """One implementation on its own server socket, with its own copy of the cache state."""

    def __init__(self, native: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.batch = udpbatch.BatchSocket(self.sock, slots=SLOTS, size=SIZE, native=native)
        self.entries = _entries(NAMES)
        self.clients: collections.Counter[str] = collections.Counter()
        self.served: list[Any] = []
        self.addr = self.sock.getsockname()

    def serve(self) -> Any:
        return self.batch.serve(self.entries, self.clients, self.served, lambda: NOW, hotpath.aged)

    def state(self) -> Any:
        served = [(e.body, e.served) for e in self.served]
        return dict(self.clients), served, self.batch.truncated, self.batch.hot_errors, self.batch.send_errors

    def close(self) -> None:
        self.batch.close()


@pytest.fixture(scope="module")
def clients() -> Iterator[list[socket.socket]]:
    socks = []
    for _ in range(4):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        socks.append(s)
    yield socks
    for s in socks:
        s.close()


def _drain(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(70000))
        except BlockingIOError:
            return out


def _compare(datagrams: list[tuple[int, bytes]], clients: list[socket.socket]) -> None:
    c, py = Side(_native()), Side(None)
    try:
        results = []
        for side in (c, py):
            for who, data in datagrams:
                clients[who].sendto(data, side.addr)
            got = side.serve()
            replies = [sorted(_drain(s)) for s in clients]
            results.append((got, replies, side.state()))
        (cgot, creplies, cstate), (pgot, preplies, pstate) = results
        if not datagrams:
            assert cgot is None and pgot is None
            return
        crcodes, crest, cnow, cn = cgot
        prcodes, prest, pnow, pn = pgot
        assert (crcodes, cnow, cn) == (prcodes, pnow, pn)
        assert [(d, c.batch.address(a)) for d, a in crest] == [(d, py.batch.address(a)) for d, a in prest]
        assert creplies == preplies
        assert cstate == pstate
    finally:
        c.close()
        py.close()


def _known(i: int, qid: int) -> bytes:
    return _query(NAMES[i % len(NAMES)], qid=qid, use_edns=(i % len(NAMES)) % 3 == 0)


_hostile = st.one_of(
    st.binary(max_size=40),
    st.binary(min_size=SIZE - 8, max_size=SIZE + 200),  # around the slot size: some cut by the kernel
    st.builds(lambda q, junk: q + junk, st.integers(0, 10_000).map(lambda i: _known(i, 1)), st.binary(max_size=8)),
    st.sampled_from([b"", b"\0", b"\0" * 12, bytes(range(256)), b"\xff" * 300, "é.example".encode(), b"\xc0\x0c" * 9]),
)
_datagram = st.one_of(st.builds(_known, st.integers(0, 10_000), st.integers(0, 0xFFFF)), _hostile)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 3), _datagram), max_size=SLOTS))
def test_c_and_python_give_the_same_answers_and_counts(clients: list[socket.socket], batch: list[Any]) -> None:
    _compare(batch, clients)


def test_every_real_name_and_every_byte_value(clients: list[socket.socket]) -> None:
    rng = random.Random(3)
    known = [(i % 4, _known(i, rng.getrandbits(16))) for i in range(len(NAMES))]
    for start in range(0, len(known), SLOTS):  # every real name, in full batches
        _compare(known[start : start + SLOTS], clients)
    every_byte = [(b % 4, bytes([b]) * (1 + b % 13)) for b in range(256)]
    for start in range(0, 256, SLOTS):
        _compare(every_byte[start : start + SLOTS], clients)
    _compare([(0, b"x" * 300 + "ü".encode() + b"\0" * 9)], clients)  # a name past 253, non-ASCII, NULs


def test_a_batch_larger_than_the_slots_is_read_in_turns(clients: list[socket.socket]) -> None:
    side = Side(_native())
    try:
        for i in range(3 * SLOTS + 5):
            clients[i % 4].sendto(_known(0 if i % 2 else 1, i), side.addr)
        sizes = []
        while (got := side.serve()) is not None:
            sizes.append(got[3])
        assert sizes == [SLOTS, SLOTS, SLOTS, 5]
        replies = sum((len(_drain(s)) for s in clients), 0)
        assert replies == 3 * SLOTS + 5  # names 0 and 1 are fresh hot-path entries
        assert sum(side.clients.values()) == 3 * SLOTS + 5
    finally:
        side.close()


class _BadEntry:
    """An entry whose reads fail: the C loop must count it and leave the datagram to the slow path."""

    until = NOW + 100

    @property
    def age(self) -> int:
        raise RuntimeError("broken")


def test_a_python_error_on_one_datagram_is_counted_and_the_others_still_answered(
    clients: list[socket.socket],
) -> None:
    for native in (_native(), None):
        side = Side(native)
        try:
            bad = _query("broken.example", qid=1)
            side.entries[bad[2:]] = _BadEntry()
            for data in (_known(1, 5), bad, _known(1, 6)):
                clients[0].sendto(data, side.addr)
            rcodes, rest, _, n = side.serve()
            assert (len(rcodes), [d for d, _ in rest], n) == (2, [bad], 3)
            assert side.batch.hot_errors == 1
            assert len(_drain(clients[0])) == 2
        finally:
            side.close()


def test_hot_socket_rejects_bad_sizes_and_bad_addresses() -> None:
    module = _native()
    for slots, size in ((0, 512), (2000, 512), (4, 4), (4, 70000)):
        with pytest.raises(ValueError):
            module.HotSocket(0, False, slots, size)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        hot = module.HotSocket(s.fileno(), False, 4, 512)
        hot.send(b"x", b"")  # too short for an address
        hot.send(b"x", bytes(200))  # too long
        hot.send(b"x", bytes(16))  # family 0: the kernel refuses it
        assert hot.send_errors == 3
        with pytest.raises(TypeError):
            hot.serve({}, {}, "not a list", time.monotonic, hotpath.aged)
        assert hot.serve({}, {}, [], time.monotonic, hotpath.aged) is None  # nothing waiting: never blocks


def test_python_code_run_by_serve_cannot_reenter_it(clients: list[socket.socket]) -> None:
    side = Side(_native())
    try:

        class Reentrant(collections.Counter):  # type: ignore[type-arg]
            def __missing__(self, key: Any) -> int:
                side.serve()  # would reuse the rings mid-batch: refused, counted, the batch goes on
                return 0

        side.clients = Reentrant()
        for qid in (1, 2):
            clients[0].sendto(_known(1, qid), side.addr)
        rcodes, rest, _, n = side.serve()
        assert (len(rcodes), rest, n) == (2, [], 2)
        assert len(_drain(clients[0])) == 2
        assert side.batch.hot_errors == 2  # each count failed (after its reply went out)
        assert side.serve() is None  # usable again
    finally:
        side.close()


def test_ipv6_senders_are_answered_and_counted_alike() -> None:
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    seen = []
    for native in (_native(), None):
        server = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        server.bind(("::1", 0))
        batch = udpbatch.BatchSocket(server, slots=SLOTS, size=SIZE, native=native)
        entries = _entries(NAMES)
        counts: collections.Counter[str] = collections.Counter()
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as client:
            client.bind(("::1", 0))
            client.setblocking(False)
            for qid in range(3):
                client.sendto(_known(1, qid), server.getsockname())
            rcodes, rest, _, n = batch.serve(entries, counts, [], lambda: NOW, hotpath.aged)
            replies = sorted(_drain(client))
        batch.close()
        assert (len(rcodes), rest, n, len(replies)) == (3, [], 3, 3)
        seen.append((rcodes, replies, dict(counts)))
    assert seen[0] == seen[1]
    assert seen[0][2] == {"::1": 3}


@pytest.mark.network
def test_sensor_on_the_c_path_answers_many_clients_and_counts_them(upstream: int, start_sensor: StartSensor) -> None:
    s = start_sensor([f"127.0.0.1:{upstream}"])
    batch = s.sensor._batch
    assert batch is not None
    assert batch.native is (not PURE and udpbatch._udpfast is not None)
    first = dns.query.udp(dns.message.make_query("good.example.com", "A"), "127.0.0.1", port=s.port, timeout=5)
    names = ("good.example.com", "www.example.org", "nothere.example.com")
    for name in names:  # answered upstream (the cache then holds it), then once from the cache in Python, which
        for _ in range(2):  # arms the hot path: unarmed, each client's first batch would go the slow way
            dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=s.port, timeout=5)
    errors: list[BaseException] = []
    per_client = 150

    def client(k: int) -> None:
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(5)
                sent = {}
                for i in range(per_client):  # bursts of 1..50 before reading: small and big batches
                    q = dns.message.make_query(names[(i + k) % 3], "A")
                    q.id = i
                    sent[i] = q
                    sock.sendto(q.to_wire(), ("127.0.0.1", s.port))
                    if i % 50 == 49 or k % 2:
                        while len([r for r in sent.values() if r is None]) < len(sent):
                            r = dns.message.from_wire(sock.recv(4096))
                            assert sent[r.id] is not None and r.question == sent[r.id].question
                            sent[r.id] = None  # type: ignore[assignment]
                assert all(v is None for v in sent.values())
        except BaseException as exc:
            errors.append(exc)

    m = s.engine.metrics
    hot_before = m.hot_hits()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    # the two names with answers from the hot path (Unbound's NXDOMAIN here carries no SOA: not cached)
    assert m.hot_hits() - hot_before >= 8 * per_client * 2 // 3 - 16
    assert s.engine.top.clients["127.0.0.1"] >= 8 * per_client + 7
    counts = m.response_counts()
    assert counts[0] >= 8 * per_client * 2 // 3 and counts[3] >= 8 * per_client // 3 - 8  # NOERROR, NXDOMAIN
    s.sensor.drain_served()
    assert first.answer
    # hostile datagrams: cut by the kernel, junk, a response, an empty one; the sensor stays up
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for junk in (b"", b"\0" * 3, bytes(range(256)), first.to_wire(), first.to_wire() + b"\0" * 5000):
            sock.sendto(junk, ("127.0.0.1", s.port))
    r = dns.query.udp(dns.message.make_query("good.example.com", "A"), "127.0.0.1", port=s.port, timeout=5)
    assert r.answer == first.answer
    render = m.render()
    assert "tutela_dns_udp_truncated_total 1" in render
    assert "tutela_dns_udp_send_errors_total 0" in render
    assert "tutela_dns_hot_errors_total 0" in render
