"""The sensor's verdict cache and the model detectors: dns.dga is cached, dns.tunnel's window sees every query.

A repeated name is a verdict-cache hit; the tunnel's per-client/per-domain window must still count it (bytes
per minute and query rate grow with repeats), otherwise a tunnel that repeats names is never blocked.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tutela.core.config import load_settings
from tutela.core.findings import Action
from tutela.core.registry import DetectorRegistry
from tutela.dns.detectors.dga import DgaDetector
from tutela.dns.detectors.tunnel import TunnelDetector
from tutela.dns.engine import DnsEngine
from tutela.dns.subjects import DnsQuery

NAME = "ge3tamrrgq3dknzyhe4tmnjxgmztaojthe2tkmbqgiydcmzrgq4dimbwg4.t.exfil-example.net"


def _engine(home: Path, ttl: float = 300.0) -> DnsEngine:
    registry = DetectorRegistry.load()
    home.mkdir(parents=True)
    config = {"detectors": {"dns": [{"id": "dns.dga"}, {"id": "dns.tunnel"}]}, "dns": {"cache_ttl_s": ttl}}
    (home / "config.yaml").write_text(yaml.safe_dump(config))
    settings = load_settings(home / "config.yaml", detectors=registry)
    return DnsEngine.from_settings(settings, registry)


def _tunnel(engine: DnsEngine) -> TunnelDetector:
    return next(d for d in engine.detectors if isinstance(d, TunnelDetector))


def test_dga_is_cached_and_tunnel_runs_on_every_query(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "home")
    assert [type(d) for d in engine.cached_detectors] == [DgaDetector]
    assert [type(d) for d in engine.live_detectors] == [TunnelDetector]
    assert [type(d) for d in engine.every_query_detectors] == [TunnelDetector]


def test_cached_name_still_feeds_the_tunnel_window(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "home")
    tunnel = _tunnel(engine)
    n = 8
    for _ in range(n):
        engine.judge_query(DnsQuery(name=NAME, qtype=16, client="10.0.0.7"))
    assert engine.metrics.cache_misses == 1 and engine.metrics.cache_hits == n - 1
    state = tunnel.window._keys[("10.0.0.7", "exfil-example.net")]
    assert len(state.events) == n  # every repeat counted, not only the miss


def test_repeated_tunnel_name_is_blocked_through_the_cache(tmp_path: Path) -> None:
    """The same tunnel query over and over (a poll) is blocked on a cache hit, as on the first miss."""
    engine = _engine(tmp_path / "home")
    actions = [engine.judge_query(DnsQuery(name=NAME, qtype=16, client="10.0.0.8")).action for _ in range(10)]
    assert engine.metrics.cache_hits == 9
    assert Action.BLOCK in actions
    assert actions[-1] == Action.BLOCK  # a HIGH session finding is re-emitted on every later query


def test_window_counts_with_the_cache_off_and_on_alike(tmp_path: Path) -> None:
    cached, uncached = _engine(tmp_path / "a", ttl=300.0), _engine(tmp_path / "b", ttl=0.0)
    for engine in (cached, uncached):
        for i in range(12):
            engine.judge_query(DnsQuery(name=f"www{i % 3}.example.org", qtype=1, client="10.0.0.9"))
    a = _tunnel(cached).window._keys[("10.0.0.9", "example.org")]
    b = _tunnel(uncached).window._keys[("10.0.0.9", "example.org")]
    assert cached.metrics.cache_hits == 9 and uncached.metrics.cache_hits == 0
    assert len(a.events) == len(b.events) == 12 and len(a.digests) == len(b.digests) == 3


def test_warmup_loads_models_before_the_first_query(tmp_path: Path) -> None:
    """The sensor calls warmup() before it listens; without it the first query loaded the models and a
    live dns2tcp client timed out on it (seen as a flaky live test on a loaded machine)."""
    engine = _engine(tmp_path / "home")
    for d in engine.detectors:
        assert d.scorer._dga is None and d.scorer._tunnel is None  # type: ignore[attr-defined]
    engine.warmup()
    for d in engine.detectors:
        assert d.scorer._dga is not None and d.scorer._tunnel is not None  # type: ignore[attr-defined]
        assert d.scorer.split._all is not None  # type: ignore[attr-defined]


def test_dga_repeat_is_one_lookup_with_the_same_findings(models) -> None:
    """A repeated name is answered from the detector's per-name cache: same findings, no second scoring."""
    from tutela.core.detector import ScanContext
    from tutela.dns.detectors.dga import DgaConfig

    det = DgaDetector(DgaConfig(), models)
    name = "xkqjzvbwpltrmhd.net"
    first = tuple(det.detect(DnsQuery(name), ScanContext()))
    assert first and first[0].rule.startswith("dga.")
    calls = []
    det.score = lambda n: calls.append(n)  # type: ignore[method-assign,assignment,return-value]
    again = tuple(det.detect(DnsQuery(name), ScanContext()))
    assert again == first and not calls
    assert tuple(DgaDetector(DgaConfig(cache_size=0), models).detect(DnsQuery(name), ScanContext())) == first
