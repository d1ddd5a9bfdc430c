"""The store keeper: the sensor's DuckDB work (event ingestion, passive-DNS upserts) in its own process.

Why: opening DuckDB and running its statements holds the GIL for milliseconds at a time; done by a
background thread of the sensor, that stalls the event loop (GIL switches every 5 ms) and shows in the
p99 latency of every query in flight. So the sensor only spools (events as Arrow segments through
`EventWriter(ingest_interval=None)`, passive DNS as Arrow batches through
`PassiveDnsRecorder(spool=True)`), and this process, started by `tutela dns serve`, moves both into
the store every `interval` seconds. It exits when its parent does; the sensor ingests what is left
at shutdown. Run alone: `python -m tutela.dns.keeper --home DIR --store FILE [--interval 5]`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path

from tutela.core.store import EventStore
from tutela.dns.takeover.passive import ingest_passive_spool

log = logging.getLogger(__name__)


def keep_once(home: Path, store_path: Path) -> tuple[int, int]:
    """One round: (events ingested, passive-DNS keys upserted). Errors are logged, data stays spooled."""
    events = passive = 0
    try:
        events = EventStore(store_path, home=home).ingest(blocking=False)
    except Exception as exc:
        log.warning("event ingest deferred: %s", exc)
    try:
        passive = ingest_passive_spool(home, store_path)
    except Exception as exc:
        log.warning("passive DNS upsert deferred: %s", exc)
    return events, passive


def keep(home: Path, store_path: Path, interval: float, parent: int) -> None:
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the sensor's Ctrl-C: it stops us with SIGTERM
    while not stop and os.getppid() == parent:
        deadline = time.monotonic() + interval
        while not stop and time.monotonic() < deadline and os.getppid() == parent:
            time.sleep(0.2)
        if not stop:
            keep_once(home, store_path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tutela.dns.keeper", description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--parent", type=int, default=os.getppid())
    args = ap.parse_args(argv)
    with contextlib.suppress(OSError):
        os.nice(19)  # the sensor's queries come first: at nice 5 its bursts still delayed the sensor's wake-ups
    keep(args.home, args.store, args.interval, args.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
