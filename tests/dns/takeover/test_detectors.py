"""dns.fastflux and dns.dangling, and the registration of all three takeover detectors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.dns.takeover.nsd import Nsd
from tests.dns.takeover.world import PLANTED, RELEASED
from tutela.core.detector import ScanContext
from tutela.core.findings import Action
from tutela.core.models import ModelCache
from tutela.core.pipeline import DetectorSpec, Pipeline
from tutela.core.policy import Policy
from tutela.core.registry import DetectorRegistry
from tutela.dns.subjects import DnsAnswer, DnsQuery, DnsResponse
from tutela.dns.takeover import report
from tutela.dns.takeover.dangling import ScanOptions, scan_records
from tutela.dns.takeover.detectors import DanglingDetector, FastFluxDetector
from tutela.dns.takeover.fastflux import flux_score
from tutela.dns.takeover.zonefile import read_zone_file


def _resp(name: str, addresses: list[str], ttl: int) -> DnsResponse:
    return DnsResponse(DnsQuery(name, 1), 0, tuple(DnsAnswer(name, 1, ttl, a) for a in addresses))


def test_registered_with_sides_and_ids() -> None:
    reg = DetectorRegistry.load()
    sides = {}
    for det_id in ("dns.hijack", "dns.fastflux", "dns.dangling"):
        klass = reg.get(det_id)
        assert klass.pillar == "dns"
        sides[det_id] = klass.side  # type: ignore[attr-defined]
    assert sides == {"dns.hijack": "response", "dns.fastflux": "response", "dns.dangling": "request"}
    # default configs build with no I/O, and do nothing harmful on unrelated traffic
    pipe = Pipeline.build(reg, [DetectorSpec(id="dns.hijack"), DetectorSpec(id="dns.fastflux")], Policy(), ModelCache())
    assert pipe.run(_resp("www.example.com", ["192.0.2.1"], 300)).action == Action.ALLOW


def test_fast_flux_flagged_and_cdn_rotation_not() -> None:
    rng = random.Random(3)
    det = FastFluxDetector(FastFluxDetector.Config(wildcard=False), ModelCache())
    # a CDN: 30 addresses in three /24s of one /16, TTL 20-60
    cdn = [f"151.101.{t}.{rng.randrange(1, 255)}" for t in (1, 65, 129) for _ in range(10)]
    for _ in range(500):
        assert list(det.detect(_resp("cdn.shop.com", rng.sample(cdn, 3), rng.randint(20, 60)), ScanContext())) == []
    # a flux botnet: each answer 5 home addresses from all over, TTL 0-180
    found = []
    for _ in range(20):
        bots = [
            f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            for _ in range(5)
        ]
        found += list(det.detect(_resp("flux.bad.com", bots, rng.randint(0, 180)), ScanContext()))
    assert found and found[0].rule == "fast_flux" and found[0].category == "fast flux"
    assert found[0].evidence["networks"] >= 5
    assert flux_score(30, 1) < 0 < flux_score(40, 6)


def test_a_large_pool_in_one_network_is_not_flux() -> None:
    det = FastFluxDetector(FastFluxDetector.Config(wildcard=False), ModelCache())
    for i in range(2000):
        r = _resp("lb.example.com", [f"198.51.100.{i % 256}", f"198.51.101.{i % 256}"], 30)
        assert list(det.detect(r, ScanContext())) == []


def test_fast_flux_ignores_long_ttls() -> None:
    rng = random.Random(5)
    det = FastFluxDetector(FastFluxDetector.Config(wildcard=False), ModelCache())
    for _ in range(40):
        bots = [f"{rng.randrange(1, 223)}.{rng.randrange(256)}.0.1" for _ in range(5)]
        assert list(det.detect(_resp("big.example.com", bots, 3600), ScanContext())) == []


def test_wildcard_abuse_flagged_but_not_popular_subdomains() -> None:
    rng = random.Random(9)
    det = FastFluxDetector(FastFluxDetector.Config(wildcard_min_names=30), ModelCache())
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    found = []
    for _ in range(40):
        label = "".join(rng.choice(alphabet) for _ in range(16))
        found += list(det.detect(_resp(f"{label}.wild-track.net", ["192.0.2.9"], 60), ScanContext()))
    assert found and {f.rule for f in found} == {"wildcard_abuse"}
    assert found[0].location == "wild-track.net"
    # many real subdomains of one site, each with its own addresses
    words = ["www", "mail", "api", "cdn", "shop", "blog", "docs", "status", "login", "help", "news", "media"]
    quiet = []
    for i in range(60):
        name = f"{words[i % len(words)]}{i // len(words) or ''}.bigsite.com"
        quiet += list(det.detect(_resp(name, [f"203.0.113.{i}"], 60), ScanContext()))
    assert quiet == []


@pytest.mark.network
def test_dangling_detector_blocks_saved_records_and_targets(world: Nsd, tutela_home: Path) -> None:
    zone, records = read_zone_file(world.dir / "example.com.zone")
    findings, _ = scan_records(zone, records, world.address, options=ScanOptions(released=RELEASED))
    report.save(tutela_home, zone, findings)
    det = DanglingDetector(DanglingDetector.Config(reload_interval_s=0), ModelCache())
    policy = Policy()

    def judge(name: str) -> tuple[Action, list]:  # type: ignore[type-arg]
        fs = list(det.detect(DnsQuery(name), ScanContext()))
        return policy.decide(fs).action, fs

    for (name, rtype, target), reason in PLANTED.items():
        action, fs = judge(name)
        if reason == "nxdomain":
            assert fs == []  # not claimable: no action unless block_nxdomain
            continue
        if rtype in ("MX", "NS", "SRV"):
            assert action == Action.ALLOW  # the zone apex or delegation point itself is not an alias
        else:
            assert action == Action.BLOCK and fs[0].category == "dangling domain", name
        if reason != "released_address" or not target[0].isdigit():
            assert judge(target)[0] == Action.BLOCK, target
    assert judge("anything.expired-brand.com")[1][0].rule == "unregistered_domain"
    for healthy in ("www.example.com", "app.example.com", "good-app.azurewebsites.net", "example.org"):
        assert judge(healthy) == (Action.ALLOW, [])
    # a rescan that finds the zone fixed stops the blocking
    report.save(tutela_home, zone, [])
    assert judge("old-app.example.com") == (Action.ALLOW, [])


def test_dangling_detector_without_saved_findings_is_quiet(tutela_home: Path) -> None:
    det = DanglingDetector(DanglingDetector.Config(), ModelCache())
    assert list(det.detect(DnsQuery("old-app.example.com"), ScanContext())) == []


def test_dangling_detector_with_a_broken_saved_file_fails_once_then_keeps_going(tutela_home: Path) -> None:
    from tutela.core.errors import ParseError

    path = report.saved_path(tutela_home)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    det = DanglingDetector(DanglingDetector.Config(reload_interval_s=0), ModelCache())
    with pytest.raises(ParseError):
        list(det.detect(DnsQuery("a.example.com"), ScanContext()))
    assert list(det.detect(DnsQuery("a.example.com"), ScanContext())) == []
    report.save(tutela_home, "example.com", [])  # a rescan replaces the broken file
    assert report.load_saved(tutela_home) == {"example.com": []}
