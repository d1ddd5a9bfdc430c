"""`dns.dga_session` on its own, with the shipped DGA model: distinct DGA-like NXDOMAIN domains per client."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from tutela.core.config import load_settings
from tutela.core.detector import ScanContext
from tutela.core.findings import Action, Finding, Severity
from tutela.core.models import ModelCache
from tutela.core.registry import DetectorRegistry
from tutela.dns.detectors.dga import DgaConfig, DgaDetector
from tutela.dns.detectors.dgasession import DgaSessionConfig, DgaSessionDetector
from tutela.dns.engine import DnsEngine
from tutela.dns.names import NameParts
from tutela.dns.scoring import DnsScorer, Score
from tutela.dns.subjects import DnsQuery, DnsResponse

CONSONANTS = "bcdfghjklmnpqrstvwxz"
# NXDOMAIN names a user or a device may well get: typos, local single labels, ordinary words, odd input
BENIGN = ["gooogle-maps.com", "faceboook.com", "amazn-prime.com", "myprinter.lan", "myprinter", "printer.local",
          "blue-garden-shop.com", "red-river-cafe.net", "wwww.examplle.org", "xn--bcher-kva.com", "", ".",
          "a" * 300, "..com", "-.-", "\x00\xff.com", "x" * 63 + ".local"]  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def judge(models: ModelCache) -> DgaDetector:
    return DgaDetector(DgaConfig(), models)


def dga_like(judge: DgaDetector, n: int, seed: int = 1, min_level: str = "low") -> list[str]:
    """n random consonant-heavy .com/.net names that the model scores at or above min_level."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        label = "".join(rng.choice(CONSONANTS) if rng.random() < 0.8 else rng.choice("aeiou") for _ in range(14))
        name = f"{label}.{rng.choice(['com', 'net'])}"
        level = judge.verdict_score(name).level
        if level is not None and ("low", "medium", "high").index(level) >= ("low", "medium", "high").index(min_level):
            out.append(name)
    return out


def nx(name: str, client: str = "10.0.0.5", rcode: int = 3) -> DnsResponse:
    return DnsResponse(DnsQuery(name, 1, client), rcode)


def run(det: DgaSessionDetector, subject: DnsResponse) -> list[Finding]:
    return list(det.detect(subject, ScanContext()))


def test_fires_exactly_at_the_threshold_th_distinct_domain(models: ModelCache, judge: DgaDetector) -> None:
    det = DgaSessionDetector(DgaSessionConfig(threshold=4), models, clock=Clock())
    names = dga_like(judge, 12)
    fired = [run(det, nx(n)) for n in names]
    assert [i for i, f in enumerate(fired) if f] == [3, 7, 11]  # at 4, then once per 4 further domains
    first = fired[3][0]
    assert (first.detector, first.rule, first.category, first.severity) == (
        "dns.dga_session", "session", "dga-session", Severity.HIGH)  # fmt: skip
    assert first.confidence == pytest.approx(0.9)
    assert first.evidence["client"] == "10.0.0.5" and first.evidence["count"] == 4
    assert first.evidence["window_s"] == 600.0
    assert first.evidence["domains"] == ", ".join(names[:4])
    assert first.message == (
        f"client 10.0.0.5 received NXDOMAIN for 4 DGA-like domains within 600 s: {', '.join(names[:4])}"
    )
    assert len(first.evidence["levels"].split(", ")) == 4
    last = fired[11][0]  # 12 domains: the newest 10 named, the rest counted
    assert last.evidence["count"] == 12 and last.evidence["domains"] == ", ".join(names[2:])
    assert last.message.endswith("(+2 more)") and last.confidence == 1.0


def test_repeats_and_subdomains_of_one_domain_count_once(models: ModelCache, judge: DgaDetector) -> None:
    det = DgaSessionDetector(DgaSessionConfig(threshold=3), models, clock=Clock())
    a, b, c = dga_like(judge, 3, seed=2)
    for name in (a, a, f"www.{a}", b, b, f"mail.{b}"):
        assert run(det, nx(name)) == []
    assert len(run(det, nx(c))) == 1


def test_only_nxdomain_answers_count(models: ModelCache, judge: DgaDetector) -> None:
    det = DgaSessionDetector(DgaSessionConfig(threshold=2), models, clock=Clock())
    a, b = dga_like(judge, 2, seed=3)
    assert run(det, nx(a, rcode=0)) == [] and run(det, nx(b, rcode=2)) == []
    assert len(det._clients) == 0
    assert run(det, nx(a)) == [] and len(run(det, nx(b))) == 1


def test_benign_nxdomain_names_never_count(models: ModelCache, judge: DgaDetector) -> None:
    det = DgaSessionDetector(DgaSessionConfig(threshold=2), models, clock=Clock())
    for name in BENIGN * 2:
        assert run(det, nx(name)) == []
    assert len(det._clients) == 0  # no state for a client without a DGA-like NXDOMAIN
    # one DGA-like name among them is one domain, not a session
    assert run(det, nx(dga_like(judge, 1, seed=4)[0])) == []


def test_min_level_filters_lower_levels(models: ModelCache, judge: DgaDetector) -> None:
    det = DgaSessionDetector(DgaSessionConfig(threshold=2, min_level="high"), models, clock=Clock())
    low = [n for n in dga_like(judge, 40, seed=5) if judge.verdict_score(n).level != "high"][:4]
    assert len(low) == 4
    assert all(run(det, nx(n)) == [] for n in low)
    high = dga_like(judge, 2, seed=6, min_level="high")
    assert run(det, nx(high[0])) == [] and len(run(det, nx(high[1]))) == 1


def test_the_window_slides(models: ModelCache, judge: DgaDetector) -> None:
    clock = Clock()
    det = DgaSessionDetector(DgaSessionConfig(threshold=3, window_s=600), models, clock=clock)
    a, b, c, d, e = dga_like(judge, 5, seed=7)
    assert run(det, nx(a)) == []
    clock.now += 400
    assert run(det, nx(b)) == []
    clock.now += 201  # a is 601 s old: out of the window
    assert run(det, nx(c)) == []
    clock.now += 100  # b is 301 s old, c 100 s: with d, three in the window
    assert len(run(det, nx(d))) == 1
    clock.now += 10_000  # all gone; a fresh session needs the threshold again
    assert run(det, nx(e)) == [] and run(det, nx(a)) == []
    assert len(run(det, nx(b))) == 1


def test_a_repeat_keeps_its_domain_in_the_window(models: ModelCache, judge: DgaDetector) -> None:
    clock = Clock()
    det = DgaSessionDetector(DgaSessionConfig(threshold=3, window_s=600), models, clock=clock)
    a, b, c = dga_like(judge, 3, seed=8)
    run(det, nx(a))
    clock.now += 500
    run(det, nx(b))
    run(det, nx(a))  # refreshed: still answered NXDOMAIN within the window
    clock.now += 500
    assert len(run(det, nx(c))) == 1


def test_no_finding_per_name_while_hovering_at_the_threshold(models: ModelCache, judge: DgaDetector) -> None:
    clock = Clock()
    det = DgaSessionDetector(DgaSessionConfig(threshold=3, window_s=100), models, clock=clock)
    fired = []
    for name in dga_like(judge, 15, seed=9):  # one every 40 s: three in the window, the oldest leaving
        fired.append(bool(run(det, nx(name))))
        clock.now += 40
    assert fired.index(True) == 2 and sum(fired) == 5  # once per 3 new domains, not once per name


def test_clients_are_independent(models: ModelCache, judge: DgaDetector) -> None:
    det = DgaSessionDetector(DgaSessionConfig(threshold=3), models, clock=Clock())
    names = dga_like(judge, 3, seed=10)
    one, two = [], []
    for name in names:  # interleaved: each client has its own count
        one.append(run(det, nx(name, "10.0.0.1")))
        two.append(run(det, nx(name, "10.0.0.2")))
    assert [bool(f) for f in one] == [bool(f) for f in two] == [False, False, True]
    assert one[2][0].evidence["client"] == "10.0.0.1" and two[2][0].evidence["client"] == "10.0.0.2"
    assert len(det._clients) == 2
    assert run(det, nx(names[0], "10.0.0.3")) == []


def test_state_is_bounded(models: ModelCache, judge: DgaDetector) -> None:
    det = DgaSessionDetector(DgaSessionConfig(threshold=4, max_clients=16, max_domains=6), models, clock=Clock())
    names = dga_like(judge, 40, seed=11)
    for i in range(100):
        run(det, nx(names[i % len(names)], f"10.1.{i}.1"))
    assert len(det._clients) == 16
    fired = [bool(run(det, nx(n, "10.2.0.1"))) for n in names]
    assert all(len(s.domains) <= 6 for _, s in det._clients.items())
    assert fired.index(True) == 3 and sum(fired) == 10  # still one per 4 new domains at the cap


def test_config_bounds() -> None:
    with pytest.raises(ValidationError):
        DgaSessionConfig(threshold=8, max_domains=4)
    with pytest.raises(ValidationError):
        DgaSessionConfig(min_level="critical")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        DgaSessionConfig(threshold=1)


def test_constructor_loads_nothing() -> None:
    fresh = ModelCache()
    DgaSessionDetector(DgaSessionConfig(), fresh)
    assert fresh.loaded() == []


def test_shares_the_verdicts_of_dns_dga_on_one_model_cache(judge: DgaDetector, monkeypatch: pytest.MonkeyPatch) -> None:
    names = dga_like(judge, 4, seed=12)
    fresh = ModelCache()
    request_side = DgaDetector(DgaConfig(), fresh)
    det = DgaSessionDetector(DgaSessionConfig(threshold=4), fresh, clock=Clock())
    scored: list[str] = []
    real = DnsScorer.dga

    def counting(self: DnsScorer, parts: NameParts, **kw: bool) -> Score:
        scored.append(parts.registrable)
        return real(self, parts, **kw)

    monkeypatch.setattr(DnsScorer, "dga", counting)
    for name in names:
        assert len(list(request_side.detect(DnsQuery(name), ScanContext()))) == 1
    assert scored == names
    fired = [run(det, nx(name)) for name in names]
    assert scored == names and len(fired[-1]) == 1  # the NXDOMAIN answers ran no model


def _engine(home: Path, detectors: list[dict[str, object]]) -> DnsEngine:
    registry = DetectorRegistry.load()
    home.mkdir(parents=True)
    (home / "config.yaml").write_text(yaml.safe_dump({"detectors": {"dns": detectors}}))
    return DnsEngine.from_settings(load_settings(home / "config.yaml", detectors=registry), registry)


def test_names_the_sensor_blocks_count_as_the_nxdomain_the_client_gets(tmp_path: Path, judge: DgaDetector) -> None:
    """dns.dga blocks HIGH names before they go upstream: no NXDOMAIN answer ever comes back for them, yet they
    are the strongest sign of an infected client. The engine shows its own block to dns.dga_session."""
    engine = _engine(tmp_path / "home", [{"id": "dns.dga"}, {"id": "dns.dga_session", "params": {"threshold": 3}}])
    high = dga_like(judge, 3, seed=11, min_level="high")
    verdicts = [engine.judge_query(DnsQuery(n, 1, "10.0.0.9")) for n in high]
    assert [v.action for v in verdicts] == [Action.BLOCK] * 3  # never forwarded: no upstream answer
    assert [[f.detector for f in v.findings] for v in verdicts] == [
        ["dns.dga"],
        ["dns.dga"],
        ["dns.dga", "dns.dga_session"],
    ]
    session = verdicts[2].findings[1]
    assert session.evidence["count"] == 3 and session.evidence["levels"] == "high, high, high"
    # a repeat of a blocked name (a verdict-cache hit) is the same domain: no second finding
    again = engine.judge_query(DnsQuery(high[0], 1, "10.0.0.9"))
    assert [f.detector for f in again.findings] == ["dns.dga"]
    # an allowed query is not shown to it: only blocks and real NXDOMAIN answers are
    allowed = engine.judge_query(DnsQuery("example.com", 1, "10.0.0.9"))
    assert allowed.action is Action.ALLOW and allowed.findings == ()


def test_any_block_counts_only_where_the_name_is_dga_like(tmp_path: Path, judge: DgaDetector) -> None:
    a, b = dga_like(judge, 2, seed=12)
    deny = ["ads.example.com", "tracker.example.net", "evil.example.org", a, b]
    engine = _engine(
        tmp_path / "home",
        [{"id": "dns.blocklist", "params": {"deny": deny}}, {"id": "dns.dga_session", "params": {"threshold": 2}}],
    )
    verdicts = [engine.judge_query(DnsQuery(n, 1, "10.0.0.9")) for n in deny]
    assert all(v.action is Action.BLOCK for v in verdicts)
    assert [[f.detector for f in v.findings] for v in verdicts] == [
        ["dns.blocklist"], ["dns.blocklist"], ["dns.blocklist"], ["dns.blocklist"],
        ["dns.blocklist", "dns.dga_session"],
    ]  # fmt: skip


def test_verdicts_are_shared_per_model_cache_and_can_be_forgotten(judge: DgaDetector) -> None:
    """dns.dga and dns.dga_session on one ModelCache score a registrable domain once; benchmarks that time misses
    on one ModelCache start each detector cold with forget_verdicts()."""
    fresh = ModelCache()
    first, second = DgaDetector(DgaConfig(), fresh), DgaDetector(DgaConfig(), fresh)
    name = dga_like(judge, 1, seed=13)[0]
    first.verdict_score(name)
    shared = first._shared_score()
    assert second._shared_score() is shared and shared.cache_info().currsize == 1  # type: ignore[attr-defined]
    second.forget_verdicts()
    assert shared.cache_info().currsize == 0  # type: ignore[attr-defined]


def test_ignored_clients_are_never_judged(models: ModelCache, judge: DgaDetector) -> None:
    cfg = DgaSessionConfig(threshold=2, ignore_clients=("192.0.2.0/24", "2001:db8::/32"))  # type: ignore[arg-type]
    det = DgaSessionDetector(cfg, models, clock=Clock())
    a, b = dga_like(judge, 2, seed=14)
    for client in ("192.0.2.25", "2001:db8::25"):  # the mail server, the forwarding resolver
        assert run(det, nx(a, client)) == [] and run(det, nx(b, client)) == []
    assert len(det._clients) == 0
    for client in ("198.51.100.7", "mailhost"):  # outside the networks; not an address at all: judged
        assert run(det, nx(a, client)) == [] and len(run(det, nx(b, client))) == 1
    with pytest.raises(ValidationError):
        DgaSessionConfig(ignore_clients=("not-a-network",))  # type: ignore[arg-type]
