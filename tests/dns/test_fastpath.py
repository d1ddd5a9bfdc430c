"""The hot path's shortcuts keep behaviour: the question memo, the in-place EDNS read, fast-flux coalescing,
and the sensor driven in process (no sockets) through the same callbacks uvloop calls."""

from __future__ import annotations

import struct
import time
from pathlib import Path
from typing import Any, ClassVar

import dns.message
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tutela.core.config import load_settings
from tutela.core.detector import DetectorConfig, ScanContext
from tutela.core.findings import Finding, Severity
from tutela.core.models import ModelCache
from tutela.core.registry import DetectorRegistry
from tutela.dns import wire
from tutela.dns.engine import DnsEngine
from tutela.dns.server import DnsSensor
from tutela.dns.subjects import DnsAnswer, DnsQuery, DnsResponse
from tutela.dns.takeover.fastflux import FluxTracker


def _query(name: str, qtype: int = wire.A, qid: int = 1, *, edns: int | None = None) -> bytes:
    packet = wire.build_query(name, qtype, qid)
    if edns is not None:
        packet = packet[:10] + b"\x00\x01" + packet[12:] + b"\x00" + struct.pack("!HHIH", wire.OPT, edns, 0, 0)
    return packet


# -- question memo ---------------------------------------------------------------------------------


def test_memo_hit_equals_a_full_parse_with_this_messages_header() -> None:
    memo = wire.QuestionMemo()
    first = _query("www.Example.com", qid=7)
    assert memo.parse(first) == wire.parse_query(first) and memo.hits == 0
    again = struct.pack("!HH", 4242, 0x0110) + first[4:]  # another id, CD set: same question bytes
    assert memo.parse(again) == wire.parse_query(again) and memo.hits == 1
    assert memo.parse(again).id == 4242 and memo.parse(again).name == "www.example.com"
    # another case is another key, parsed (and lower-cased) in full
    assert memo.parse(_query("WWW.example.com")).name == "www.example.com"


def test_memo_never_remembers_compressed_names_or_zero_bytes_in_labels() -> None:
    memo = wire.QuestionMemo()
    # a label holding a zero byte: the first zero is not the end of the name
    odd = wire._HEADER.pack(1, 0x0100, 1, 0, 0, 0) + b"\x03a\x00b\x03com\x00" + struct.pack("!HH", 1, 1)
    for _ in range(2):
        assert memo.parse(odd) == wire.parse_query(odd)
    assert memo.hits == 0 and len(memo._memo) == 0
    # a packet sharing the bytes up to that zero but malformed after it still fails
    with pytest.raises(wire.WireError):
        memo.parse(odd[:16])


def test_memo_still_rejects_what_the_parser_rejects() -> None:
    memo = wire.QuestionMemo()
    good = _query("example.com")
    memo.parse(good)
    two_questions = good[:4] + b"\x00\x02" + good[6:]
    with pytest.raises(wire.WireError):
        memo.parse(two_questions)
    with pytest.raises(wire.WireError):
        memo.parse(good[:-2])  # type/class truncated: the key would run past the end


def test_memo_is_bounded() -> None:
    memo = wire.QuestionMemo(max_size=10)
    for i in range(25):
        memo.parse(_query(f"n{i}.example.com"))
    assert len(memo._memo) <= 10


_MEMO = wire.QuestionMemo(max_size=64)  # shared across examples, so fuzzed packets also hit


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "b", "xn--p1ai", "A", "0", "-"]), min_size=1, max_size=4),
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 255)), max_size=3),
    st.integers(12, 60),
)
def test_fuzz_memo_agrees_with_the_parser(labels: list[str], flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_query(".".join(labels), qid=len(labels)))
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    packet = bytes(data[:cut])
    try:
        expected: Any = wire.parse_query(packet)
    except wire.WireError:
        expected = wire.WireError
    for _ in range(2):
        try:
            got: Any = _MEMO.parse(packet)
        except wire.WireError:
            got = wire.WireError
        assert got == expected


# -- EDNS size read in place -----------------------------------------------------------------------


@pytest.mark.parametrize("payload", [100, 512, 1232, 4096, 65535])
def test_edns_size_matches_dnspython_queries(payload: int) -> None:
    data = dns.message.make_query("example.com", "A", use_edns=0, payload=payload).to_wire()
    assert wire.edns_udp_size(data, wire.parse_query(data)) == max(512, payload)


def test_edns_size_other_records_first_and_truncated_opt() -> None:
    q = _query("example.com", edns=4096)
    parsed = wire.parse_query(q)
    assert wire.edns_udp_size(q[:-1], wire.parse_query(q[:-1])) is None  # OPT cut short: no EDNS
    assert wire.edns_udp_size(q, parsed) == 4096
    assert wire.edns_udp_size(_query("example.com"), wire.parse_query(_query("example.com"))) is None


# -- fast-flux coalescing --------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _resp(name: str, addresses: list[str], ttl: int = 30) -> DnsResponse:
    return DnsResponse(DnsQuery(name, 1), 0, tuple(DnsAnswer(name, 1, ttl, a) for a in addresses))


def test_flux_repeats_within_coalesce_window_reuse_results_and_skip_the_work() -> None:
    clock = _Clock()
    tracker = FluxTracker(coalesce_s=1.0, clock=clock)
    bots = [f"{10 + i}.{i}.0.1" for i in range(12)]
    flagged = tracker.observe(_resp("flux.bad.com", bots))
    assert flagged and flagged[0].kind == "fast_flux"
    seen = tracker._flux["flux.bad.com"].addresses[bots[0]][0]
    clock.now += 0.5
    assert tracker.observe(_resp("flux.bad.com", bots)) == flagged  # the same finding again
    assert tracker._flux["flux.bad.com"].addresses[bots[0]][0] == seen  # not re-observed
    clock.now += 0.6  # past the window: observed again, timestamps refreshed
    assert tracker.observe(_resp("flux.bad.com", bots)) == [r for r in flagged]
    assert tracker._flux["flux.bad.com"].addresses[bots[0]][0] == clock.now
    # another TTL or address set is another answer: never coalesced
    assert tracker.observe(_resp("flux.bad.com", bots, ttl=29))
    assert tracker._flux["flux.bad.com"].min_ttl == 29


def test_flux_coalescing_off() -> None:
    clock = _Clock()
    tracker = FluxTracker(coalesce_s=0, clock=clock)
    tracker.observe(_resp("a.example.com", ["192.0.2.1"]))
    clock.now += 0.1
    tracker.observe(_resp("a.example.com", ["192.0.2.1"]))
    assert tracker._flux["a.example.com"].addresses["192.0.2.1"][0] == clock.now and not tracker._recent


# -- the sensor in process -------------------------------------------------------------------------


class _Capture:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.sent.append((data, addr))

    def close(self) -> None:
        return


class _CountingConfig(DetectorConfig):
    pass


class CountingCached:
    """Cacheable: runs once per (name, type) per verdict TTL; flags names under bad.test."""

    id: ClassVar[str] = "dns.test_counting_cached"
    version: ClassVar[str] = "1"
    pillar: ClassVar[str] = "dns"
    side: ClassVar[str] = "request"
    categories: ClassVar[tuple[str, ...]] = ("test",)
    description: ClassVar[str] = "test"
    Config: ClassVar[type[DetectorConfig]] = _CountingConfig
    calls: ClassVar[list[str]] = []

    def __init__(self, config: Any, models: ModelCache) -> None:
        return

    def detect(self, subject: DnsQuery, ctx: ScanContext) -> list[Finding]:
        CountingCached.calls.append(subject.name)
        if not subject.name.endswith("bad.test"):
            return []
        return [
            Finding.of(
                match=subject.name, detector=self.id, detector_version="1", rule="bad", category="test",
                severity=Severity.HIGH, confidence=1.0, message="bad",
            )
        ]  # fmt: skip


class CountingPerClient(CountingCached):
    """Per-client state: must see every query, repeats and memo hits included."""

    id: ClassVar[str] = "dns.test_counting_client"
    cacheable: ClassVar[bool] = False
    seen: ClassVar[list[tuple[str, str]]] = []

    def detect(self, subject: DnsQuery, ctx: ScanContext) -> list[Finding]:
        CountingPerClient.seen.append((subject.client, subject.name))
        return []


def captured_sensor(
    home: Path, config: dict[str, Any], registry: DetectorRegistry
) -> tuple[DnsSensor, _Capture, _Capture]:
    """A sensor built from `config` whose client and upstream sockets are captures (no network)."""
    home.mkdir(parents=True)
    (home / "config.yaml").write_text(yaml.safe_dump(config))
    settings = load_settings(home / "config.yaml", detectors=registry)
    engine = DnsEngine.from_settings(settings, registry)
    sensor = DnsSensor(engine, "127.0.0.1:0", ["127.0.0.1:9"])
    client, upstream = _Capture(), _Capture()
    sensor._udp = client  # type: ignore[assignment]
    sensor.upstreams[0].transport = upstream  # type: ignore[assignment]
    return sensor, client, upstream


def _sensor(home: Path, ttl: float) -> tuple[DnsSensor, _Capture, _Capture]:
    registry = DetectorRegistry.load().override(
        {"dns.test_counting_cached": CountingCached, "dns.test_counting_client": CountingPerClient}  # type: ignore[dict-item]
    )
    config = {
        "detectors": {"dns": [{"id": "dns.test_counting_cached"}, {"id": "dns.test_counting_client"}]},
        "dns": {"cache_ttl_s": ttl},
    }
    return captured_sensor(home, config, registry)


def _answer(forwarded: bytes) -> bytes:
    q = wire.parse_query(forwarded)
    head = struct.pack("!HHHHHH", q.id, 0x8180, 1, 1, 0, 0)
    return head + forwarded[12 : q.end] + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([192, 0, 2, 1])


def test_sensor_repeats_answer_right_and_per_client_detectors_see_every_query(tmp_path: Path) -> None:
    CountingCached.calls.clear()
    CountingPerClient.seen.clear()
    sensor, client, upstream = _sensor(tmp_path / "home", ttl=300)
    clients = [("10.0.0.1", 1000), ("10.0.0.2", 1001)]
    for i in range(10):
        addr = clients[i % 2]
        sensor.on_query(_query("x.bad.test", qid=100 + i, edns=1232), addr)
        reply, to = client.sent[-1]
        assert to == addr and reply[:2] == struct.pack("!H", 100 + i)
        assert reply[3] & 0x0F == wire.NXDOMAIN and wire.parse_query(reply).name == "x.bad.test"
        sensor.on_query(_query("ok.example.com", qid=200 + i, edns=1232), addr)
        forwarded = upstream.sent[-1][0]
        sensor.on_upstream(0, _answer(forwarded))
        reply, to = client.sent[-1]
        assert to == addr and reply[:2] == struct.pack("!H", 200 + i) and reply[3] & 0x0F == wire.NOERROR
    assert sensor._questions.hits == 18  # the parser ran once per distinct question
    assert sorted(CountingCached.calls) == ["ok.example.com", "x.bad.test"]  # verdict cache: once per name
    assert len(CountingPerClient.seen) == 20 and {c for c, _ in CountingPerClient.seen} == {"10.0.0.1", "10.0.0.2"}


def test_sensor_verdicts_expire_with_the_cache_ttl(tmp_path: Path) -> None:
    CountingCached.calls.clear()
    sensor, client, _ = _sensor(tmp_path / "home", ttl=0.2)
    sensor.on_query(_query("y.bad.test", qid=1), ("10.0.0.1", 1))
    sensor.on_query(_query("y.bad.test", qid=2), ("10.0.0.1", 1))
    assert CountingCached.calls == ["y.bad.test"]
    time.sleep(0.25)
    sensor.on_query(_query("y.bad.test", qid=3), ("10.0.0.1", 1))
    assert CountingCached.calls == ["y.bad.test", "y.bad.test"]  # judged again after the TTL
    assert [r[3] & 0x0F for r, _ in client.sent] == [wire.NXDOMAIN] * 3
