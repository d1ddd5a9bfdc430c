"""`tutela up`, `tutela down`, `tutela status`: the platform's services on loopback."""

from __future__ import annotations

import argparse
import signal
import time
from typing import Any

from tutela.cli.context import EXIT_CLEAN, EXIT_ERROR, CliContext, emit_json, emit_table
from tutela.core.registry import SERVICES, Registry
from tutela.core.services import ServiceSpec, ServiceState, pid_alive, start_services, status_rows, stop_services


def register(groups: Any) -> None:
    up = groups.add_parser("up", help="start every registered service on loopback")
    up.add_argument("--detach", action="store_true", help="return once the services answer")
    up.add_argument("--only", action="append", help="start only this service (repeatable)")
    up.set_defaults(handler=_up)
    down = groups.add_parser("down", help="stop the services `tutela up` started")
    down.set_defaults(handler=_down)
    status = groups.add_parser("status", help="what runs where")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=_status)


def _specs(only: list[str] | None) -> list[ServiceSpec]:
    registry = Registry[ServiceSpec].from_entry_points(SERVICES)
    names = registry.names()
    if only:
        names = [registry.get(n).name for n in only]  # get() names the unknown one
    return [registry.get(n) for n in names]


def _up(args: argparse.Namespace, ctx: CliContext) -> int:
    settings = ctx.settings
    started = start_services(settings, _specs(args.only))
    for s in started:
        print(f"{s.name:10} {s.protocol:5} {s.listen:22} pid {s.pid}  log {s.log}", flush=True)
    if args.detach:
        print("services started; `tutela status` shows them, `tutela down` stops them")
        return EXIT_CLEAN
    print("running; Ctrl-C stops every service", flush=True)
    stop = {"now": False}

    def _handle(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
    try:
        while not stop["now"]:
            dead = [s.name for s in started if not pid_alive(s.pid)]
            if dead:
                print(f"service exited: {', '.join(dead)}; stopping the others")
                stop_services(settings.home)
                return EXIT_ERROR
            time.sleep(0.5)
    finally:
        stop_services(settings.home)
    return EXIT_CLEAN


def _down(args: argparse.Namespace, ctx: CliContext) -> int:
    stopped = stop_services(ctx.settings.home)
    print(f"stopped: {', '.join(stopped)}" if stopped else "no services were running")
    return EXIT_CLEAN


def _status(args: argparse.Namespace, ctx: CliContext) -> int:
    rows = status_rows(ServiceState(ctx.settings.home))
    if args.json:
        emit_json(rows)
    elif not rows:
        print("no services running; start them with `tutela up`")
    else:
        emit_table(
            ["name", "pillar", "protocol", "listen", "pid", "state", "uptime_s"],
            ([r[k] for k in ("name", "pillar", "protocol", "listen", "pid", "state", "uptime_s")] for r in rows),
        )
    return EXIT_CLEAN
