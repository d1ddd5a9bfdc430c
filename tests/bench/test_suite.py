"""The benchmark suite's plumbing: every entry runnable, results round-trip, the doc renders from results."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.run import doc_order, load_suite  # noqa: E402

from bench import report  # noqa: E402


def test_every_suite_entry_names_a_script_and_its_quick_run() -> None:
    suite = load_suite()
    assert suite, "bench/suite.toml is empty"
    for name, spec in suite.items():
        assert (ROOT / spec["script"]).is_file(), f"{name}: {spec['script']} missing"
        assert "quick_args" in spec and "args" in spec, f"{name}: needs args and quick_args"
        for env in spec.get("envs", []):
            assert (ROOT / "bench" / "envs" / f"{env}.txt").is_file(), f"{name}: no requirements for env {env}"


def test_result_round_trips_and_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path)
    report.write_result(
        "demo",
        title="Demo comparison",
        issue=9,
        command="python bench/demo.py",
        about="Measures nothing real.",
        target="none",
        tables=[report.Table("Speed", ["tool", "ops/s"], [["tutela", 1234.5], ["peer | x", 617]])],
        not_measured=["everything else"],
        versions={"peer": "1.0"},
        raw={"runs": [1, 2]},
    )
    (tmp_path / "legacy.json").write_text(json.dumps({"benchmark": "old"}))  # not a suite result: skipped
    results = report.load_results(tmp_path)
    assert [r.name for r in results] == ["demo"]
    doc = report.render(results)
    assert "## Demo comparison (issue 9)" in doc
    assert "| tutela | 1,234 |" in doc and "| peer \\| x | 617 |" in doc
    assert "- everything else" in doc and "peer 1.0" in doc


def test_spread_reports_median_and_range() -> None:
    assert report.spread([3, 1, 2]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert report.fmt_spread(report.spread([1000, 3000, 2000])) == "2,000 (1,000–3,000)"


def test_committed_results_are_suite_results() -> None:
    names = set(doc_order(load_suite()))
    for path in (ROOT / "bench" / "results").glob("*.json"):
        data = json.loads(path.read_text())
        if data.get("schema") == report.SCHEMA:
            assert data["name"] == path.stem
            assert data["command"] and data["machine"].get("cpus"), path.name
            assert path.stem in names or any(path.stem.startswith(n) for n in names), f"{path.name}: not in suite"


def test_tutela_bench_lists_the_suite() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tutela", "bench", "--list"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0, out.stderr
    listed = {line.split("\t")[0] for line in out.stdout.splitlines()}
    assert listed == set(tomllib.loads((ROOT / "bench" / "suite.toml").read_text()))


def test_unknown_comparison_is_a_usage_error() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.run", "no_such_bench"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.returncode == 2 and "unknown comparison" in out.stderr


def test_a_full_run_records_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's own wall time is a result too, counted from when make started; a failure misses the target."""
    from bench import run

    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path)
    import time

    def whole_run(outcomes: list[run.Outcome]) -> tuple[dict, list]:
        run.record_suite_run(outcomes, setup_s=120.0, started=time.monotonic(), started_at=1.0)
        saved = json.loads((tmp_path / f"{run.SUITE_RUN}.json").read_text())
        rows = {r[0]: r for r in saved["tables"][0]["rows"]}
        return rows, saved

    rows, saved = whole_run([run.Outcome("a", "ok", env_s=30.0, run_s=60.0, fresh_envs=("peer",))])
    assert rows["a"][2] == 90 and "creating peer" in rows["a"][3]
    assert rows["whole run"][1] == "met" and saved["command"] == "make bench"
    rows, _ = whole_run([run.Outcome("a", "ok"), run.Outcome("b", "FAILED")])
    assert rows["whole run"][1] == "MISSED"


def test_benchmarks_doc_is_generated_from_the_results() -> None:
    """docs/benchmarks.md carries no hand-edited figure: it equals the render of bench/results/."""
    doc = (ROOT / "docs" / "benchmarks.md").read_text()
    expected = report.render(report.load_results(), order=doc_order(load_suite()))
    assert doc == expected, "docs/benchmarks.md is stale or hand-edited: run `python -m bench.run --render-only`"
