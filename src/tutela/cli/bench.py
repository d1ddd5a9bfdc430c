"""`tutela bench [NAME...]`: the side-by-side benchmark suite of the source checkout (bench/run.py).

The suite installs peers into its own environments and regenerates docs/benchmarks.md, so it only makes
sense in a checkout; an installed tutela without one gets a clear error instead.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tutela.core.errors import TutelaError


def checkout_root() -> Path:
    root = Path(__file__).resolve().parents[3]  # src/tutela/cli/bench.py -> the repository
    if not (root / "bench" / "run.py").is_file():
        raise TutelaError(
            "the benchmark suite lives in tutela's source checkout (bench/run.py); none found here",
            hint="clone the repository and run make bench",
        )
    return root


def run_bench(args: Any, ctx: Any) -> int:
    argv = [sys.executable, "-m", "bench.run", *args.names]
    argv += [
        flag for flag, on in (("--quick", args.quick), ("--render-only", args.render_only), ("--list", args.list)) if on
    ]
    return subprocess.run(argv, cwd=checkout_root()).returncode


def register(groups: Any) -> None:
    p = groups.add_parser("bench", help="run the side-by-side benchmark suite (docs/benchmarks.md)")
    p.add_argument("names", nargs="*", metavar="NAME", help="comparisons to run (default: all; see --list)")
    p.add_argument("--quick", action="store_true", help="smoke-run sizes, to check the suite itself")
    p.add_argument("--render-only", action="store_true", help="only regenerate docs/benchmarks.md from bench/results")
    p.add_argument("--list", action="store_true", help="list the comparisons")
    p.set_defaults(handler=run_bench)
