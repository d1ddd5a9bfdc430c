"""The takeover guards inline: `--protect-zone` reaches dns.hijack, hijacked answers are blocked by the
running sensor on the first answer, an idle guard costs nothing, and parsed answers feed passive DNS."""

from __future__ import annotations

import threading
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from tests.dns.conftest import StartSensor
from tutela.cli.dns import with_protected_zones
from tutela.core.config import load_settings
from tutela.core.registry import DetectorRegistry
from tutela.core.store import EventStore
from tutela.dns.takeover.passive import PassiveDnsRecorder


def ask(port: int, name: str, rtype: str = "A") -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, rtype), "127.0.0.1", port=port, timeout=3)


def test_protect_zone_flag_adds_to_the_hijack_guard(tutela_home: Path) -> None:
    registry = DetectorRegistry.load()
    settings = load_settings(None, detectors=registry)
    out = with_protected_zones(settings, registry, ["Example.COM.", "corp.test"])
    specs = {s.id: s for s in out.detectors["dns"]}
    assert specs["dns.hijack"].params["protect_zones"] == ("example.com", "corp.test")
    assert set(specs) == set(registry.for_pillar("dns"))  # the default pipeline, with the guard configured
    again = with_protected_zones(out, registry, ["example.com", "other.test"])
    hijack = next(s for s in again.detectors["dns"] if s.id == "dns.hijack")
    assert hijack.params["protect_zones"] == ("example.com", "corp.test", "other.test")
    assert with_protected_zones(settings, registry, []) is settings


def test_hijacked_answer_is_blocked_inline_on_first_sight(upstream: int, start_sensor: StartSensor) -> None:
    # good.example.com really answers 93.184.216.34; the pin says it must stay in 198.51.100.0/24.
    pins = {"good.example.com": {"prefixes": ["198.51.100.0/24"]}}
    detectors = [{"id": "dns.hijack", "params": {"protect_zones": ["example.com"], "pins": pins}}]
    s = start_sensor([f"127.0.0.1:{upstream}"], detectors=detectors)
    r = ask(s.port, "good.example.com")
    assert r.rcode() == dns.rcode.NXDOMAIN and not r.answer
    events = s.events()
    assert [(e["subject"], e["action"], e["category"]) for e in events] == [("good.example.com", "block", "dns hijack")]


def test_idle_hijack_guard_is_left_out(upstream: int, start_sensor: StartSensor) -> None:
    s = start_sensor([f"127.0.0.1:{upstream}"], detectors=[{"id": "dns.hijack"}, {"id": "dns.rebinding"}])
    assert [d.id for d in s.engine.detectors] == ["dns.rebinding"]


@pytest.mark.parametrize("answer_cache_size", [100, 0])
@pytest.mark.parametrize("detector", ["dns.rebinding", "dns.blocklist"])  # with and without a response-side one
def test_parsed_answers_feed_passive_dns(
    upstream: int, start_sensor: StartSensor, tutela_home: Path, answer_cache_size: int, detector: str
) -> None:
    s = start_sensor(
        [f"127.0.0.1:{upstream}"], detectors=[{"id": detector}], dns={"answer_cache_size": answer_cache_size}
    )
    assert bool(s.engine.response_detectors) is (detector == "dns.rebinding")
    recorder = PassiveDnsRecorder(tutela_home, tutela_home / "events.duckdb")
    s.engine.passive = recorder
    for _ in range(3):
        assert ask(s.port, "good.example.com").answer
    # the second and third came from the answer cache (or, with it off, the memo of upstream answers):
    # counted when the sensor drains its counts
    done = threading.Event()
    s.loop.call_soon_threadsafe(lambda: (s.sensor.drain_served(), done.set()))
    assert done.wait(5)
    s.engine.passive = None
    recorder.close()
    _, rows = EventStore(tutela_home / "events.duckdb", home=tutela_home).query(
        "SELECT name, rtype, answer, count FROM passive_dns WHERE name = 'good.example.com'"
    )
    assert rows == [("good.example.com", "A", "93.184.216.34", 3)]
