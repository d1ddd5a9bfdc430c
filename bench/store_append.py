"""Event store append benchmark (issue 2: >= 200,000 events/s appended on the 2-core machine).

Appends N events (every 10th a block verdict with a finding, the rest allow) through EventWriter while
its background thread spools them, then closes the writer, which ingests everything into DuckDB.
Reports, over R repeated runs, the median and spread of:
  append/s      events appended per second on the caller's thread (the data-path cost)
  end-to-end/s  events per second from the first append until they are queryable in DuckDB
Run: .venv/bin/python bench/store_append.py [--events N] [--runs R]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from tutela.core.findings import Action, Finding, Severity, Verdict
from tutela.core.store import EventStore, EventWriter

RESULTS = Path(__file__).parent / "results" / "store_append.json"


def one_run(n: int) -> tuple[float, float]:
    finding = Finding(
        detector="dns.dga",
        detector_version="1",
        rule="char_dga",
        category="dga",
        severity=Severity.HIGH,
        confidence=0.99,
        message="DGA-like name",
        evidence={"entropy": "3.9"},
    )
    block = Verdict(action=Action.BLOCK, findings=(finding,))
    allow = Verdict(action=Action.ALLOW)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        writer = EventWriter(home, flush_interval=0.5)
        writer.start()
        names = [f"host{i % 5000}.example.com" for i in range(1000)]
        start = time.perf_counter()
        for i in range(n):
            writer.append("dns", block if i % 10 == 0 else allow, source="127.0.0.1", subject=names[i % 1000])
        appended = time.perf_counter()
        writer.close()
        done = time.perf_counter()
        count = EventStore(home / "events.duckdb", home=home).count()
        assert count == n, f"lost events: {count} of {n}"
    return n / (appended - start), n / (done - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = [one_run(args.events) for _ in range(args.runs)]
    appends = [a for a, _ in runs]
    e2e = [e for _, e in runs]
    result = {
        "benchmark": "store_append",
        "events": args.events,
        "runs": args.runs,
        "append_per_s": {"median": statistics.median(appends), "min": min(appends), "max": max(appends)},
        "end_to_end_per_s": {"median": statistics.median(e2e), "min": min(e2e), "max": max(e2e)},
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
