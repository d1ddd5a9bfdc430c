"""The inline sensor against a real Unbound, driven by dig and dnspython."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.resolver
import pytest

from tests.dns.conftest import StartSensor
from tests.dns.unbound import free_port, unbound
from tutela.core.registry import DetectorRegistry

pytestmark = pytest.mark.network


def dig(port: int, *args: str) -> str:
    out = subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(port), "+tries=1", "+time=3", *args],
        capture_output=True,
        text=True,
        timeout=20,
    )
    return out.stdout


def ask(port: int, name: str, rdtype: str = "A", *, tcp: bool = False, **kw: Any) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **kw)
    if tcp:
        return dns.query.tcp(q, "127.0.0.1", port=port, timeout=5)
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=5)


def test_allowed_names_resolve_like_the_upstream(upstream: int, start_sensor: StartSensor) -> None:
    s = start_sensor([f"127.0.0.1:{upstream}"])
    direct = ask(upstream, "good.example.com")
    via = ask(s.port, "good.example.com")
    assert via.rcode() == dns.rcode.NOERROR
    assert via.answer == direct.answer
    assert "93.184.216.34" in dig(s.port, "good.example.com", "+short")
    # dnspython's stub resolver through the sensor, over UDP and TCP
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = ["127.0.0.1"]
    res.port = s.port
    assert [r.address for r in res.resolve("good.example.com", "AAAA")] == ["2606:2800:220:1:248:1893:25c8:1946"]
    assert [r.address for r in res.resolve("good.example.com", "A", tcp=True)] == ["93.184.216.34"]
    # NXDOMAIN from upstream passes through
    assert ask(s.port, "missing.example.com").rcode() == dns.rcode.NXDOMAIN


def test_block_is_nxdomain_with_extended_error_that_dig_parses(upstream: int, start_sensor: StartSensor) -> None:
    s = start_sensor([f"127.0.0.1:{upstream}"])
    out = dig(s.port, "ads.tracker.example.net")
    assert "status: NXDOMAIN" in out
    assert "EDE: 15 (Blocked)" in out
    r = ask(s.port, "ads.tracker.example.net", use_edns=0)
    assert r.rcode() == dns.rcode.NXDOMAIN and r.flags & dns.flags.QR and r.flags & dns.flags.RA
    assert [o.code for o in r.options] == [dns.edns.EDE]
    # without EDNS there is no OPT record, and TCP clients get the same answer
    r = ask(s.port, "ads.tracker.example.net", tcp=True)
    assert r.rcode() == dns.rcode.NXDOMAIN and r.edns < 0
    events = s.events()
    blocked = [e for e in events if e["subject"] == "ads.tracker.example.net" and e["action"] == "block"]
    assert blocked and blocked[0]["category"] == "blocklist"
    assert "dns.blocklist/list" in blocked[0]["attrs"]


def test_refused_block_response(upstream: int, start_sensor: StartSensor) -> None:
    s = start_sensor([f"127.0.0.1:{upstream}"], dns={"block_response": "refused"})
    assert "status: REFUSED" in dig(s.port, "blocked.example.org")


def test_sinkhole_answers_are_real_records(upstream: int, start_sensor: StartSensor) -> None:
    s = start_sensor(
        [f"127.0.0.1:{upstream}"],
        dns={"sinkhole_ipv4": "192.0.2.53", "sinkhole_ipv6": "2001:db8::53", "sinkhole_ttl": 30},
        policy={"rules": [{"category": "blocklist", "action": "sinkhole"}]},
    )
    out = dig(s.port, "ads.tracker.example.net")
    assert "status: NOERROR" in out and "ANSWER: 1" in out
    assert dig(s.port, "ads.tracker.example.net", "+short").strip() == "192.0.2.53"
    assert dig(s.port, "ads.tracker.example.net", "AAAA", "+short").strip() == "2001:db8::53"
    mx = ask(s.port, "ads.tracker.example.net", "MX")
    assert mx.rcode() == dns.rcode.NOERROR and not mx.answer  # NODATA for other types
    a = ask(s.port, "ads.tracker.example.net")
    assert a.answer[0].ttl == 30


def test_rebinding_private_answer_blocked(upstream: int, start_sensor: StartSensor) -> None:
    s = start_sensor([f"127.0.0.1:{upstream}"])
    for name in ("rebind.example.com", "loop.example.com"):
        assert ask(s.port, name).rcode() == dns.rcode.NXDOMAIN, name
    assert ask(s.port, "linklocal.example.com", "AAAA").rcode() == dns.rcode.NXDOMAIN
    # a home-network name may resolve to a private address
    r = ask(s.port, "router.lan")
    assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].address == "192.168.1.1"
    events = [e for e in s.events() if e["category"] == "rebinding"]
    assert {e["subject"] for e in events} == {"rebind.example.com", "loop.example.com", "linklocal.example.com"}
    assert all(json.loads(e["attrs"])["stage"] == "response" for e in events)


def test_edns_and_dnssec_flags_pass_through(upstream: int, start_sensor: StartSensor) -> None:
    s = start_sensor([f"127.0.0.1:{upstream}"])
    q = dns.message.make_query("good.example.com", "A", use_edns=0, payload=4000, want_dnssec=True)
    q.flags |= dns.flags.CD
    direct = dns.query.udp(q, "127.0.0.1", port=upstream, timeout=5)
    via = dns.query.udp(q, "127.0.0.1", port=s.port, timeout=5)
    assert via.edns == 0 and via.ednsflags == direct.ednsflags and via.payload == direct.payload
    assert via.flags == direct.flags
    assert via.to_wire()[2:] == direct.to_wire()[2:]  # byte-for-byte but the id


def test_truncated_upstream_answer_retried_over_tcp(small_udp_upstream: int, start_sensor: StartSensor) -> None:
    s = start_sensor([f"127.0.0.1:{small_udp_upstream}"])
    q = dns.message.make_query("big.example.com", "TXT", use_edns=0, payload=4096)
    r = dns.query.udp(q, "127.0.0.1", port=s.port, timeout=5)
    assert not r.flags & dns.flags.TC
    assert len(r.answer[0]) == 6
    assert s.engine.metrics.tc_retries >= 1
    # a client whose buffer is too small still gets TC and then succeeds over TCP (dig does both)
    out = dig(s.port, "big.example.com", "TXT", "+noedns")
    assert "Truncated, retrying in TCP mode" in out and "ANSWER: 6" in out


def test_upstream_down_servfail_then_recovery(tmp_path: Path, start_sensor: StartSensor) -> None:
    port = free_port()
    s = start_sensor([f"127.0.0.1:{port}"], dns={"timeout_s": 0.3, "max_attempts": 2})
    started = time.monotonic()
    r = ask(s.port, "good.example.com")
    took = time.monotonic() - started
    assert r.rcode() == dns.rcode.SERVFAIL
    assert took < 0.3 * 2 + 0.5
    assert "status: SERVFAIL" in dig(s.port, "good.example.com", "+tcp")
    with unbound(tmp_path / "late", port=port):
        deadline = time.monotonic() + 10
        while True:
            r = ask(s.port, "good.example.com")
            if r.rcode() == dns.rcode.NOERROR or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.rcode() == dns.rcode.NOERROR


def test_failover_to_second_upstream(upstream: int, start_sensor: StartSensor) -> None:
    dead = free_port()
    s = start_sensor([f"127.0.0.1:{dead}", f"127.0.0.1:{upstream}"], dns={"timeout_s": 0.3})
    for _ in range(5):
        assert ask(s.port, "good.example.com").rcode() == dns.rcode.NOERROR
        assert ask(s.port, "good.example.com", tcp=True).rcode() == dns.rcode.NOERROR
    assert s.engine.metrics.upstream_timeouts + s.engine.metrics.upstream_errors >= 1


class Exploding:
    id = "dns.test_exploding"
    version = "1"
    pillar = "dns"
    side = "request"
    cacheable = True
    categories = ("test",)
    description = "raises on every query"

    from tutela.dns.detectors.blocklist import BlocklistConfig as Config  # any DetectorConfig works

    def __init__(self, config: Any, models: Any) -> None:
        pass

    def detect(self, subject: Any, ctx: Any) -> Any:
        raise RuntimeError("boom")


def test_detector_that_raises_fails_open_and_is_recorded(upstream: int, start_sensor: StartSensor) -> None:
    registry = DetectorRegistry.load().override({"dns.test_exploding": Exploding})  # type: ignore[dict-item]
    s = start_sensor([f"127.0.0.1:{upstream}"], detectors=[{"id": "dns.test_exploding"}], registry=registry)
    r = ask(s.port, "good.example.com")
    assert r.rcode() == dns.rcode.NOERROR and r.answer
    assert s.engine.metrics.detector_failures >= 1
    events = s.events()
    assert events and '"RuntimeError"' in events[0]["findings"] and events[0]["action"] == "allow"


def test_detector_that_raises_fails_closed_when_configured(upstream: int, start_sensor: StartSensor) -> None:
    registry = DetectorRegistry.load().override({"dns.test_exploding": Exploding})  # type: ignore[dict-item]
    s = start_sensor(
        [f"127.0.0.1:{upstream}"],
        detectors=[{"id": "dns.test_exploding"}],
        registry=registry,
        policy={"on_error": "closed"},
    )
    assert ask(s.port, "good.example.com").rcode() == dns.rcode.NXDOMAIN


def test_malformed_queries_formerr_or_dropped(upstream: int, start_sensor: StartSensor) -> None:
    s = start_sensor([f"127.0.0.1:{upstream}"])
    good = dns.message.make_query("x.example.com", "A").to_wire()
    cases = {
        "two questions": good[:4] + b"\x00\x02" + good[6:],
        "compression loop": good[:12] + b"\xc0\x0c\x00\x01\x00\x01",
        "truncated question": good[:20],
        "label past end": good[:12] + b"\x3fabc",
    }
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        for what, packet in cases.items():
            sock.sendto(packet, ("127.0.0.1", s.port))
            reply = sock.recv(4096)
            assert reply[:2] == packet[:2], what
            assert reply[3] & 0x0F == 1, what  # FORMERR
        sock.sendto(b"\x01\x02\x03", ("127.0.0.1", s.port))  # too short for a header: dropped
        sock.sendto(good[:2] + b"\x81\x80" + good[4:], ("127.0.0.1", s.port))  # a response: dropped
        with pytest.raises(TimeoutError):
            sock.settimeout(0.5)
            sock.recv(4096)
    assert ask(s.port, "good.example.com").rcode() == dns.rcode.NOERROR
    assert s.engine.metrics.malformed >= 6


def test_tcp_clients_bounded_and_slow_clients_dropped(upstream: int, start_sensor: StartSensor) -> None:
    s = start_sensor([f"127.0.0.1:{upstream}"], dns={"tcp_max_clients": 2, "tcp_idle_s": 0.5})
    idle = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(2)]
    try:
        time.sleep(0.1)
        extra = socket.create_connection(("127.0.0.1", s.port))
        extra.settimeout(2)
        assert extra.recv(10) == b""  # refused: closed at once
        extra.close()
        for sock in idle:  # slow clients (nothing sent) are closed after the idle timeout
            sock.settimeout(3)
            assert sock.recv(10) == b""
        # a client that sends half a message is closed too, and the server still serves
        half = socket.create_connection(("127.0.0.1", s.port))
        half.sendall(struct.pack("!H", 500) + b"\x00" * 10)
        half.settimeout(3)
        assert half.recv(10) == b""
        half.close()
        assert ask(s.port, "good.example.com", tcp=True).rcode() == dns.rcode.NOERROR
    finally:
        for sock in idle:
            sock.close()
    assert s.engine.metrics.tcp_refused >= 1


def test_allowlist_bypasses_detectors(upstream: int, start_sensor: StartSensor) -> None:
    s = start_sensor([f"127.0.0.1:{upstream}"], dns={"allow": ["tracker.example.net"]})
    r = ask(s.port, "ads.tracker.example.net")
    assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].address == "198.51.100.7"


def test_verdict_cache_and_metrics_endpoint(upstream: int, start_sensor: StartSensor) -> None:
    mport = free_port()
    s = start_sensor([f"127.0.0.1:{upstream}"], metrics=f"127.0.0.1:{mport}")
    for _ in range(5):
        ask(s.port, "good.example.com")
    ask(s.port, "ads.tracker.example.net")
    assert s.engine.metrics.verdict_cache_hits() >= 4
    body = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5).read().decode()
    assert 'tutela_dns_queries_total{transport="udp"} 6' in body
    assert 'tutela_dns_verdicts_total{action="block",category="blocklist"} 1' in body
    assert 'tutela_dns_latency_seconds_bucket{le="+Inf"} 6' in body
    assert "tutela_dns_verdict_cache_hits_total" in body
    assert 'tutela_dns_verdicts_total{action="allow",category="-"} 4' in body  # the first was a newly-observed alert


def test_log_allowed_stores_every_query(upstream: int, start_sensor: StartSensor) -> None:
    """With dns.log_allowed, the inline path stores allowed queries too (UDP and TCP)."""
    sensor = start_sensor([f"127.0.0.1:{upstream}"], detectors=[], dns={"log_allowed": True})
    for tcp in (False, True):
        q = dns.message.make_query("www.example.com.", "A")
        send = dns.query.tcp if tcp else dns.query.udp
        send(q, "127.0.0.1", port=sensor.port, timeout=3)
    events = sensor.events()
    assert [(e["subject"], e["action"]) for e in events] == [("www.example.com", "allow")] * 2
    assert {json.loads(e["attrs"])["transport"] for e in events} == {"udp", "tcp"}


def test_rpz_local_data_sinkholes_to_its_address(upstream: int, start_sensor: StartSensor, tmp_path: Path) -> None:
    rpz = tmp_path / "local.rpz"
    rpz.write_text(
        "$ORIGIN rpz.local.\n@ SOA localhost. root.localhost. 1 3600 600 86400 60\n"
        "good.example.com A 10.66.0.1\nwww.example.org CNAME .\n*.tracker.example.net CNAME rpz-passthru.\n"
    )
    s = start_sensor(
        [f"127.0.0.1:{upstream}"],
        detectors=[{"id": "dns.blocklist", "params": {"rpz_files": [str(rpz)], "deny": ["tracker.example.net"]}}],
    )
    assert dig(s.port, "good.example.com", "+short").strip() == "10.66.0.1"
    assert "status: NXDOMAIN" in dig(s.port, "www.example.org")
    # the passthru entry for *.tracker.example.net wins over the deny list for names under it
    r = ask(s.port, "ads.tracker.example.net")
    assert r.rcode() == dns.rcode.NOERROR and r.answer


def test_ipv6_loopback_listener(upstream: int, start_sensor: StartSensor) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    s = start_sensor([f"127.0.0.1:{upstream}"])
    s2_listen = "[::1]:0"
    from tutela.dns.server import DnsSensor

    sensor = DnsSensor(s.engine, s2_listen, [f"127.0.0.1:{upstream}"])
    from tests.dns.conftest import SensorThread

    try:
        t = SensorThread(sensor, None).start()
    except OSError:
        pytest.skip("IPv6 loopback unavailable")
    try:
        q = dns.message.make_query("good.example.com", "A")
        r = dns.query.udp(q, "::1", port=t.port, timeout=5)
        assert r.answer[0][0].address == "93.184.216.34"
        r = dns.query.tcp(q, "::1", port=t.port, timeout=5)
        assert r.answer[0][0].address == "93.184.216.34"
    finally:
        t.stop()
