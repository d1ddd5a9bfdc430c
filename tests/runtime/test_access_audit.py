"""Keys per tenant, loopback-only without keys, the audit chain, events, hot reload, CLI."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.runtime.conftest import PROFILES, run_gateway
from tests.runtime.fake_upstream import FakeUpstream
from tutela.cli import main
from tutela.core.config import TutelaSettings
from tutela.core.errors import ServiceError
from tutela.core.registry import SERVICES, load_registry
from tutela.core.store import EventStore
from tutela.runtime.gateway.audit import verify
from tutela.runtime.gateway.keys import key_hash
from tutela.runtime.gateway.profiles import GatewaySettings
from tutela.runtime.gateway.server import build

from . import detectors

KEY_A, KEY_B = "tgw-key-of-tenant-a-0123456789", "tgw-key-of-tenant-b-9876543210"
CHAT = "/v1/chat/completions"


def keyed() -> dict:
    cfg = copy.deepcopy(PROFILES)
    cfg["keys"] = [
        {"id": "a1", "tenant": "acme", "sha256": key_hash(KEY_A)},
        {"id": "b1", "tenant": "globex", "sha256": key_hash(KEY_B), "profile": "redact"},
    ]
    return cfg


def chat(url: str, text: str, key: str | None = None, **kw: object) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    body = {"model": "m", "messages": [{"role": "user", "content": text}], **kw}
    return httpx.post(url + CHAT, json=body, headers=headers, timeout=10)


def test_no_keys_refuses_non_loopback_listen(tmp_path: Path) -> None:
    gw = GatewaySettings(upstream="http://127.0.0.1:1/v1")
    with pytest.raises(ServiceError, match="no gateway keys"):
        build(TutelaSettings(home=tmp_path), gw, "0.0.0.0:8480", detectors.registry())
    build(TutelaSettings(home=tmp_path), gw, "127.0.0.1:8480", detectors.registry())  # loopback is fine
    keyed_gw = GatewaySettings(upstream="http://127.0.0.1:1/v1", keys=[{"id": "k", "sha256": key_hash(KEY_A)}])
    build(TutelaSettings(home=tmp_path), keyed_gw, "0.0.0.0:8480", detectors.registry())


def test_cli_refuses_non_loopback_without_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "serve", "--listen", "0.0.0.0:18480", "--upstream", "http://127.0.0.1:1/v1"]) == 2
    assert "no gateway keys" in capsys.readouterr().err


def test_keys_tenants_and_upstream_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_KEY_FOR_TEST", "sk-upstream-secret-value")
    with (
        FakeUpstream() as up,
        run_gateway(tmp_path / "h", up.base, keyed(), upstream_api_key_env="UPSTREAM_KEY_FOR_TEST") as gw,
    ):
        assert chat(gw.url, "hi").status_code == 401
        assert chat(gw.url, "hi", "tgw-wrong").status_code == 401
        assert chat(gw.url, "say: hello a", KEY_A).json()["choices"][0]["message"]["content"] == "hello a"
        _, headers, _ = up.last
        assert headers["authorization"] == "Bearer sk-upstream-secret-value"  # the gateway key never goes upstream
        assert KEY_A not in json.dumps(headers)
        # key b is pinned to the redact profile: the app header cannot move it
        r = chat(gw.url, "say: SECRET-ABCD1234", KEY_B)
        assert r.json()["choices"][0]["message"]["content"] == "<SECRET>"
        assert chat(gw.url, "FORBIDDEN", KEY_A).status_code == 400
        # the scan API: key b may not pick another profile
        scan = {"ai_profile": {"profile_name": "default"}, "contents": [{"prompt": "x"}]}
        r = httpx.post(gw.url + "/v1/scan/sync/request", json=scan, headers={"x-api-key": KEY_B})
        assert r.status_code == 403
        # async scan results and events: each tenant sees only its own
        r = httpx.post(
            gw.url + "/v1/scan/async/request",
            json=[{"req_id": 1, "scan_req": {"contents": [{"prompt": "x"}]}}],
            headers={"x-api-key": KEY_A},
        )
        sid = r.json()["scan_id"]
        other = httpx.get(gw.url + "/v1/scan/results", params={"scan_ids": sid}, headers={"x-api-key": KEY_B}).json()
        assert other[0]["status"] == "not_found"
        mine = httpx.get(gw.url + "/v1/scan/results", params={"scan_ids": sid}, headers={"x-api-key": KEY_A}).json()
        assert mine[0]["status"] == "complete"
        ev_a = httpx.get(gw.url + "/v1/tutela/events", headers={"x-api-key": KEY_A}, timeout=30).json()
        ev_b = httpx.get(gw.url + "/v1/tutela/events", headers={"x-api-key": KEY_B}, timeout=30).json()
        assert ev_a["tenant"] == "acme" and ev_a["events"] and ev_b["events"]
        assert {e["attrs"]["key_id"] for e in ev_a["events"]} == {"a1"}
        assert {e["attrs"]["key_id"] for e in ev_b["events"]} == {"b1"}
        assert httpx.get(gw.url + "/v1/tutela/events").status_code == 401
    files = "".join(
        p.read_text(errors="replace")
        for p in (tmp_path / "h").rglob("*")
        if p.is_file() and p.suffix in (".jsonl", ".head")
    )
    assert "sk-upstream-secret-value" not in files and KEY_A not in files


def test_audit_chain_events_and_no_raw_prompts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "h"
    with FakeUpstream() as up, run_gateway(home, up.base, PROFILES) as gw:
        chat(gw.url, "say: my private words alpha")
        chat(gw.url, "FORBIDDEN private words beta")
        chat(gw.url, "say: streamed private gamma", stream=True)
        chat(gw.url, "raw words delta", **{"user": "u"})
        httpx.post(
            gw.url + CHAT,
            json={"model": "m", "messages": [{"role": "user", "content": "kept raw epsilon"}]},
            headers={"x-tutela-app": "rawlog"},
        )
        time.sleep(0.5)
    log = home / "gateway" / "audit.jsonl"
    records = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(records) == 5
    assert [r["action"] for r in records[:2]] == ["allow", "block"]
    assert records[1]["findings"][0]["detector"] == "test.marker"
    assert all(len(r["request_sha256"]) == 64 for r in records)
    text = log.read_text()
    for word in ("alpha", "beta", "gamma", "delta"):
        assert word not in text  # only hashes...
    assert "kept raw epsilon" in text  # ...unless the profile asks for raw
    assert verify(log).ok
    _, rows = EventStore(home / "events.duckdb", home=home).query(
        "SELECT action, subject, attrs, findings FROM events WHERE pillar = 'runtime' ORDER BY ts"
    )
    assert [r[0] for r in rows] == ["allow", "block", "allow", "allow", "allow"]
    assert json.loads(rows[1][2])["profile"] == "default" and "latency_ms" in json.loads(rows[1][2])
    assert not any(w in json.dumps(rows, default=str) for w in ("alpha", "beta", "gamma", "epsilon"))
    # the CLI verifies; tampering with any line is caught
    assert main(["gateway", "audit", "verify", "--file", str(log)]) == 0
    lines = log.read_text().splitlines()
    lines[1] = lines[1].replace('"block"', '"allow"')
    log.write_text("\n".join(lines) + "\n")
    assert main(["gateway", "audit", "verify", "--file", str(log)]) == 2
    assert "line 2" in capsys.readouterr().out
    log.write_text("\n".join(json.dumps(r, sort_keys=True) for r in records[:4]) + "\n")  # cut the last one off
    result = verify(log)
    assert not result.ok and "truncated" in (result.problem or "")


def write_atomically(path: Path, text: str) -> None:
    """As editors and config managers do: a reader never sees a half-written file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_hot_reload_and_broken_config(tmp_path: Path) -> None:
    with FakeUpstream() as up, run_gateway(tmp_path / "h", up.base, PROFILES) as gw:
        assert chat(gw.url, "FORBIDDEN").status_code == 400
        cfg = copy.deepcopy(PROFILES)
        cfg["profiles"]["default"]["prompt"] = {"detectors": [{"id": "test.marker"}], "action": "monitor"}
        write_atomically(gw.config_file, yaml.safe_dump(cfg))
        deadline = time.monotonic() + 5
        while chat(gw.url, "FORBIDDEN").status_code != 200:
            assert time.monotonic() < deadline, "config was not reloaded"
            time.sleep(0.1)
        version = httpx.get(gw.url + "/health").json()["config"]["version"]
        cfg["profiles"]["default"]["prompt"] = {"detectors": [{"id": "no.such.detector"}]}
        write_atomically(gw.config_file, yaml.safe_dump(cfg))
        deadline = time.monotonic() + 5
        while not httpx.get(gw.url + "/health").json()["config"]["last_error"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        health = httpx.get(gw.url + "/health").json()
        assert "no.such.detector" in health["config"]["last_error"] and health["status"] == "degraded"
        assert health["config"]["version"] == version
        assert chat(gw.url, "FORBIDDEN").status_code == 200  # the last good config still applies


def test_keys_new_cli_and_service_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateway", "keys", "new", "--id", "ci", "--tenant", "acme", "--profile", "default"]) == 0
    out = capsys.readouterr().out
    key = out.split("client): ")[1].split()[0]
    entry = yaml.safe_load(out.split("`keys:`:\n")[1])[0]
    assert entry == {"id": "ci", "tenant": "acme", "sha256": key_hash(key), "profile": "default"}
    assert key not in out.split("`keys:`:")[1]
    spec = load_registry(SERVICES).get("gateway")
    assert spec.default_listen == "127.0.0.1:8480" and spec.pillar == "runtime"
    assert spec.argv(TutelaSettings(home=Path("/tmp")), "127.0.0.1:8480")[:2] == ["gateway", "serve"]
