"""The `tutela` command. Thin: parsing and printing; the work lives in core and the pillars.

Command groups register themselves through the `tutela.commands` entry points, so a pillar's
commands appear when the pillar is installed. `main(argv) -> int` is testable in-process.

Start-up is part of the interface (`tutela posture scan-models` in CI, `tutela runtime scan` in hooks):
when argv names a group, only that group's module is imported; `tutela --help` imports them all.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from tutela import __version__
from tutela.cli.context import EXIT_ERROR, CliContext
from tutela.core.errors import TutelaError
from tutela.core.registry import COMMANDS, Registry


def _named_group(argv: Sequence[str], names: Sequence[str]) -> str | None:
    """The command group argv names (its first positional argument), if it is an entry point's name."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token == "--config":
            skip = True
        elif not token.startswith("-"):
            return token if token in names else None
        elif token == "--":
            return None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with argv, only the group it names is imported (all of them otherwise)."""
    parser = argparse.ArgumentParser(
        prog="tutela", description="tutela: open, self-hosted security for DNS and for AI."
    )
    parser.add_argument("--version", action="version", version=f"tutela {__version__}")
    parser.add_argument(
        "--config", type=Path, help="YAML config file (default: $TUTELA_CONFIG or $TUTELA_HOME/config.yaml)"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    groups = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = Registry[object].from_entry_points(COMMANDS)
    names = commands.names()
    wanted = _named_group(argv, names) if argv is not None else None
    if wanted is not None:
        commands.get(wanted)(groups)  # type: ignore[operator]
        if wanted in groups.choices:
            return parser
        names = [n for n in names if n != wanted]  # an entry point that registers other names: load them all
    for name in names:
        register = commands.get(name)
        register(groups)  # type: ignore[operator]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return EXIT_ERROR
        ctx = CliContext(config=args.config, debug=args.debug)
        return int(handler(args, ctx))
    except TutelaError as exc:
        if debug:
            traceback.print_exc()
        print(f"tutela: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("tutela: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # never a traceback for users unless asked
        if debug:
            traceback.print_exc()
        print(f"tutela: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr)
        return EXIT_ERROR
