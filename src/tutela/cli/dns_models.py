"""CLI for the DNS threat models: `tutela train dns`, `tutela eval dns` (via tutela.cli.evaluation), and name scoring.

`register_score(dns_subparsers)` adds `score` under the `tutela dns` group:

    tutela dns score [--detector dga|tunnel|all] < names.txt > scores.jsonl

reads one name per line and writes one JSON object per line, in input order, with `name`, `score`
(0..1, the common confidence scale: LOW 0.5, MEDIUM 0.7, HIGH 0.9), `level`, `action` (under the
default dns policy), `category`, `reasons` and, for DGAs, `families`. Names are scored in batches.
Tunnel scoring here is per query only: the session window needs clients and times, which a list of
names does not have.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from tutela.cli.context import EXIT_CLEAN, CliContext

BATCH = 4096
MAX_LINE = 1024


def register_train(groups: Any) -> None:
    p = groups.add_parser("train", help="train shipped models from data (reproducible)")
    sub = p.add_subparsers(dest="train_command", metavar="PILLAR", required=True)
    dns = sub.add_parser("dns", help="DNS threat models: lexicon, DGA, DGA families, tunnels")
    dns.add_argument("--data", type=Path, required=True, help="the shared data's dns folder")
    dns.add_argument("--out", type=Path, help="output folder (default: the installed tutela/dns/models)")
    dns.add_argument("--seed", type=int, default=7)
    dns.set_defaults(handler=_train_dns)


def register_eval_dns(sub: Any) -> None:
    """`dns` under `tutela eval` (see tutela.cli.evaluation)."""
    dns = sub.add_parser("dns", help="DNS report card: per family, leave-family-out, tunnels")
    dns.add_argument("--data", type=Path, required=True, help="the shared data's dns folder")
    dns.add_argument("--out", type=Path, default=Path("docs/eval/dns.md"))
    dns.add_argument("--no-lofo", action="store_true", help="skip the leave-family-out retrainings")
    dns.set_defaults(handler=_eval_dns)


def register_score(dns_subparsers: Any) -> None:
    p = dns_subparsers.add_parser("score", help="score names from stdin (one per line) as JSON lines")
    p.add_argument("--detector", choices=("dga", "tunnel", "all"), default="all")
    p.set_defaults(handler=_score)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


def _train_dns(args: argparse.Namespace, ctx: CliContext) -> int:
    from tutela.dns.training.train import train

    out = args.out or Path(str(resources.files("tutela.dns.models")))
    result = train(args.data, out, seed=args.seed, progress=_say)
    for name, sha in sorted(result["sha256"].items()):
        print(f"{name}.json sha256 {sha}")
    print(f"pins written to {out / 'pins.py'}")
    return EXIT_CLEAN


def _eval_dns(args: argparse.Namespace, ctx: CliContext) -> int:
    from tutela.dns.training.evaluate import evaluate

    evaluate(args.data, args.out, lofo=not args.no_lofo, progress=_say)
    print(f"report written to {args.out}")
    return EXIT_CLEAN


def _batches(stream: Any) -> Iterator[list[str]]:
    batch: list[str] = []
    for raw in stream:
        line = raw[:MAX_LINE].strip() if isinstance(raw, str) else raw[:MAX_LINE].decode("utf-8", "replace").strip()
        batch.append(line)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _score(args: argparse.Namespace, ctx: CliContext) -> int:
    from tutela.dns.batch import NameScorer

    scorer = NameScorer(args.detector)
    out = sys.stdout.buffer
    stdin = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
    for batch in _batches(stdin):
        out.write(b"".join(orjson.dumps(row) + b"\n" for row in scorer.score_batch(batch)))
    out.flush()
    return EXIT_CLEAN
