"""Passive DNS: batched upserts into the store's passive_dns table, and `history`."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tests.dns.takeover.nsd import Nsd
from tests.dns.takeover.stub import resolve
from tests.dns.takeover.world import PLANTED
from tutela.cli import main
from tutela.core.errors import StoreError
from tutela.core.store import EventStore
from tutela.dns.subjects import DnsAnswer, DnsQuery, DnsResponse
from tutela.dns.takeover.passive import PassiveDnsRecorder, history


def _resp(name: str, *answers: tuple[int, str]) -> DnsResponse:
    return DnsResponse(DnsQuery(name, answers[0][0]), 0, tuple(DnsAnswer(name, t, 60, d) for t, d in answers))


def test_aggregates_in_memory_and_upserts_in_batches(tutela_home: Path) -> None:
    rec = PassiveDnsRecorder(tutela_home)
    for i in range(10_000):
        rec.observe(_resp("www.example.com", (1, "192.0.2.1")), ts=1_000_000 + i)
        if i % 2:
            rec.observe(_resp("www.example.com", (1, "192.0.2.2")), ts=1_000_000 + i)
    assert not (tutela_home / "events.duckdb").exists()  # nothing opened DuckDB on the data path
    assert rec.flush() == 2
    rec.observe(_resp("WWW.Example.com.", (1, "192.0.2.1")), ts=999_000)  # an older sighting, relayed late
    rec.observe(_resp("www.example.com", (5, "Edge.CDN.net.")), ts=2_000_000)
    assert rec.flush() == 2
    rows = {(r.rtype, r.answer): r for r in history(tutela_home / "events.duckdb", tutela_home, "www.example.com")}
    assert rows[("A", "192.0.2.1")].count == 10_001
    assert rows[("A", "192.0.2.1")].first_seen.startswith("1970-01-12T13:3")  # 999000 s after the epoch
    assert rows[("A", "192.0.2.1")].last_seen.startswith("1970-01-12T16:33:19")  # 1009999
    assert rows[("A", "192.0.2.2")].count == 5_000
    assert rows[("CNAME", "edge.cdn.net")].count == 1
    assert [r.rtype for r in history(tutela_home / "events.duckdb", tutela_home, "www.example.com", rtype="cname")] == [
        "CNAME"
    ]


def test_busy_store_keeps_the_counts_for_the_next_flush(tutela_home: Path) -> None:
    rec = PassiveDnsRecorder(tutela_home, lock_timeout=0.2)
    rec.observe(_resp("a.example.com", (1, "192.0.2.1")), ts=10)
    store = EventStore(tutela_home / "events.duckdb", home=tutela_home)
    with store.connect(), pytest.raises(StoreError):  # another process holds the store
        rec.flush()
    rec.observe(_resp("a.example.com", (1, "192.0.2.1")), ts=20)
    assert rec.flush() == 1
    (row,) = history(tutela_home / "events.duckdb", tutela_home, "a.example.com")
    assert row.count == 2


def test_pending_keys_are_bounded(tutela_home: Path) -> None:
    rec = PassiveDnsRecorder(tutela_home, max_pending=100)
    for i in range(150):
        rec.observe(_resp(f"n{i}.example.com", (1, "192.0.2.1")))
    assert rec.dropped == 50
    assert rec.flush() == 100


def test_background_thread_flushes_and_observe_is_thread_safe(tutela_home: Path) -> None:
    with PassiveDnsRecorder(tutela_home, flush_interval=0.05) as rec:

        def work(k: int) -> None:
            for i in range(2000):
                rec.observe(_resp("t.example.com", (1, f"192.0.2.{i % 4}")))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    rows = history(tutela_home / "events.duckdb", tutela_home, "t.example.com")
    assert sum(r.count for r in rows) == 8000 and len(rows) == 4


@pytest.mark.network
def test_history_cli_from_real_answers(world: Nsd, tutela_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with PassiveDnsRecorder(tutela_home) as rec:
        for _ in range(3):
            rec.observe(resolve(world.address, "chain.example.com"))
            rec.observe(resolve(world.address, "www.example.com", "AAAA"))
    assert main(["dns", "history", "chain.example.com", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["type"], r["answer"], r["count"]) for r in rows} == {("CNAME", "alias.example.com", 3)}
    assert main(["dns", "history", "example.com", "--subdomains", "--json"]) == 0
    names = {r["name"] for r in json.loads(capsys.readouterr().out)}
    assert {"chain.example.com", "alias.example.com", "www.example.com"} <= names
    # the scanner reports when a dangling target last answered, from the same table
    rec2 = PassiveDnsRecorder(tutela_home)
    rec2.observe(_resp("gone-app.azurewebsites.net", (1, "20.40.9.9")), ts=1_700_000_000)
    rec2.flush()
    argv = ["dns", "dangling", str(world.dir / "example.com.zone"), "--resolver", f"127.0.0.1:{world.port}"]
    assert main([*argv, "--history"]) == 1
    found = {f["name"]: f for f in json.loads(capsys.readouterr().out)["findings"]}
    assert found["old-app.example.com"]["target_last_seen"].startswith("2023-11-14T22:13:20")
    assert found["brand.example.com"]["target_last_seen"] is None
    assert len(found) <= len(PLANTED)


def test_history_of_an_empty_store(tutela_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dns", "history", "nothing.example", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
