"""`dns.dga_session` end to end: `tutela dns serve` in front of Unbound (every unknown name NXDOMAIN), and replay."""

from __future__ import annotations

import json
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

from tests.dns.dga_names import random_names
from tests.dns.serve import serve_process
from tests.dns.test_replay_cli import replay_json, write_config
from tutela.core.models import ModelCache
from tutela.core.store import EventStore
from tutela.dns.detectors.dga import DgaConfig, DgaDetector

pytestmark = pytest.mark.network
THRESHOLD = 5  # DgaSessionConfig's default
WORDS = [  # ordinary-word names that do not exist: typos, shops nobody registered
    "blue-garden-shop.com", "red-river-cafe.net", "quiet-forest-studio.net", "sunny-harbor-bakery.com",
    "green-mountain-books.com", "old-town-bikes.com", "silver-lake-dental.net", "happy-paws-grooming.com",
]  # fmt: skip


def dga_like(names: list[str]) -> list[str]:
    """The names the detector counts (the shipped model, at its default min_level: low)."""
    judge = DgaDetector(DgaConfig(), ModelCache())
    return [n for n in names if judge.verdict_score(n).level is not None]


def session_events(home: Path) -> list[tuple[str, str, str]]:
    store = EventStore(home / "events.duckdb", home=home)
    _, rows = store.query("SELECT source, subject, findings FROM events WHERE pillar = 'dns' ORDER BY ts")
    return [
        (source, subject, f["message"])
        for source, subject, findings in rows
        for f in json.loads(findings)
        if f["detector"] == "dns.dga_session"
    ]


@pytest.mark.slow
def test_serve_flags_the_client_that_gets_nxdomain_for_dga_names(upstream: int, tutela_home: Path) -> None:
    infected = random_names(8, seed=20261127)
    counted = dga_like(infected)
    # the session needs THRESHOLD of them; the ones after must not fire again (the next finding needs 2x)
    assert THRESHOLD + 1 <= len(counted) < 2 * THRESHOLD, counted
    assert dga_like(WORDS) == []
    # dns.dga (default policy) blocks the HIGH ones before they go upstream: they must count all the same
    judge = DgaDetector(DgaConfig(), ModelCache())
    blocked = [n for n in counted[:THRESHOLD] if judge.verdict_score(n).level == "high"]
    assert blocked, "the session should include a name the sensor blocks itself"
    config = write_config(tutela_home, [{"id": "dns.dga"}, {"id": "dns.nxdomain_burst"}, {"id": "dns.dga_session"}])
    codes = []
    with serve_process(config, tutela_home, upstream) as port:
        for name, source in [*((n, "127.0.0.1") for n in infected), *((n, "127.0.0.2") for n in WORDS)]:
            r = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=5, source=source)
            codes.append(r.rcode())
    assert codes == [dns.rcode.NXDOMAIN] * 16
    events = session_events(tutela_home)
    assert len(events) == 1, events
    source, subject, message = events[0]
    assert (source, subject) == ("127.0.0.1", counted[THRESHOLD - 1])  # on the threshold-th distinct domain
    assert message.startswith(f"client 127.0.0.1 received NXDOMAIN for {THRESHOLD} DGA-like domains within 600 s: ")
    assert all(n in message for n in counted[:THRESHOLD])


def test_replay_finds_the_infected_client_in_a_zeek_log(
    tutela_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    infected = random_names(7, seed=7)
    counted = dga_like(infected)
    assert THRESHOLD <= len(counted) < 2 * THRESHOLD, counted
    rows = [{"query": n, "qtype": 1, "id.orig_h": "10.0.0.66", "rcode": 3} for n in infected]
    rows += [{"query": n, "qtype": 1, "id.orig_h": "10.0.0.67", "rcode": 3} for n in WORDS]
    rows += [
        {"query": n, "qtype": 1, "id.orig_h": "10.0.0.68", "rcode": 0, "answers": ["192.0.2.1"], "TTLs": [60.0]}
        for n in infected
    ]  # fmt: skip  (answered: not NXDOMAIN, never counted)
    log = tmp_path / "dns.json"
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    config = write_config(tutela_home, [{"id": "dns.dga_session"}])
    rc, out = replay_json(capsys, config, log, "--no-store")
    flagged = [(f["name"], f["stage"]) for f in out["flagged"] for x in f["findings"] if x["category"] == "dga-session"]
    assert flagged == [(counted[THRESHOLD - 1], "response")]
    assert rc == 1 and out["records"] == len(rows)
