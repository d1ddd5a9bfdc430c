"""The store keeper: the sensor spools, a child process moves events and passive DNS into DuckDB."""

from __future__ import annotations

import time
from pathlib import Path

import dns.message
import dns.query

from tests.dns.serve import serve_process
from tests.dns.test_replay_cli import STATELESS, write_config
from tutela.core.findings import Action, Verdict
from tutela.core.store import EventStore, EventWriter
from tutela.dns.keeper import keep_once
from tutela.dns.subjects import DnsAnswer, DnsQuery, DnsResponse
from tutela.dns.takeover.passive import PASSIVE_SPOOL, PassiveDnsRecorder


def _answer(name: str, address: str) -> DnsResponse:
    return DnsResponse(DnsQuery(name), 0, (DnsAnswer(name, 1, 300, address),))


def test_spooling_recorder_never_opens_the_store_and_the_keeper_upserts(tmp_path: Path) -> None:
    store = tmp_path / "events.duckdb"
    recorder = PassiveDnsRecorder(tmp_path, store, spool=True, clock=lambda: 1_700_000_000.0)
    for _ in range(3):
        recorder.observe(_answer("www.example.com", "192.0.2.1"))
    recorder.flush()
    recorder.observe(_answer("www.example.com", "192.0.2.1"))
    recorder.close()
    assert not store.exists() and len(list((tmp_path / PASSIVE_SPOOL).glob("*.arrow"))) == 2
    writer = EventWriter(tmp_path, store, ingest_interval=None)
    writer.append("dns", Verdict(action=Action.BLOCK), source="10.0.0.1", subject="ads.example.net")
    writer.close(ingest=False)
    assert not store.exists()
    assert keep_once(tmp_path, store) == (1, 2)
    _, rows = EventStore(store, home=tmp_path).query("SELECT name, answer, count FROM passive_dns")
    assert rows == [("www.example.com", "192.0.2.1", 4)]  # two batches merged
    assert EventStore(store, home=tmp_path).count() == 1
    assert keep_once(tmp_path, store) == (0, 0) and not list((tmp_path / PASSIVE_SPOOL).glob("*.arrow"))


def test_serve_moves_events_and_passive_dns_while_running(upstream: int, tutela_home: Path) -> None:
    config = write_config(tutela_home, STATELESS)
    store = EventStore(tutela_home / "events.duckdb", home=tutela_home)
    with serve_process(config, tutela_home, upstream) as port:
        for name in ("good.example.com", "blocked.example.org", "good.example.com"):
            dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=5)
        deadline = time.monotonic() + 30
        rows: list = []
        while time.monotonic() < deadline and not rows:  # the keeper's 5 s rounds, no reader involved
            time.sleep(1)
            if (tutela_home / "events.duckdb").exists():
                _, rows = store.query("SELECT count(*) FROM passive_dns WHERE name = 'good.example.com'")
                rows = rows if rows and rows[0][0] else []
        assert rows, "the keeper did not upsert passive DNS while the sensor ran"
    _, blocked = store.query("SELECT subject, action FROM events")
    assert ("blocked.example.org", "block") in blocked
    _, passive = store.query("SELECT count FROM passive_dns WHERE name = 'good.example.com'")
    assert passive == [(3,)]  # wait_udp's query and two more, the later ones from the answer cache: all counted
