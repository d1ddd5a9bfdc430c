"""`tutela events ...`: read, export and serve the event store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tutela.cli.context import EXIT_CLEAN, CliContext, emit_json, emit_table


def register(groups: Any) -> None:
    p = groups.add_parser("events", help="the event store: every verdict of every pillar")
    sub = p.add_subparsers(dest="events_command", metavar="ACTION", required=True)

    ls = sub.add_parser("list", help="newest events first")
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--pillar")
    ls.add_argument("--action", help="allow, alert, redact, sinkhole or block")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=_list)

    ex = sub.add_parser("export", help="export events for Spark, pandas or another engine")
    ex.add_argument("--format", choices=["parquet", "csv", "jsonl"], default="parquet")
    ex.add_argument("--out", type=Path, required=True)
    ex.add_argument("--pillar")
    ex.set_defaults(handler=_export)

    st = sub.add_parser("stats", help="counts by pillar and action")
    st.add_argument("--json", action="store_true")
    st.set_defaults(handler=_stats)

    sv = sub.add_parser("serve", help="run the read-only events API (started by `tutela up`)")
    sv.add_argument("--listen", default="127.0.0.1:8470")
    sv.set_defaults(handler=_serve)


def _store(ctx: CliContext) -> Any:
    from tutela.core.store import EventStore  # lazy: pyarrow and DuckDB cost ~0.4 s at start-up

    s = ctx.settings
    return EventStore(s.store_path, home=s.home)


def _list(args: argparse.Namespace, ctx: CliContext) -> int:
    from tutela.core.api import recent_events

    events = recent_events(_store(ctx), limit=args.limit, pillar=args.pillar, action=args.action)
    if args.json:
        emit_json(events)
        return EXIT_CLEAN
    rows = []
    for e in events:
        why = "; ".join(f"{f['detector']}/{f['rule']} {f['confidence']:.2f}" for f in e["findings"] if "rule" in f)
        rows.append([e["ts"][:19], e["pillar"], e["source"], e["subject"], e["action"], e["category"], why])
    emit_table(["time", "pillar", "source", "subject", "action", "category", "why"], rows, title=f"{len(rows)} events")
    return EXIT_CLEAN


def _export(args: argparse.Namespace, ctx: CliContext) -> int:
    where, params = ("pillar = ?", [args.pillar]) if args.pillar else ("", [])
    n = _store(ctx).export(args.out, fmt=args.format, where=where, params=params)
    print(f"exported {n} events to {args.out} ({args.format})")
    return EXIT_CLEAN


def _stats(args: argparse.Namespace, ctx: CliContext) -> int:
    _, rows = _store(ctx).query("SELECT pillar, action, count(*) AS n FROM events GROUP BY ALL ORDER BY pillar, n DESC")
    if args.json:
        emit_json([{"pillar": p, "action": a, "count": n} for p, a, n in rows])
    else:
        emit_table(["pillar", "action", "count"], rows)
    return EXIT_CLEAN


def _serve(args: argparse.Namespace, ctx: CliContext) -> int:
    from tutela.core.api import serve

    print(json.dumps({"service": "api", "listen": args.listen}), flush=True)
    serve(ctx.settings, args.listen)
    return EXIT_CLEAN
