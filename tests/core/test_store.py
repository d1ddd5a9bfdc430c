"""The event store: one schema, batched writers in several processes, migrations that survive a kill."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tutela.core.errors import StoreError
from tutela.core.findings import Action, Finding, Severity, Verdict
from tutela.core.store import EventStore, EventWriter, spool
from tutela.core.store.schema import MIGRATIONS, Migration

BLOCK = Verdict(
    action=Action.BLOCK,
    findings=(
        Finding(
            detector="dns.dga",
            detector_version="3",
            rule="char_dga",
            category="dga",
            severity=Severity.HIGH,
            confidence=0.97,
            message="DGA",
            evidence={"entropy": "3.9"},
        ),
    ),
    reasons=("dns.dga/char_dga -> block",),
)
ALLOW = Verdict(action=Action.ALLOW)


def store(home: Path) -> EventStore:
    return EventStore(home / "events.duckdb", home=home)


def test_events_roundtrip_with_findings(tutela_home: Path) -> None:
    with EventWriter(tutela_home, flush_interval=0.05) as w:
        w.append("dns", BLOCK, source="10.0.0.1", subject="kq3v9z.example", attrs={"qtype": 1})
        w.append("dns", ALLOW, source="10.0.0.1", subject="example.com")
    cols, rows = store(tutela_home).query(
        "SELECT pillar, source, subject, action, severity, category, findings, attrs FROM events ORDER BY ts"
    )
    assert [r[3] for r in rows] == ["block", "allow"]
    blocked = dict(zip(cols, rows[0], strict=True))
    assert blocked["severity"] == int(Severity.HIGH) and blocked["category"] == "dga"
    findings = json.loads(blocked["findings"])
    assert findings[0]["detector"] == "dns.dga" and findings[0]["evidence"] == {"entropy": "3.9"}
    assert json.loads(blocked["attrs"]) == {"qtype": 1}
    assert rows[1][4] is None and json.loads(rows[1][6]) == []


def test_segments_are_ingested_once(tutela_home: Path) -> None:
    w = EventWriter(tutela_home)
    for _ in range(10):
        w.append("runtime", ALLOW)
    w.flush()
    segment = spool.pending_segments(tutela_home)[0]
    copy = segment.read_bytes()
    s = store(tutela_home)
    assert s.ingest() == 10
    segment.write_bytes(copy)  # as if a crash came between commit and unlink
    assert s.ingest() == 0
    assert s.count() == 10


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tutela.core.findings import Action, Verdict
    from tutela.core.store import EventWriter
    home, n, tag = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    w = EventWriter(home, flush_interval=0.1, ingest_interval=0.3)
    w.start()
    v = Verdict(action=Action.ALERT)
    for i in range(n):
        w.append("dns", v, source=tag, subject=f"{tag}-{i}")
        if i % 5000 == 0:
            time.sleep(0.05)
    if len(sys.argv) > 4:   # simulate a crash: flushed rows must survive, nothing after
        time.sleep(0.5)
        print("ready", flush=True)
        time.sleep(60)
    w.close()
""")


def test_several_processes_write_at_once_without_losing_events(tutela_home: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tutela_home), "20000", f"p{i}"]) for i in range(3)]
    s = store(tutela_home)
    while any(p.poll() is None for p in procs):
        s.count()  # a reader competing for the store meanwhile
        time.sleep(0.1)
    assert all(p.returncode == 0 for p in procs)
    _, rows = s.query("SELECT source, count(*), count(DISTINCT subject) FROM events GROUP BY source ORDER BY source")
    assert rows == [("p0", 20000, 20000), ("p1", 20000, 20000), ("p2", 20000, 20000)]


def test_a_killed_writer_loses_at_most_its_last_flush_interval(tutela_home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tutela_home), "3000", "crash", "hang"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert store(tutela_home).count() == 3000


def test_newer_schema_is_refused_with_a_clear_message(tutela_home: Path) -> None:
    s = store(tutela_home)
    s.open()
    db = duckdb.connect(str(s.path))
    db.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', now()::TIMESTAMP)")
    db.close()
    with pytest.raises(StoreError, match=rf"schema v99, newer than this tutela knows \(v{len(MIGRATIONS)}\)"):
        s.count()


def test_corrupted_store_is_a_clear_error(tutela_home: Path) -> None:
    tutela_home.mkdir(parents=True)
    (tutela_home / "events.duckdb").write_bytes(b"this is not a database" * 1000)
    with pytest.raises(StoreError, match="cannot open event store") as info:
        store(tutela_home).count()
    assert "move it aside" in str(info.value)


KILLED_MIGRATION = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from tutela.core.store import EventStore
    from tutela.core.store.schema import MIGRATIONS, Migration

    def half_way(db):
        db.execute("ALTER TABLE events ADD COLUMN extra VARCHAR")
        db.execute("CREATE TABLE half_done (x INTEGER)")
        os.kill(os.getpid(), signal.SIGKILL)

    home = Path(sys.argv[1])
    extra = Migration(len(MIGRATIONS) + 1, "dies", half_way)
    EventStore(home / "events.duckdb", home=home, migrations=(*MIGRATIONS, extra)).open()
""")


def test_migration_killed_half_way_leaves_the_store_usable(tutela_home: Path) -> None:
    with EventWriter(tutela_home) as w:
        w.append("dns", ALLOW, subject="before")
    proc = subprocess.run([sys.executable, "-c", KILLED_MIGRATION, str(tutela_home)], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    s = store(tutela_home)
    assert s.open() == len(MIGRATIONS)  # still at the newest shipped version, the half-applied one rolled back
    assert s.count() == 1
    cols, _ = s.query("SELECT * FROM events LIMIT 0")
    assert "extra" not in cols
    _, tables = s.query("SELECT table_name FROM information_schema.tables WHERE table_name = 'half_done'")
    assert tables == []

    def add_extra(db: object) -> None:
        db.execute("ALTER TABLE events ADD COLUMN extra VARCHAR")  # type: ignore[attr-defined]

    extra = Migration(len(MIGRATIONS) + 1, "extra", add_extra)
    again = EventStore(s.path, home=tutela_home, migrations=(*MIGRATIONS, extra))
    assert again.open() == len(MIGRATIONS) + 1


def test_export_parquet(tutela_home: Path, tmp_path: Path) -> None:
    with EventWriter(tutela_home) as w:
        for i in range(100):
            w.append("dns" if i % 2 else "runtime", BLOCK if i % 10 == 0 else ALLOW, subject=str(i))
    out = tmp_path / "events.parquet"
    assert store(tutela_home).export(out) == 100
    table = pq.read_table(out)
    assert table.num_rows == 100 and "findings" in table.column_names
    assert store(tutela_home).export(tmp_path / "dns.parquet", where="pillar = ?", params=["dns"]) == 50


def test_buffer_bound_counts_refused_events(tutela_home: Path) -> None:
    w = EventWriter(tutela_home, max_buffer=1000)
    for _ in range(1500):
        w.append("dns", ALLOW)
    assert w.dropped == 500
    w.close()
    assert store(tutela_home).count() == 1000


def test_findings_are_serialised_by_flush_not_by_append(tutela_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tutela.core.store import writer as writer_module

    calls: list[Verdict] = []
    real = writer_module._verdict_json

    def counting(verdict: Verdict) -> tuple[str, int | None, str | None]:
        calls.append(verdict)
        return real(verdict)

    monkeypatch.setattr(writer_module, "_verdict_json", counting)
    w = EventWriter(tutela_home, ingest_interval=None)
    attrs = {"qtype": 1}
    w.append("dns", BLOCK, subject="a.example", attrs=attrs)
    attrs["qtype"] = 28  # the caller may reuse its dict: the event keeps what was appended
    assert calls == []
    w.flush()
    assert calls == [BLOCK]
    w.close()
    _cols, rows = store(tutela_home).query("SELECT findings, attrs FROM events")
    assert json.loads(rows[0][0])[0]["evidence"] == {"entropy": "3.9"} and json.loads(rows[0][1]) == {"qtype": 1}


def test_an_event_that_cannot_be_serialised_is_dropped_alone(tutela_home: Path) -> None:
    bad = Verdict(action=Action.BLOCK, findings=(Finding(detector="d", detector_version="1", rule="r", category="c",
                  severity=Severity.HIGH, confidence=1.0, message="m", evidence={"x": object()}),))  # fmt: skip
    w = EventWriter(tutela_home, ingest_interval=None)
    w.append("dns", BLOCK)
    w.append("dns", bad)
    w.append("dns", ALLOW)
    w.close()
    assert w.dropped == 1 and store(tutela_home).count() == 2


def test_default_migrations_are_numbered_in_order() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert len({m.name for m in MIGRATIONS}) == len(MIGRATIONS)
