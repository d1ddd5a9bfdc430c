"""One result format for every benchmark, so docs/benchmarks.md is generated from results, never hand-edited.

A benchmark script measures, then calls `write_result(...)`, which stores `bench/results/<name>.json` with the
machine, date, versions and command beside the figures. `render(...)` turns every result file into the
markdown of docs/benchmarks.md (`python -m bench.run --render-only`).

    from bench.report import Table, write_result, spread
    write_result(
        "store_append",
        title="Event store append",
        issue=2,
        command=".venv/bin/python bench/store_append.py --events 1000000 --runs 5",
        about="What is measured, in a short paragraph.",
        target=">= 200,000 events/s appended",
        tables=[Table("Throughput", ["measure", "median", "min-max"], [["append/s", 210113, "201858-230576"]])],
        not_measured=["several writer processes at once"],
        versions={"duckdb": "1.4.2"},
        raw={...},            # every figure behind the tables
    )
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
SCHEMA = 1


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""


@dataclass
class Result:
    name: str
    title: str
    issue: int | None
    command: str
    about: str
    target: str = ""
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    not_measured: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)
    date: str = ""
    duration_s: float | None = None
    raw: Any = None
    schema: int = SCHEMA


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median and range of repeated measurements: the suite always reports the spread beside the median."""
    vals = sorted(float(v) for v in values)
    return {"median": statistics.median(vals), "min": vals[0], "max": vals[-1], "n": len(vals)}


def fmt_spread(s: dict[str, float], digits: int = 0) -> str:
    return f"{s['median']:,.{digits}f} ({s['min']:,.{digits}f}–{s['max']:,.{digits}f})"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "n/a"


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gib = 0.0
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_gib, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def package_versions(names: Iterable[str], python: str | None = None) -> dict[str, str]:
    """Installed versions of `names`, in this interpreter or in another environment's `python`."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = 'not installed'\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([python or sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=60)
    return json.loads(proc.stdout) if proc.returncode == 0 else {n: "unknown" for n in names}


def write_result(name: str, **fields: Any) -> Path:
    started = fields.pop("started", None)
    result = Result(name=name, **fields)
    result.machine = result.machine or machine_info()
    result.date = result.date or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if started is not None:
        result.duration_s = round(time.monotonic() - started, 1)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(result), indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def load_results(directory: Path = RESULTS_DIR) -> list[Result]:
    out = []
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text())
        if data.get("schema") != SCHEMA:
            continue  # a raw dump of an older script, not a suite result
        data["tables"] = [Table(**t) for t in data.get("tables", [])]
        out.append(Result(**data))
    return out


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def _machine_line(m: dict[str, Any]) -> str:
    load = ", ".join(str(x) for x in m.get("load_average", []))
    return (
        f"{m.get('cpus')} CPUs ({m.get('cpu')}), {m.get('memory_gib')} GiB, {m.get('os')}, {m.get('python')}; "
        f"load average at the end: {load}"
    )


def render_result(r: Result) -> str:
    head = f"## {r.title}" + (f" (issue {r.issue})" if r.issue else "")
    lines = [head, ""]
    if r.target:
        lines += [f"Target: {r.target}", ""]
    lines += [r.about.strip(), ""]
    lines += [f"Command: `{r.command}`  ", f"Run: {r.date}" + (f", {r.duration_s:.0f} s" if r.duration_s else "")]
    lines += [f"Machine: {_machine_line(r.machine)}  "]
    if r.versions:
        lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(r.versions.items()))]
    lines += [f"Raw result: `bench/results/{r.name}.json`", ""]
    for t in r.tables:
        lines += [f"### {t.title}", ""]
        lines += ["| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in t.rows]
        lines += [""] + ([t.note.strip(), ""] if t.note else [])
    if r.notes:
        for n in r.notes:
            lines += [n.strip(), ""]
    if r.not_measured:
        lines += ["Not measured here:", ""] + [f"- {n}" for n in r.not_measured] + [""]
    return "\n".join(lines)


PREAMBLE = """# Benchmarks

Generated by `make bench` (`python -m bench.run`) from the results in `bench/results/`; do not edit by hand.
Every section names the script and command that produced it, the machine, the date and the versions of the
tools compared. Figures are medians of repeated runs with the spread (min–max) beside them; comparisons with
other tools are measured side by side in the same run, interleaved where the script says so, because the
development machine is a shared 2-core VM and absolute figures drift with its load.
"""


def render(results: list[Result], order: Sequence[str] = ()) -> str:
    rank = {name: i for i, name in enumerate(order)}
    results = sorted(results, key=lambda r: (rank.get(r.name, len(rank)), r.name))
    return PREAMBLE + "\n" + "\n".join(render_result(r) for r in results)
