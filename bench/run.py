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

A full run of the whole suite (no names, not --quick) also records itself as `bench/results/suite_run.json`:
the wall time of creating the peer environments (up front, side by side), of each comparison and of the
whole run, counted from `--started-at` (`make bench` passes the moment make started, so installing tutela
counts too) — the evidence for issue 9's "end to end in under 45 minutes on a fresh machine".
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass

from bench import envs
from bench.report import ROOT, Table, load_results, render, write_result

SUITE = ROOT / "bench" / "suite.toml"
DOC = ROOT / "docs" / "benchmarks.md"
SUITE_RUN = "suite_run"  # the record of the last full run; rendered first
BUDGET_MIN = 45  # issue 9: `make bench` end to end on a fresh machine of this kind


def load_suite() -> dict[str, dict]:
    return tomllib.loads(SUITE.read_text())


def doc_order(suite: dict[str, dict]) -> list[str]:
    return [SUITE_RUN, *suite]


@dataclass
class Outcome:
    name: str
    status: str  # ok | FAILED | timed out | skipped (no GPU)
    env_s: float = 0.0  # creating peer environments that did not exist yet
    run_s: float = 0.0
    fresh_envs: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "skipped (no GPU)")


def run_one(name: str, spec: dict, quick: bool, gpu: bool = False) -> Outcome:
    """One comparison; its peer environments were created by prepare_envs()."""
    if spec.get("gpu") and not gpu:
        print(f"== {name}: skipped, needs a GPU (run with --gpu there); its last result is kept", flush=True)
        return Outcome(name, "skipped (no GPU)")
    missing = [env for env in spec.get("envs", []) if not envs.is_current(env)]
    if missing:  # prepare_envs() could not create it
        print(f"== {name}: FAILED, no peer environment {', '.join(missing)}", flush=True)
        return Outcome(name, "FAILED")
    argv = [sys.executable, spec["script"], *(spec.get("quick_args", []) if quick else spec.get("args", []))]
    print(f"== {name}: {' '.join(argv[1:])}", flush=True)
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=ROOT, timeout=spec.get("timeout_s", 1800))
        status = "ok" if proc.returncode == 0 else "FAILED"
    except subprocess.TimeoutExpired:
        status = "timed out"
    run_s = time.monotonic() - started
    print(f"== {name}: {status} in {run_s:.0f} s", flush=True)
    return Outcome(name, status, run_s=run_s)


def prepare_envs(specs: list[dict]) -> Outcome:
    """Every peer environment the run needs, created up front and side by side (they are independent)."""
    needed = list(dict.fromkeys(env for spec in specs for env in spec.get("envs", [])))
    fresh = tuple(env for env in needed if not envs.is_current(env))
    t0 = time.monotonic()
    if fresh:
        print(f"== peer environments: creating {', '.join(fresh)}", flush=True)
        try:
            envs.ensure_all(list(fresh))
        except subprocess.CalledProcessError as exc:
            print(f"== peer environments: FAILED ({exc})", flush=True)
            return Outcome("peer environments", "FAILED", env_s=time.monotonic() - t0, fresh_envs=fresh)
    return Outcome("peer environments", "ok", env_s=time.monotonic() - t0, fresh_envs=fresh)


def record_suite_run(outcomes: list[Outcome], setup_s: float, started: float, started_at: float | None) -> None:
    total_s = setup_s + (time.monotonic() - started)
    rows: list[list[object]] = []
    if started_at is not None:
        rows.append(["setup: make install, system-deps, test-models", "ok", round(setup_s), ""])
    for o in outcomes:
        rows.append(
            [
                o.name,
                o.status,
                round(o.env_s + o.run_s),
                f"{o.env_s:.0f} s creating {', '.join(o.fresh_envs)}" if o.fresh_envs else "",
            ]
        )
    counted = (
        "counted from the moment make started, so installing tutela and the system packages counts too."
        if started_at is not None
        else "counted from the start of `python -m bench.run` (no install)."
    )
    verdict = "met" if total_s <= BUDGET_MIN * 60 and all(o.ok for o in outcomes) else "MISSED"
    rows.append(["whole run", verdict, round(total_s), f"{total_s / 60:.1f} min; target <= {BUDGET_MIN} min"])
    write_result(
        SUITE_RUN,
        title="The suite itself: `make bench` end to end",
        issue=9,
        command="make bench" if started_at is not None else "python -m bench.run",
        about="Wall time of the last full run of the suite: creating the peer environments that did not exist "
        "(named), each comparison, and the whole run, " + counted,
        target=f"issue 9: `make bench` end to end on a fresh machine of this kind in under {BUDGET_MIN} minutes",
        tables=[Table("Wall time (s)", ["step", "status", "seconds", "note"], rows)],
        notes=[
            "A comparison that needs a GPU is skipped on a CPU machine and keeps its committed result "
            "(run `python -m bench.run NAME --gpu` on the device)."
        ],
        not_measured=["whether pip and apt were served from a warm local cache (they are on the development VM)"],
        raw={"setup_s": setup_s, "total_s": total_s, "outcomes": [o.__dict__ for o in outcomes]},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="comparisons to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="smoke-run sizes, for checking the suite itself")
    parser.add_argument("--render-only", action="store_true", help="only regenerate docs/benchmarks.md")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--gpu", action="store_true", help="also run the comparisons that need a CUDA device")
    parser.add_argument("--started-at", type=float, help="epoch seconds when `make bench` began (setup time)")
    args = parser.parse_args(argv)
    started, setup_s = time.monotonic(), (time.time() - args.started_at if args.started_at else 0.0)
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
        names = args.names or list(suite)
        outcomes = [prepare_envs([suite[n] for n in names if args.gpu or not suite[n].get("gpu")])]
        outcomes += [run_one(name, suite[name], args.quick, args.gpu) for name in names]
        failed = [o.name for o in outcomes if not o.ok]
        if not args.names and not args.quick:
            record_suite_run(outcomes, setup_s, started, args.started_at)
    DOC.write_text(render(load_results(), order=doc_order(suite)))
    print(f"wrote {DOC.relative_to(ROOT)}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
