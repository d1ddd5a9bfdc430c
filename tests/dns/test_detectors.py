"""The cheap DNS detectors, each on its own."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tutela.core.detector import ScanContext
from tutela.core.models import ModelCache
from tutela.core.registry import DetectorRegistry
from tutela.dns.detectors.behaviour import FloodConfig, NxBurstConfig, NxBurstDetector, RandomSubdomainDetector
from tutela.dns.detectors.blocklist import BlocklistConfig, BlocklistDetector
from tutela.dns.detectors.lookalike import LookalikeConfig, LookalikeDetector, permutations, skeleton
from tutela.dns.detectors.newdomain import NewDomainConfig, NewDomainDetector
from tutela.dns.detectors.rebinding import RebindingConfig, RebindingDetector
from tutela.dns.subjects import DnsAnswer, DnsQuery, DnsResponse

M = ModelCache()


def rules(detector: object, subject: object) -> list[str]:
    return [f.rule for f in detector.detect(subject, ScanContext())]  # type: ignore[attr-defined]


def test_registered_with_side_and_cacheable() -> None:
    reg = DetectorRegistry.load()
    dns_ids = set(reg.for_pillar("dns"))
    assert {"dns.blocklist", "dns.rebinding", "dns.lookalike", "dns.newly_observed", "dns.nxdomain_burst",
            "dns.random_subdomain", "dns.dga_session"} <= dns_ids  # fmt: skip
    assert reg.get("dns.rebinding").side == "response"  # type: ignore[attr-defined]
    assert reg.get("dns.random_subdomain").cacheable is False  # type: ignore[attr-defined]


def test_blocklist_formats(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("# comment\n0.0.0.0 ads.example.com tracker.example.com\n127.0.0.1 localhost\n::1 ip6-localhost\n")
    domains = tmp_path / "domains.txt"
    domains.write_text("||adguard.example^\n*.wild.example\nplain.example\n! comment\n")
    rpz = tmp_path / "zone.rpz"
    rpz.write_text(
        "$ORIGIN rpz.local.\n$TTL 300\n@ SOA localhost. root.localhost. 1 3600 600 86400 60\n  NS localhost.\n"
        "nx.example CNAME .\n*.nx.example CNAME .\nnodata.example CNAME *.\n"
        "ok.nx.example CNAME rpz-passthru.\ndropme.example 60 IN CNAME rpz-drop.\n"
        "local.example A 10.9.8.7\n32.1.2.0.192.rpz-ip CNAME .\nabs.example.rpz.local. CNAME .\n"
    )
    det = BlocklistDetector(
        BlocklistConfig(deny=("deny.example",), hosts_files=(hosts,), domain_files=(domains,), rpz_files=(rpz,)), M
    )
    q = lambda n: DnsQuery(n)  # noqa: E731
    assert rules(det, q("ads.example.com")) == ["list"]
    assert rules(det, q("sub.ads.example.com")) == []  # hosts entries are exact
    assert rules(det, q("localhost")) == []
    assert rules(det, q("x.adguard.example")) == ["list"]
    assert rules(det, q("a.b.wild.example")) == ["list"]
    assert rules(det, q("plain.example")) == ["list"]
    assert rules(det, q("deep.deny.example")) == ["list"]
    assert rules(det, q("nx.example")) == ["rpz.nxdomain"]
    assert rules(det, q("a.nx.example")) == ["rpz.nxdomain"]
    assert rules(det, q("ok.nx.example")) == []  # passthru wins
    assert rules(det, q("nodata.example")) == ["rpz.nodata"]
    assert rules(det, q("sub.nodata.example")) == []  # no wildcard for it
    assert rules(det, q("dropme.example")) == ["rpz.drop"]
    assert rules(det, q("abs.example")) == ["rpz.nxdomain"]
    [f] = det.detect(q("local.example"), ScanContext())
    assert f.rule == "rpz.sinkhole" and f.evidence["sinkhole"] == "10.9.8.7"
    assert rules(det, q("example.com")) == [] and rules(det, q("good.example")) == []


def response(name: str, *addrs: str, rcode: int = 0, client: str = "10.0.0.5") -> DnsResponse:
    answers = tuple(DnsAnswer(name, 28 if ":" in a else 1, 60, a) for a in addrs)
    return DnsResponse(DnsQuery(name, 1, client), rcode, answers)


@pytest.mark.parametrize(
    ("name", "addr", "flagged"),
    [
        ("evil.example.com", "192.168.0.1", True),
        ("evil.example.com", "10.0.0.1", True),
        ("evil.example.com", "127.0.0.1", True),
        ("evil.example.com", "169.254.169.254", True),
        ("evil.example.com", "0.0.0.0", True),
        ("evil.example.com", "::1", True),
        ("evil.example.com", "fd00::1", True),
        ("evil.example.com", "::ffff:192.168.1.1", True),
        ("evil.example.com", "93.184.216.34", False),
        ("nas.lan", "192.168.0.10", False),
        ("printer.home.arpa", "192.168.0.11", False),
        ("box.fritz.box", "192.168.178.1", False),
        ("localhost", "127.0.0.1", False),
        ("host.corp", "10.1.1.1", False),
    ],
)
def test_rebinding(name: str, addr: str, flagged: bool) -> None:
    det = RebindingDetector(RebindingConfig(), M)
    assert bool(rules(det, response(name, addr))) is flagged


def test_rebinding_allow_suffixes() -> None:
    det = RebindingDetector(RebindingConfig(allow_suffixes=("internal.example.com",)), M)
    assert rules(det, response("git.internal.example.com", "10.0.0.3")) == []
    assert rules(det, response("other.example.com", "10.0.0.3")) == ["private-answer"]


def test_newly_observed_persisted_with_quarantine(tmp_path: Path) -> None:
    path = tmp_path / "seen.tsv"
    det = NewDomainDetector(NewDomainConfig(path=path, quarantine_s=3600), M)
    assert rules(det, DnsQuery("a.fresh-domain.com")) == ["first-seen"]
    assert rules(det, DnsQuery("b.fresh-domain.com")) == ["quarantine"]
    assert rules(det, DnsQuery("nas.lan")) == []
    det.close()
    assert path.read_text().startswith("fresh-domain.com\t")
    again = NewDomainDetector(NewDomainConfig(path=path), M)
    assert rules(again, DnsQuery("c.fresh-domain.com")) == []  # known from the file, no quarantine
    assert rules(again, DnsQuery("www.other-domain.co.uk")) == ["first-seen"]


def test_newly_observed_defaults_under_tutela_home(tutela_home: Path) -> None:
    det = NewDomainDetector(NewDomainConfig(), M)
    list(det.detect(DnsQuery("x.example.net"), ScanContext()))
    det.close()
    assert (tutela_home / "dns" / "observed-domains.tsv").read_text().startswith("example.net\t")


def test_lookalike_rules() -> None:
    det = LookalikeDetector(LookalikeConfig(brands=("paypal.com", "example-bank.co.uk")), M)
    assert rules(det, DnsQuery("www.paypal.com")) == []
    assert rules(det, DnsQuery("paypa1.com")) == ["typo"]
    assert rules(det, DnsQuery("paypall.net")) == ["typo"]
    assert rules(det, DnsQuery("pyapal.com")) == ["typo"]
    assert rules(det, DnsQuery("xn--pypal-4ve.com")) == ["homoglyph"]  # Cyrillic 'а'
    assert rules(det, DnsQuery("paypal.net")) == ["tld-swap"]
    assert rules(det, DnsQuery("secure-paypal.com")) == ["combo"]
    assert rules(det, DnsQuery("paypal.com.login.evil.net")) == ["brand-subdomain"]
    assert rules(det, DnsQuery("examp1e-bank.co.uk")) == ["typo"]
    assert rules(det, DnsQuery("wikipedia.org")) == [] and rules(det, DnsQuery("google.com")) == []


def test_lookalike_helpers_and_constant_time() -> None:
    assert skeleton("xn--pypal-4ve") == "paypal"
    assert skeleton("pаypаl") == "paypal"
    assert skeleton("pàypäl") == "paypal"
    perms = permutations("paypal")
    assert {"paypa1", "paypl", "ppaypal", "payapl", "pay-pal"} <= perms and "paypal" not in perms
    few = LookalikeDetector(LookalikeConfig(brands=("paypal.com",)), M)
    many = LookalikeDetector(LookalikeConfig(brands=tuple(f"brand{i:04d}name.com" for i in range(300))), M)
    for det in (few, many):
        rules(det, DnsQuery("warmup.example.com"))

    def cost(det: LookalikeDetector) -> float:
        names = [DnsQuery(f"host{i}.somewhere{i % 50}.com") for i in range(3000)]
        start = time.perf_counter()
        for q in names:
            list(det.detect(q, ScanContext()))
        return time.perf_counter() - start

    cost(many), cost(few)  # warm the shared registrable-domain memo for these names
    assert cost(many) < cost(few) * 3  # 300x the brands, about the same cost per query


def test_nxdomain_burst() -> None:
    det = NxBurstDetector(NxBurstConfig(threshold=10, window_s=60), M)
    fired = [bool(rules(det, response(f"x{i}.example.com", rcode=3))) for i in range(30)]
    assert fired.index(True) == 10 and sum(fired) == 2  # on crossing, then once per threshold more
    assert rules(det, response("ok.example.com", "93.184.216.34")) == []
    other = [bool(rules(det, response(f"y{i}.example.com", rcode=3, client="10.0.0.6"))) for i in range(10)]
    assert not any(other)


def test_random_subdomain_flood() -> None:
    det = RandomSubdomainDetector(FloodConfig(threshold=50, window_s=60, max_clients=16), M)
    normal = [rules(det, DnsQuery(f"www{i % 5}.example.com", client="10.0.0.1")) for i in range(500)]
    assert not any(normal)
    flood = [rules(det, DnsQuery(f"{i:08x}q.victim.com", client="10.0.0.2")) for i in range(120)]
    first = next(i for i, r in enumerate(flood) if r)
    assert 40 <= first <= 70 and all(flood[first + 5 :])
    assert not rules(det, DnsQuery("zz.victim.com", client="10.0.0.3"))
    for i in range(100):  # many clients: state stays bounded
        rules(det, DnsQuery(f"a{i}.example.org", client=f"10.1.{i}.1"))
    assert len(det._clients) == 16
