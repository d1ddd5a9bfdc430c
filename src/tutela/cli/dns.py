"""`tutela dns serve | replay | top`: the inline sensor, retro-hunting, and what it sees now."""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tutela.cli.context import EXIT_CLEAN, EXIT_FINDINGS, CliContext, emit_json, emit_table
from tutela.cli.dns_models import register_score
from tutela.cli.dns_takeover import register_dangling, register_history
from tutela.core.errors import ConfigError
from tutela.core.findings import Severity
from tutela.core.services import split_listen


def register(groups: Any) -> None:
    p = groups.add_parser("dns", help="DNS security: the inline sensor, replay and live top")
    sub = p.add_subparsers(dest="dns_command", metavar="ACTION", required=True)

    sv = sub.add_parser("serve", help="run the inline sensor (a forwarding resolver on UDP and TCP)")
    sv.add_argument("--listen", help="HOST:PORT (default: dns.listen, 127.0.0.1:5353)")
    sv.add_argument(
        "--upstream", action="append", help="HOST:PORT of a resolver, repeatable, in order of preference "
        "(default: dns.upstreams, else /etc/resolv.conf)"
    )  # fmt: skip
    sv.add_argument("--metrics", metavar="HOST:PORT", help="serve Prometheus metrics on http://HOST:PORT/metrics")
    sv.add_argument(
        "--protect-zone", action="append", default=[], metavar="ZONE",
        help="guard answers for names under ZONE against hijacking (repeatable; adds to dns.hijack's protect_zones)",
    )  # fmt: skip
    sv.add_argument(
        "--workers", type=int, help="processes sharing the port with SO_REUSEPORT (default: dns.workers, 1)"
    )
    sv.set_defaults(handler=_serve)

    rp = sub.add_parser("replay", help="judge a pcap, a Zeek dns.log or a list of names with the inline detectors")
    rp.add_argument("file", type=Path)
    rp.add_argument("--format", default="auto", choices=["auto", "names", "zeek", "zeek-json", "suricata", "pcap"])
    rp.add_argument("--json", action="store_true", help="print every non-allow verdict as JSON")
    rp.add_argument("--no-store", action="store_true", help="do not write events to the store")
    rp.add_argument("--fail-on", default="high", help="exit 1 when a finding reaches this severity (default high)")
    rp.add_argument("--limit", type=int, default=30, help="rows of the table (default 30)")
    rp.set_defaults(handler=_replay)

    tp = sub.add_parser("top", help="top clients and top blocked names of the running sensor")
    tp.add_argument("-n", type=int, default=10)
    tp.add_argument("--watch", type=float, metavar="SECONDS", help="refresh every SECONDS until Ctrl-C")
    tp.add_argument("--json", action="store_true")
    tp.set_defaults(handler=_top)

    register_score(sub)
    register_dangling(sub)
    register_history(sub)


def _dns_settings(ctx: CliContext) -> Any:
    from tutela.dns.settings import DnsSettings

    return ctx.settings.section("dns", DnsSettings)


def _serve(args: argparse.Namespace, ctx: CliContext) -> int:
    from tutela.dns.server import run
    from tutela.dns.settings import system_upstreams

    dns = _dns_settings(ctx)
    listen = args.listen or dns.listen
    upstreams = list(args.upstream or dns.upstreams or system_upstreams())
    for spec in [listen, *upstreams, *([args.metrics] if args.metrics else [])]:
        split_listen(spec)
    if not upstreams:
        raise ConfigError("no upstream resolver", hint="pass --upstream HOST:PORT or set dns.upstreams")
    workers = args.workers or dns.workers
    if not 1 <= workers <= 64:
        raise ConfigError(f"--workers {workers}: use 1 to 64")
    run(
        with_protected_zones(ctx.settings, ctx.detectors, args.protect_zone),
        ctx.detectors,
        listen,
        upstreams,
        metrics_listen=args.metrics or dns.metrics_listen,
        workers=workers,
    )
    return EXIT_CLEAN


def with_protected_zones(settings: Any, registry: Any, zones: list[str]) -> Any:
    """Settings whose dns pipeline has `dns.hijack` protecting `zones` (added to any configured)."""
    if not zones:
        return settings
    from tutela.core.pipeline import DetectorSpec

    specs = list(settings.detectors.get("dns") or [DetectorSpec(id=n) for n in registry.for_pillar("dns")])
    index = next((i for i, s in enumerate(specs) if s.id == "dns.hijack"), None)
    if index is None:
        specs.append(DetectorSpec(id="dns.hijack"))
        index = len(specs) - 1
    spec = specs[index]
    current = tuple(spec.params.get("protect_zones", ()))
    added = tuple(z.lower().rstrip(".") for z in zones if z.lower().rstrip(".") not in current)
    specs[index] = spec.model_copy(update={"params": {**spec.params, "protect_zones": current + added}})
    return settings.model_copy(update={"detectors": {**settings.detectors, "dns": tuple(specs)}})


def _replay(args: argparse.Namespace, ctx: CliContext) -> int:
    from tutela.core.store import EventWriter
    from tutela.dns.engine import DnsEngine
    from tutela.dns.replay import read_records, replay

    try:
        fail_on = Severity.parse(args.fail_on)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    settings = ctx.settings
    writer = None if args.no_store else EventWriter(settings.home, settings.store_path, ingest_interval=None)
    engine = DnsEngine.from_settings(settings, ctx.detectors, writer=writer, source="dns-replay")
    started = time.perf_counter()
    try:
        if writer is not None:
            writer.start()
        result = replay(engine, read_records(args.file, args.format))
    finally:
        engine.close()
        if writer is not None:
            writer.close()
    elapsed = time.perf_counter() - started
    worst = max((v.max_severity for _, _, v in result.flagged if v.max_severity is not None), default=None)
    if args.json:
        emit_json(
            {
                "file": str(args.file),
                "records": result.records,
                "actions": dict(result.actions),
                "flagged": [{"name": n, "stage": s, **v.to_dict()} for n, s, v in result.flagged],
            }
        )
    else:
        rows = []
        for name, stage, v in result.flagged[: args.limit]:
            why = "; ".join(f"{f.detector}/{f.rule} {f.confidence:.2f}" for f in v.findings) or "; ".join(v.reasons)
            rows.append([name, stage, v.action.value, ",".join(v.categories) or "-", why])
        emit_table(["name", "stage", "action", "category", "why"], rows, title=f"{args.file.name}: flagged")
        summary = ", ".join(f"{k} {n}" for k, n in sorted(result.actions.items()))
        print(f"{result.records} records in {elapsed:.2f} s: {summary}")
    return EXIT_FINDINGS if worst is not None and worst >= fail_on else EXIT_CLEAN


def _read_top(ctx: CliContext, n: int) -> dict[str, Any] | None:
    """The live snapshots of every sensor worker (run/dns-top-<i>.json, fresh within 60 s), merged."""
    snaps = []
    for path in sorted((ctx.settings.home / "run").glob("dns-top-*.json")):
        try:
            snap = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(snap, dict) and time.time() - float(snap.get("ts", 0)) <= 60:
            snaps.append(snap)
    if not snaps:
        return None
    clients: Counter[str] = Counter()
    blocked: Counter[str] = Counter()
    for snap in snaps:
        clients.update(dict((k, v) for k, v in snap.get("top_clients", [])))
        blocked.update(dict((k, v) for k, v in snap.get("top_blocked", [])))
    return {
        "ts": max(float(s["ts"]) for s in snaps),
        "listen": snaps[0].get("listen"),
        "workers": len(snaps),
        "uptime_s": max(float(s.get("uptime_s", 0)) for s in snaps),
        "queries": sum(int(s.get("queries", 0)) for s in snaps),
        "top_clients": clients.most_common(n),
        "top_blocked": blocked.most_common(n),
    }


def _top_from_store(ctx: CliContext, n: int) -> dict[str, Any]:
    from tutela.core.store import EventStore

    store = EventStore(ctx.settings.store_path, home=ctx.settings.home)
    _, clients = store.query(
        "SELECT source, count(*) AS n FROM events WHERE pillar = 'dns' GROUP BY source ORDER BY n DESC LIMIT ?", [n]
    )
    _, blocked = store.query(
        "SELECT subject, count(*) AS n FROM events WHERE pillar = 'dns' AND action IN ('block', 'sinkhole') "
        "GROUP BY subject ORDER BY n DESC LIMIT ?",
        [n],
    )
    return {"source": "event store (no sensor running)", "top_clients": clients, "top_blocked": blocked}


def _top(args: argparse.Namespace, ctx: CliContext) -> int:
    while True:
        snap = _read_top(ctx, args.n)
        if snap is None:
            snap = _top_from_store(ctx, args.n)
            title = "from the event store (flagged queries only; no live sensor)"
        else:
            title = (
                f"live sensor on {snap.get('listen')}: {snap.get('queries', 0)} queries, up {snap.get('uptime_s')} s"
            )
        if args.json:
            emit_json(snap)
        else:
            emit_table(["client", "queries"], [list(r) for r in snap["top_clients"][: args.n]], title=title)
            emit_table(["name", "blocked"], [list(r) for r in snap["top_blocked"][: args.n]], title="top blocked names")
        if not args.watch:
            return EXIT_CLEAN
        time.sleep(args.watch)
