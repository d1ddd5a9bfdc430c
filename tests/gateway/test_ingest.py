"""The gateway moves its event spool into DuckDB from a child process (tutela.runtime.gateway.ingest), every
`store_ingest_interval_s`, so DuckDB work never stalls the serving process's event loop."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import httpx

from tests.runtime.conftest import PROFILES, run_gateway
from tests.runtime.fake_upstream import FakeUpstream
from tutela.core.store import spool
from tutela.runtime.gateway.ingest import main as ingest_main


def test_events_reach_duckdb_without_a_reader(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with FakeUpstream() as up, run_gateway(home, up.base, PROFILES, store_ingest_interval_s=0.3) as gw:
        body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
        for _ in range(12):
            assert httpx.post(gw.base + "/chat/completions", json=body).status_code == 200
        deadline = time.monotonic() + 30
        while gw.gateway.metrics.ingested < 12 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gw.gateway.metrics.ingested == 12, gw.gateway.metrics.last_ingest_error
        assert gw.gateway.metrics.ingest_errors == 0
        assert not spool.pending_segments(home)
        metrics = httpx.get(gw.url + "/metrics").text
        assert "tutela_gateway_events_ingested_total 12" in metrics
        # read the DuckDB file directly (an EventStore reader would ingest the spool itself)
        with duckdb.connect(str(home / "events.duckdb"), read_only=True) as db:
            assert db.execute("select count(*) from events where source like 'gateway:%'").fetchone() == (12,)


def test_ingest_module_usage_and_errors(tmp_path: Path) -> None:
    assert ingest_main([]) == 2
    home, store = tmp_path / "home", tmp_path / "events.duckdb"
    assert ingest_main([str(home), str(store)]) == 0  # nothing spooled: nothing to do
    spool.spool_dir(home).mkdir(parents=True)
    bad = spool.spool_dir(home) / f"000-torn{spool.SUFFIX}"
    bad.write_bytes(b"not an arrow file")
    assert ingest_main([str(home), str(store)]) == 1  # reported, never a traceback; the segment kept aside
    assert not bad.exists() and bad.with_suffix(".bad").exists()
