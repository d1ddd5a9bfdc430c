"""The answer cache and the sensor's fast path: TTLs honoured and decremented, bounded, and no verdict skipped
(request-side verdicts, rebinding on answers, NXDOMAIN bursts per client on cached answers)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rrset
import pytest

from tests.dns.test_fastpath import _Capture, captured_sensor
from tutela.core import stalls as stalls_mod
from tutela.core.registry import DetectorRegistry
from tutela.dns import server as server_mod
from tutela.dns import wire
from tutela.dns.answercache import AnswerCache, ttl_layout
from tutela.dns.server import DnsSensor


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _response(query: bytes, records: list[str], *, rcode: int = 0, authority: list[str] = ()) -> bytes:  # type: ignore[assignment]
    msg = dns.message.from_wire(query)
    resp = dns.message.make_response(msg)
    resp.set_rcode(rcode)
    for text in records:
        resp.answer.append(_rrset(text))
    for text in authority:
        resp.authority.append(_rrset(text))
    return resp.to_wire()


def _rrset(text: str) -> dns.rrset.RRset:
    name, ttl, rdclass, rdtype, rdata = text.split(None, 4)
    return dns.rrset.from_text(name, int(ttl), rdclass, rdtype, rdata)


def _query(name: str, qid: int, qtype: str = "A") -> bytes:
    msg = dns.message.make_query(name, qtype, use_edns=0, payload=1232)
    msg.id = qid
    return msg.to_wire()


def _ttls(packet: bytes) -> list[int]:
    return [rrset.ttl for rrset in dns.message.from_wire(packet).answer]


SOA = "example.com. 600 IN SOA ns.example.com. host.example.com. 1 3600 600 86400 60"


# -- the cache on its own --------------------------------------------------------------------------


def test_layout_finds_every_ttl_and_the_lifetime() -> None:
    q = _query("www.example.com", 1)
    end = wire.parse_query(q).end
    positive = _response(q, ["www.example.com. 300 IN A 192.0.2.1", "www.example.com. 120 IN A 192.0.2.2"])
    offsets, ttls, lifetime = ttl_layout(positive, end)  # type: ignore[misc]
    assert sorted(ttls) == [120, 300] and lifetime == 120  # OPT's "TTL" (flags) is not a TTL
    assert all(struct.unpack_from("!I", positive, o)[0] in (120, 300) for o in offsets)
    negative = _response(q, [], rcode=dns.rcode.NXDOMAIN, authority=[SOA])
    assert ttl_layout(negative, end)[2] == -60  # type: ignore[index]  # min(SOA TTL, SOA MINIMUM), negative
    assert ttl_layout(_response(q, [], rcode=dns.rcode.NXDOMAIN), end) is None  # no SOA: not cacheable
    assert ttl_layout(_response(q, [], rcode=dns.rcode.SERVFAIL), end) is None
    tc = bytearray(positive)
    tc[2] |= 0x02
    assert ttl_layout(bytes(tc), end) is None
    assert ttl_layout(positive + b"junk", end) is None
    assert ttl_layout(positive[:-3], end) is None


def test_hits_decrement_ttls_and_expire() -> None:
    cache = AnswerCache(100)
    q = _query("www.example.com", 1)
    resp = _response(q, ["www.example.com. 300 IN A 192.0.2.1"])
    assert cache.put(q[2:], resp, wire.parse_query(q).end, now=0.0) is not None
    entry = cache.lookup(q[2:], 0.5)
    assert entry is not None and cache.body(entry, 0.5) == resp[2:]
    assert _ttls(b"\x00\x01" + cache.body(entry, 100.7)) == [200]  # 100 whole seconds of age
    assert cache.lookup(q[2:], 299.9) is not None and cache.lookup(q[2:], 300.0) is None
    assert cache.lookup(_query("www.example.com", 2, "AAAA")[2:], 0.0) is None


def test_zero_ttl_and_caps() -> None:
    cache = AnswerCache(100, max_ttl=60)
    q = _query("www.example.com", 1)
    end = wire.parse_query(q).end
    assert cache.put(q[2:], _response(q, ["www.example.com. 0 IN A 192.0.2.1"]), end, 0.0) is None
    entry = cache.put(q[2:], _response(q, ["www.example.com. 86400 IN A 192.0.2.1"]), end, 0.0)
    assert entry is not None and entry.expires == 60.0


def test_bounded() -> None:
    cache = AnswerCache(640)
    for i in range(5000):
        q = _query(f"n{i}.example.com", 1)
        cache.put(q[2:], _response(q, [f"n{i}.example.com. 300 IN A 192.0.2.1"]), wire.parse_query(q).end, 0.0)
        assert len(cache) <= 640
    assert cache.evictions >= 5000 - 640
    newest = _query("n4999.example.com", 1)
    assert cache.lookup(newest[2:], 1.0) is not None  # the oldest go first


# -- the sensor with it ----------------------------------------------------------------------------


def _sensor(home: Path, monkeypatch: pytest.MonkeyPatch, dns_settings: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    clock = _Clock()
    monkeypatch.setattr(server_mod, "_monotonic", clock)
    monkeypatch.setattr("tutela.dns.engine.time.monotonic", clock)
    config = {
        "detectors": {
            "dns": [
                {"id": "dns.blocklist", "params": {"deny": ["ads.example.net"]}},
                {"id": "dns.rebinding"},
                {"id": "dns.nxdomain_burst", "params": {"threshold": 3}},
            ]
        },
        "dns": dns_settings or {},
    }
    return (*captured_sensor(home, config, DetectorRegistry.load()), clock)


def _ask(sensor: DnsSensor, client: _Capture, upstream: _Capture, query: bytes, addr: Any, answer: Any) -> bytes:
    """One query; when it is forwarded, the upstream answers with answer(forwarded)."""
    before = len(upstream.sent)
    sensor.on_query(query, addr)
    if len(upstream.sent) > before:
        forwarded = upstream.sent[-1][0]
        sensor.on_upstream(0, answer(forwarded))
    reply, to = client.sent[-1]
    assert to == addr and reply[:2] == query[:2]
    return reply


def test_repeats_come_from_the_cache_with_the_clients_id_and_aged_ttls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sensor, client, upstream, clock = _sensor(tmp_path / "home", monkeypatch)

    def good(fwd: bytes) -> bytes:
        return _response(fwd, ["www.example.com. 300 IN A 192.0.2.1"])

    first = _ask(sensor, client, upstream, _query("www.example.com", 1), ("10.0.0.1", 5), good)
    assert _ttls(first) == [300] and len(upstream.sent) == 1
    clock.now += 42.3
    again = _ask(sensor, client, upstream, _query("www.example.com", 777), ("10.0.0.2", 6), good)
    assert len(upstream.sent) == 1 and _ttls(again) == [258]
    assert dns.message.from_wire(again).answer == dns.message.from_wire(first).answer
    clock.now += 258
    _ask(sensor, client, upstream, _query("www.example.com", 3), ("10.0.0.1", 5), good)
    assert len(upstream.sent) == 2  # expired: asked again
    assert sensor.answers is not None and sensor.metrics.answer_cache_hits() == 1


def test_blocked_names_are_blocked_before_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sensor, client, upstream, _ = _sensor(tmp_path / "home", monkeypatch)
    for i in range(3):
        reply = _ask(sensor, client, upstream, _query("ads.example.net", i), ("10.0.0.1", 5), lambda f: b"")
        assert reply[3] & 0x0F == wire.NXDOMAIN
    assert upstream.sent == []


def test_rebinding_answers_are_never_cached_and_blocked_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sensor, client, upstream, _ = _sensor(tmp_path / "home", monkeypatch)

    def private(fwd: bytes) -> bytes:
        return _response(fwd, ["evil.example.com. 300 IN A 192.168.1.10"])

    for i in range(4):
        reply = _ask(sensor, client, upstream, _query("evil.example.com", i), ("10.0.0.1", 5), private)
        assert reply[3] & 0x0F == wire.NXDOMAIN
    assert len(upstream.sent) == 4 and sensor.answers is not None and len(sensor.answers) == 0
    assert sensor.metrics.verdicts[("block", "rebinding")] == 4


def test_nxdomain_bursts_count_cached_answers_per_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sensor, client, upstream, _ = _sensor(tmp_path / "home", monkeypatch)

    def nx(fwd: bytes) -> bytes:
        return _response(fwd, [], rcode=dns.rcode.NXDOMAIN, authority=[SOA])

    codes = [
        _ask(sensor, client, upstream, _query("gone.example.com", i), ("10.0.0.9", 5), nx)[3] & 0x0F for i in range(6)
    ]
    assert len(upstream.sent) == 1  # one upstream NXDOMAIN, five from the cache
    assert sensor.metrics.verdicts[("alert", "nxdomain-burst")] >= 1  # threshold 3: the burst is seen
    assert codes == [wire.NXDOMAIN] * 6


def test_cache_off_forwards_every_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sensor, client, upstream, _ = _sensor(tmp_path / "home", monkeypatch, {"answer_cache_size": 0})

    def good(fwd: bytes) -> bytes:
        return _response(fwd, ["www.example.com. 300 IN A 192.0.2.1"])

    for i in range(3):
        _ask(sensor, client, upstream, _query("www.example.com", i), ("10.0.0.1", 5), good)
    assert len(upstream.sent) == 3 and sensor.answers is None


def test_other_flags_or_edns_are_other_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sensor, client, upstream, _ = _sensor(tmp_path / "home", monkeypatch)

    def good(fwd: bytes) -> bytes:
        return _response(fwd, ["www.example.com. 300 IN A 192.0.2.1"])

    _ask(sensor, client, upstream, _query("www.example.com", 1), ("10.0.0.1", 5), good)
    plain = dns.message.make_query("www.example.com", "A")  # no EDNS
    plain.id = 2
    _ask(sensor, client, upstream, plain.to_wire(), ("10.0.0.1", 5), good)
    dnssec = dns.message.make_query("www.example.com", "A", want_dnssec=True)  # DO bit
    dnssec.id = 3
    _ask(sensor, client, upstream, dnssec.to_wire(), ("10.0.0.1", 5), good)
    assert len(upstream.sent) == 3


def test_gc_tick_freezes_survivors_and_a_full_pass_unfreezes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import gc

    sensor, *_ = _sensor(tmp_path / "home", monkeypatch, {"gc_freeze_s": 60, "gc_full_s": 100})
    monkeypatch.setattr(stalls_mod.time, "monotonic", lambda: 1000.0)

    async def tick() -> tuple[int, int]:
        sensor.gc.full_at = 2000.0  # not due: freeze the survivors, no collection
        young = gc.get_stats()[0]["collections"]
        survivor: list[object] = [object()]
        sensor.gc.tick()
        frozen = gc.get_freeze_count()
        assert gc.get_stats()[0]["collections"] == young  # no pause on the data path
        assert gc.get_count()[0] < 10 and survivor
        sensor.gc.full_at = 0.0  # due: unfreeze, full collection, freeze again
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        before = gc.get_stats()[2]["collections"]
        sensor.gc.tick()
        sensor.gc._closing = True  # stop rescheduling
        return frozen, gc.get_stats()[2]["collections"] - before

    try:
        frozen, full_runs = asyncio.run(tick())
        assert frozen > 0 and full_runs == 1 and sensor.gc.full_at == 1100.0
    finally:
        gc.unfreeze()


def test_hot_path_ends_with_the_verdict_and_every_total_counts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repeat is served from the hot path only while its request-side verdict is fresh: after the
    verdict cache's TTL the query is judged again (then served from the cache and re-armed)."""
    sensor, client, upstream, clock = _sensor(tmp_path / "home", monkeypatch, {"cache_ttl_s": 10})
    m = sensor.metrics

    def good(fwd: bytes) -> bytes:
        return _response(fwd, ["www.example.com. 300 IN A 192.0.2.1"])

    _ask(sensor, client, upstream, _query("www.example.com", 1), ("10.0.0.1", 5), good)
    clock.now += 1
    _ask(sensor, client, upstream, _query("www.example.com", 2), ("10.0.0.2", 5), good)
    assert m.hot[wire.NOERROR] == 1 and len(upstream.sent) == 1
    misses = m.cache_misses
    clock.now += 10  # the verdict expired, the answer has not
    again = _ask(sensor, client, upstream, _query("www.example.com", 3), ("10.0.0.1", 5), good)
    assert m.hot[wire.NOERROR] == 1 and m.cache_misses == misses + 1  # judged again, not hot
    assert len(upstream.sent) == 1 and _ttls(again) == [289]  # ... and answered from the cache
    clock.now += 1
    _ask(sensor, client, upstream, _query("www.example.com", 4), ("10.0.0.1", 5), good)
    assert m.hot[wire.NOERROR] == 2  # re-armed
    body = m.render()
    assert 'tutela_dns_queries_total{transport="udp"} 4' in body
    assert 'tutela_dns_responses_total{rcode="NOERROR"} 4' in body
    assert "tutela_dns_latency_seconds_count 4" in body
    assert "tutela_dns_answer_cache_hits_total 3" in body
    assert 'tutela_dns_verdicts_total{action="allow",category="-"} 4' in body
    assert sensor.engine.top.clients == {"10.0.0.1": 3, "10.0.0.2": 1}


def test_dga_sessions_count_cached_answers_per_client_and_repeats_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr(server_mod, "_monotonic", clock)
    monkeypatch.setattr("tutela.dns.engine.time.monotonic", clock)
    config = {"detectors": {"dns": [{"id": "dns.dga_session", "params": {"threshold": 3}}]}}
    sensor, client, upstream = captured_sensor(tmp_path / "home", config, DetectorRegistry.load())

    def nx(fwd: bytes) -> bytes:
        return _response(fwd, [], rcode=dns.rcode.NXDOMAIN, authority=[SOA])

    names = ["odacerkrxkxuca.com", "iszcmktsloipqeg.com", "xmrzgvawqtcjf.net"]  # the DGA model: high
    a, b = ("10.0.0.9", 5), ("10.0.0.10", 6)
    for i in range(4):  # one upstream NXDOMAIN, three from the cache: one domain, not a session
        _ask(sensor, client, upstream, _query(names[0], i), a, nx)
    assert len(upstream.sent) == 1 and sensor.metrics.verdicts[("block", "dga-session")] == 0
    _ask(sensor, client, upstream, _query(names[1], 10), a, nx)
    assert sensor.metrics.verdicts[("block", "dga-session")] == 0
    _ask(sensor, client, upstream, _query(names[2], 11), a, nx)
    assert sensor.metrics.verdicts[("block", "dga-session")] == 1  # the third distinct domain
    sent = len(upstream.sent)
    codes = [_ask(sensor, client, upstream, _query(n, 20 + j), b, nx)[3] & 0x0F for j, n in enumerate(names)]
    # another client: two from the cache; the third was forwarded (its first answer, blocked, was not cached)
    assert len(upstream.sent) - sent == 1
    assert sensor.metrics.verdicts[("block", "dga-session")] == 2  # counted for that client too
    assert codes == [wire.NXDOMAIN] * 3
