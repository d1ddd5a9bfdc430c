"""Move the event spool into DuckDB in a process of its own: the gateway's periodic ingestion.

Ingesting a few thousand events takes the gateway's process half a second or more of DuckDB and Arrow
work, and in the gateway's own process that stalls its event loop (tens of ms: every request then in
flight pays it at p99). The gateway runs this module every `gateway.store_ingest_interval_s` instead:
another process, another core, and the store's lock serialises it with every other writer and reader.
Run: python -m tutela.runtime.gateway.ingest HOME STORE_PATH
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m tutela.runtime.gateway.ingest HOME STORE_PATH", file=sys.stderr)
        return 2
    from tutela.core.store import EventStore

    home, store = Path(args[0]), Path(args[1])
    try:
        n = EventStore(store, home=home).ingest(blocking=False)
    except Exception as exc:  # the spool keeps the events; the next run retries
        print(f"tutela gateway: event ingest deferred: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
