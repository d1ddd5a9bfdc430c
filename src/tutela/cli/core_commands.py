"""`tutela config ...` and `tutela detectors ...`."""

from __future__ import annotations

import argparse
from typing import Any

from tutela.cli.context import EXIT_CLEAN, CliContext, emit_json, emit_table


def register_config(groups: Any) -> None:
    p = groups.add_parser("config", help="check or show the configuration")
    sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate the config file and TUTELA_ environment variables")
    check.set_defaults(handler=_config_check)
    show = sub.add_parser("show", help="print the effective configuration as JSON")
    show.set_defaults(handler=_config_show)


def _config_check(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings  # loading validates everything, detectors included
    source = settings.config_file or "defaults (no config file)"
    print(f"config ok: {source}; home {settings.home}")
    return EXIT_CLEAN


def _config_show(args: argparse.Namespace, ctx: CliContext) -> int:
    emit_json(ctx.settings.model_dump(mode="json"))
    return EXIT_CLEAN


def register_detectors(groups: Any) -> None:
    p = groups.add_parser("detectors", help="the registered detectors")
    sub = p.add_subparsers(dest="detectors_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="list registered detectors")
    ls.add_argument("--json", action="store_true", help="print a JSON list")
    ls.add_argument("--pillar", help="only this pillar's detectors")
    ls.set_defaults(handler=_detectors_list)


def _detectors_list(args: argparse.Namespace, ctx: CliContext) -> int:
    rows = ctx.detectors.describe_all()
    if args.pillar:
        rows = [r for r in rows if r["pillar"] == args.pillar]
    if args.json:
        emit_json(rows)
    else:
        emit_table(
            ["id", "version", "pillar", "categories", "description"],
            ([r["id"], r["version"], r["pillar"], ", ".join(r["categories"]), r["description"]] for r in rows),
            title=f"{len(rows)} detectors",
        )
    return EXIT_CLEAN
