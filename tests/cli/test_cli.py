"""The CLI as users meet it: exit codes, one-line errors, --json listings, up/status/down."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tutela.cli import main
from tutela.core.findings import Action, Verdict
from tutela.core.store import EventWriter

TUTELA = [sys.executable, "-m", "tutela"]


def run(*args: str, env_home: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TUTELA, *args], capture_output=True, text=True, timeout=60)


def test_detectors_list_json_is_a_json_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detectors", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, list)
    for item in data:
        assert {"id", "version", "pillar", "categories", "description", "config"} <= set(item)


def test_config_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check"]) == 0
    assert "config ok" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("store: {flush_interval: 0.5, bogus: 1}\n", "store.bogus: unknown key"),
        ("detectors: {dns: [{id: dns.does_not_exist}]}\n", "unknown detector 'dns.does_not_exist'"),
        ("store: [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_config_is_one_line_exit_2_no_traceback(tmp_path: Path, text: str, expect: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    proc = run("--config", str(cfg), "config", "check")
    assert proc.returncode == 2
    assert expect in proc.stderr and str(cfg) in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    debug = run("--debug", "--config", str(cfg), "config", "check")
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_corrupted_store_is_one_line_exit_2(tutela_home: Path) -> None:
    tutela_home.mkdir(parents=True)
    (tutela_home / "events.duckdb").write_bytes(b"\x00garbage" * 5000)
    proc = run("events", "list")
    assert proc.returncode == 2 and "cannot open event store" in proc.stderr and "Traceback" not in proc.stderr


def test_events_list_and_export(tutela_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with EventWriter(tutela_home) as w:
        w.append("dns", Verdict(action=Action.ALLOW), source="127.0.0.1", subject="example.com")
    assert main(["events", "list", "--json"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert events[0]["subject"] == "example.com" and events[0]["action"] == "allow"
    out = tmp_path / "e.parquet"
    assert main(["events", "export", "--format", "parquet", "--out", str(out)]) == 0
    assert out.stat().st_size > 0


def test_unknown_command_is_usage_error() -> None:
    proc = run("frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_up_status_down(tutela_home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("services: {api: {listen: '127.0.0.1:18470'}}\n")
    proc = run("--config", str(cfg), "up", "--detach", "--only", "api")
    try:
        assert proc.returncode == 0, proc.stderr
        status = run("--config", str(cfg), "status", "--json")
        rows = json.loads(status.stdout)
        assert [(r["name"], r["state"], r["listen"]) for r in rows] == [("api", "running", "127.0.0.1:18470")]
        with urllib.request.urlopen("http://127.0.0.1:18470/health", timeout=5) as resp:
            assert json.load(resp)["status"] == "ok"
        again = run("--config", str(cfg), "up", "--detach", "--only", "api")
        assert again.returncode == 2 and "already running" in again.stderr
    finally:
        down = run("--config", str(cfg), "down")
    assert down.returncode == 0 and "stopped: api" in down.stdout
    assert run("--config", str(cfg), "status", "--json").stdout.strip() == "[]"


def test_detector_catalog_doc_is_current(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/detectors.md is generated from the registry; regenerate it with the command in its header."""
    assert main(["detectors", "list", "--markdown"]) == 0
    doc = Path(__file__).resolve().parents[2] / "docs" / "detectors.md"
    assert doc.read_text() == capsys.readouterr().out, (
        "run: .venv/bin/tutela detectors list --markdown > docs/detectors.md"
    )
