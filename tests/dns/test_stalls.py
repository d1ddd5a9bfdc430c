"""The pieces split out of the forwarder: the fast-path table, the answer cache's passive-DNS drain in
slices, and the loop-lag sampler."""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

from tutela.core.stalls import LagSampler
from tutela.dns import wire
from tutela.dns.cached import DRAIN_SLICE, CachedAnswers
from tutela.dns.fastpath import FastPath
from tutela.dns.metrics import Metrics
from tutela.dns.settings import DnsSettings


def _query(name: str, qid: int = 1) -> bytes:
    return wire.build_query(name, wire.A, qid)


def test_fast_path_remembers_clean_allows_until_they_expire() -> None:
    fast = FastPath(10)
    data = _query("www.example.com")
    q = wire.parse_query(data)
    assert fast.lookup(data, 0.0) is None
    fast.remember(data, q, valid_until=100.0)
    again = struct.pack("!H", 999) + data[2:]  # another id, same question bytes
    hit = fast.lookup(again, 50.0)
    assert hit is not None and hit[0][1:] == ("www.example.com", wire.A, 1) and hit[1] == q.end
    assert fast.lookup(again, 100.0) is None  # expired
    response = again[:2] + bytes([again[2] | 0x80]) + again[3:]
    assert fast.lookup(response, 50.0) is None  # QR set: never the fast path


def test_fast_path_off_or_compressed_questions_are_not_remembered() -> None:
    data = _query("www.example.com")
    q = wire.parse_query(data)
    off = FastPath(10, enabled=False)
    off.remember(data, q, 100.0)
    assert len(off) == 0
    # a question whose name ends in a compression pointer: its first zero octet is not the name's end
    odd = wire._HEADER.pack(1, 0x0100, 1, 0, 0, 0) + b"\x03www\xc0\x0c" + struct.pack("!HH", 1, 1)
    fast = FastPath(10)
    fast.remember(odd, q._replace(end=len(odd)), 100.0)
    assert len(fast) == 0


def test_fast_path_is_bounded() -> None:
    fast = FastPath(64)
    for i in range(200):
        data = _query(f"n{i}.example.com")
        fast.remember(data, wire.parse_query(data), 100.0)
    assert len(fast) <= 64
    newest = _query("n199.example.com")
    assert fast.lookup(newest, 0.0) is not None and fast.lookup(_query("n0.example.com"), 0.0) is None


class _Passive:
    def __init__(self) -> None:
        self.counts: dict[Any, int] = {}

    def observe_keys(self, keys: Any, n: int = 1) -> None:
        for key in keys:
            self.counts[key] = self.counts.get(key, 0) + n


class _Engine:
    def __init__(self) -> None:
        self.passive = _Passive()


class _Entry:
    def __init__(self, i: int) -> None:
        self.passive = ((f"n{i}.example.com", "A", "192.0.2.1"),)
        self.served = 0
        self.age = 0
        self.stored = 0.0
        self.aged = b"\x01\x00" + b"\x00" * 10


def test_served_answers_drain_in_slices_with_the_loop_free_between_them() -> None:
    engine = _Engine()
    cached = CachedAnswers(DnsSettings(), engine)
    entries = [_Entry(i) for i in range(DRAIN_SLICE * 3 + 5)]
    data = _query("x.example.com")
    for e in entries:
        for _ in range(2):
            assert cached.serve(e, data, 0.5)[:2] == data[:2]
    interleaved: list[int] = []

    async def run() -> None:
        cached.counts._drain_tick(None, 0)  # first slice now, the rest on later loop iterations
        interleaved.append(len(engine.passive.counts))
        for _ in range(4):
            await asyncio.sleep(0)
            interleaved.append(len(engine.passive.counts))
        cached.close()

    asyncio.run(run())
    assert interleaved[0] == DRAIN_SLICE  # one slice per callback, not everything at once
    assert interleaved[-1] == len(entries)
    assert all(n == 2 for n in engine.passive.counts.values()) and all(e.served == 0 for e in entries)


def test_lag_sampler_sees_a_stall() -> None:
    metrics = Metrics()
    sampler = LagSampler(metrics.stalls)

    async def run() -> None:
        sampler.start(asyncio.get_running_loop())
        await asyncio.sleep(0.02)
        time.sleep(0.05)  # a stall of the loop
        await asyncio.sleep(0.02)
        sampler.close()

    asyncio.run(run())
    assert metrics.stalls.loop_lag_max_s >= 0.03
    assert "tutela_dns_loop_lag_seconds_bucket" in metrics.render()
