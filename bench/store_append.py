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
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import Table, package_versions, spread, write_result
from tutela.core.findings import Action, Finding, Severity, Verdict
from tutela.core.store import EventStore, EventWriter


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
    started = time.monotonic()
    runs = [one_run(args.events) for _ in range(args.runs)]
    appends = spread([a for a, _ in runs])
    e2e = spread([e for _, e in runs])
    met = "met" if appends["median"] >= 200_000 else "missed"
    path = write_result(
        "store_append",
        started=started,
        title="Event store append",
        issue=2,
        command=f".venv/bin/python bench/store_append.py --events {args.events} --runs {args.runs}",
        target=">= 200,000 events/s appended on this 2-core machine",
        about=(
            f"One process appends {args.events:,} events (every 10th a block verdict with a finding, the rest "
            "allow) through `EventWriter` while its background thread spools Arrow segments every 0.5 s; then "
            "`close()` ingests them into DuckDB and the script checks that every row is queryable."
        ),
        tables=[
            Table(
                f"Throughput, {args.runs} runs (target {met})",
                ["measure", "median", "min", "max"],
                [
                    ["appended/s (data-path cost)", appends["median"], appends["min"], appends["max"]],
                    ["end-to-end into DuckDB/s", e2e["median"], e2e["min"], e2e["max"]],
                ],
            )
        ],
        not_measured=[
            "several writer processes at once (covered for correctness, not speed, by tests/core/test_store.py)",
            "fsync durability: the spool survives a process crash, not a power cut",
        ],
        versions=package_versions(["duckdb", "pyarrow"]),
        raw={"append_per_s": [a for a, _ in runs], "end_to_end_per_s": [e for _, e in runs]},
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
