"""The benchmark suite: `python -m bench.run [NAME...] [--quick] [--render-only] [--list]`.

Each comparison is a table in `bench/suite.toml`:

    [dns_path]
    script = "bench/dns_sensor.py"      # run with tutela's python from the repository root
    args = ["--runs", "5"]              # the full run
    quick_args = ["--runs", "1"]        # a smoke run (--quick)
    envs = ["dns"]                      # peer environments it needs (bench/envs/<env>.txt)
    timeout_s = 900
    gpu = true                          # needs a CUDA device: run only with --gpu (the device machine)

Every script writes `bench/results/<name>.json` through `bench.report.write_result`; after the runs,
docs/benchmarks.md is regenerated from all result files. A comparison that fails is reported and the
suite goes on; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import tomllib

from bench import envs
from bench.report import ROOT, load_results, render

SUITE = ROOT / "bench" / "suite.toml"
DOC = ROOT / "docs" / "benchmarks.md"


def load_suite() -> dict[str, dict]:
    return tomllib.loads(SUITE.read_text())


def run_one(name: str, spec: dict, quick: bool, gpu: bool = False) -> bool:
    if spec.get("gpu") and not gpu:
        print(f"== {name}: skipped, needs a GPU (run with --gpu there); its last result is kept", flush=True)
        return True
    for env in spec.get("envs", []):
        envs.ensure(env)
    argv = [sys.executable, spec["script"], *(spec.get("quick_args", []) if quick else spec.get("args", []))]
    print(f"== {name}: {' '.join(argv[1:])}", flush=True)
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=ROOT, timeout=spec.get("timeout_s", 1800))
        ok = proc.returncode == 0
    except subprocess.TimeoutExpired:
        ok = False
    print(f"== {name}: {'ok' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s", flush=True)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="comparisons to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smoke-run sizes, for checking the suite itself")
    parser.add_argument("--render-only", action="store_true", help="only regenerate docs/benchmarks.md")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--gpu", action="store_true", help="also run the comparisons that need a CUDA device")
    args = parser.parse_args(argv)
    suite = load_suite()
    if args.list:
        for name, spec in suite.items():
            print(f"{name}\t{spec['script']}")
        return 0
    unknown = [n for n in args.names if n not in suite]
    if unknown:
        print(f"unknown comparison(s): {', '.join(unknown)}; known: {', '.join(suite)}", file=sys.stderr)
        return 2
    failed = []
    if not args.render_only:
        for name in args.names or list(suite):
            if not run_one(name, suite[name], args.quick, args.gpu):
                failed.append(name)
    DOC.write_text(render(load_results(), order=list(suite)))
    print(f"wrote {DOC.relative_to(ROOT)}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
