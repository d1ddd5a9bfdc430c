"""`tutela dns dangling` and `tutela dns history`, hooked under `tutela dns` by `register_dangling` and
`register_history`.

Thin: the scanner, the saved findings and passive DNS live in `tutela.dns.takeover`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tutela.cli.context import EXIT_CLEAN, EXIT_FINDINGS, CliContext, emit_json, emit_table
from tutela.core.errors import ConfigError


def register_dangling(sub: Any) -> None:
    p = sub.add_parser(
        "dangling",
        help="find CNAME/MX/NS/SRV records that point at names or resources nobody controls",
        description="Exit status: 0 no dangling record, 1 dangling records found, 2 error.",
    )
    p.add_argument("zonefile", nargs="?", type=Path, help="zone master file (or use --axfr)")
    p.add_argument("--axfr", nargs=2, metavar=("SERVER", "ZONE"), help="transfer ZONE from SERVER[:PORT] instead")
    p.add_argument("--origin", help="zone origin when the file has no $ORIGIN")
    p.add_argument("--resolver", help="HOST:PORT of the resolver that checks the targets (or config resolver)")
    p.add_argument("--format", choices=["json", "sarif", "table"], default="json")
    p.add_argument("--output", type=Path, help="write the report here instead of stdout")
    p.add_argument("--released", action="append", default=[], metavar="ADDR", help="released address or prefix")
    p.add_argument("--released-file", type=Path, help="file of released addresses/prefixes, one per line")
    p.add_argument("--fingerprints", type=Path, help="extra fingerprint JSON (same shape as the bundled one)")
    p.add_argument("--http", action="store_true", help="also probe HTTP signs of unclaimed resources (network!)")
    p.add_argument("--save", action="store_true", help="save findings under TUTELA_HOME for the dns.dangling detector")
    p.add_argument("--timeout", type=float, help="seconds per query attempt")
    p.add_argument("--stats", action="store_true", help="print scan statistics on stderr")
    p.add_argument("--history", action="store_true", help="add when each target last answered (passive DNS)")
    p.set_defaults(handler=_dangling)


def register_history(sub: Any) -> None:
    p = sub.add_parser("history", help="passive DNS: what NAME resolved to, first and last seen, how often")
    p.add_argument("name")
    p.add_argument("--type", dest="rtype", help="only this record type (A, AAAA, CNAME, ...)")
    p.add_argument("--subdomains", action="store_true", help="include names under NAME")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_history)


def _dangling(args: argparse.Namespace, ctx: CliContext) -> int:
    from tutela.dns.takeover import report
    from tutela.dns.takeover.dangling import ScanOptions, scan_records
    from tutela.dns.takeover.fingerprints import Fingerprints
    from tutela.dns.takeover.settings import TakeoverSettings, parse_hostport
    from tutela.dns.takeover.zonefile import axfr, read_zone_file

    settings = ctx.settings
    conf: TakeoverSettings = settings.section("dns_takeover", TakeoverSettings)
    resolver = args.resolver or conf.resolver
    if not resolver:
        raise ConfigError("no resolver to check targets against", hint="pass --resolver HOST:PORT")
    if args.axfr:
        host, port = parse_hostport(args.axfr[0])
        zone = args.axfr[1].lower().rstrip(".")
        records = axfr(host, port, zone)
        source = f"axfr://{args.axfr[0]}/{zone}"
    elif args.zonefile:
        zone, records = read_zone_file(args.zonefile, args.origin)
        source = str(args.zonefile)
    else:
        raise ConfigError("give a ZONEFILE or --axfr SERVER ZONE")
    released = list(conf.released_addresses) + list(args.released)
    if args.released_file:
        try:
            lines = args.released_file.read_text("utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read {args.released_file}: {exc.strerror or exc}") from None
        released += [ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip()]
    fingerprints = Fingerprints.load(args.fingerprints or conf.fingerprints_file)
    options = ScanOptions(released=released, http=args.http)
    findings, stats = scan_records(
        zone,
        records,
        parse_hostport(resolver),
        fingerprints=fingerprints,
        options=options,
        timeout=args.timeout or conf.timeout_s,
        attempts=conf.attempts,
    )
    if args.save:
        report.save(settings.home, zone, findings)
    out = sys.stdout
    if args.output:
        out = args.output.open("w", encoding="utf-8")
    try:
        if args.format == "json":
            seen = None
            if args.history:
                from tutela.dns.takeover.passive import last_seen

                names = [n for f in findings for n in (f.target, *f.chain)]
                seen = last_seen(settings.store_path, settings.home, names)
            out.write(json.dumps(report.to_json(findings, stats, zone, seen), indent=2) + "\n")
        elif args.format == "sarif":
            out.write(json.dumps(report.to_sarif(findings, source), indent=2) + "\n")
        elif out is sys.stdout:
            emit_table(report.TABLE_COLUMNS, report.table_rows(findings), title=f"{len(findings)} dangling records")
        else:
            for row in report.table_rows(findings):
                out.write("\t".join(row) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if args.stats:
        print(json.dumps(stats.to_dict()), file=sys.stderr)
    return EXIT_FINDINGS if findings else EXIT_CLEAN


def _history(args: argparse.Namespace, ctx: CliContext) -> int:
    from tutela.dns.takeover.passive import history

    settings = ctx.settings
    rows = history(
        settings.store_path,
        settings.home,
        args.name,
        rtype=args.rtype,
        subdomains=args.subdomains,
        limit=args.limit,
    )
    if args.json:
        emit_json([r.to_dict() for r in rows])
    else:
        emit_table(
            ["name", "type", "answer", "first seen", "last seen", "count"],
            ([r.name, r.rtype, r.answer, r.first_seen[:19], r.last_seen[:19], r.count] for r in rows),
            title=f"passive DNS for {args.name}: {len(rows)} answers",
        )
    return EXIT_CLEAN
