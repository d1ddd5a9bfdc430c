"""`tutela eval PILLAR`: each pillar's accuracy report card, written to docs/eval/<pillar>.md."""

from __future__ import annotations

from typing import Any

from tutela.cli.dns_models import register_eval_dns
from tutela.cli.runtime import register_eval_runtime


def register(groups: Any) -> None:
    p = groups.add_parser("eval", help="evaluate shipped models on held-out data (docs/eval/)")
    sub = p.add_subparsers(dest="eval_command", metavar="PILLAR", required=True)
    register_eval_dns(sub)
    register_eval_runtime(sub)
