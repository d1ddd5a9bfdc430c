"""Unit tests of the gateway's parts: profiles, redaction, SSE parsing, budgets, audit chain."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.runtime import detectors
from tutela.core.errors import ConfigError
from tutela.core.findings import Finding, Severity, Span
from tutela.core.models import ModelCache
from tutela.core.pipeline import DetectorSpec
from tutela.core.registry import DETECTORS, DetectorRegistry
from tutela.runtime.gateway.audit import AuditLog, verify
from tutela.runtime.gateway.budgets import Budgets
from tutela.runtime.gateway.engine import Item, redact_items
from tutela.runtime.gateway.profiles import BudgetConfig, GatewayConfig, KeyConfig, compile_config
from tutela.runtime.gateway.streaming import SseParser


def test_channels_fall_back_to_tutela_runtime_pipeline() -> None:
    reg = detectors.registry()
    cfg = GatewayConfig(profiles={"default": {"output": {"detectors": [{"id": "test.marker"}]}}})
    compiled = compile_config(cfg, reg, ModelCache(), [DetectorSpec(id="test.secret")])
    plan = compiled.default.plan("prompt")
    assert plan is not None and [d.id for d in plan.pipeline.detectors] == ["test.secret"]
    assert [d.id for d in compiled.default.plan("output").pipeline.detectors] == ["test.marker"]  # type: ignore[union-attr]
    everything = compile_config(cfg, reg, ModelCache())
    assert len(everything.default.plan("prompt").pipeline.detectors) == len(detectors.ALL)  # type: ignore[union-attr]


def test_config_errors_name_the_place() -> None:
    reg = detectors.registry()
    bad = GatewayConfig(profiles={"default": {"document": {"detectors": [{"id": "nope"}]}}})
    with pytest.raises(ConfigError, match=r"profiles\.default\.document\.detectors\[0\]: unknown detector 'nope'"):
        compile_config(bad, reg, ModelCache())
    params = GatewayConfig(profiles={"default": {"prompt": {"detectors": [{"id": "test.secret", "params": {"x": 1}}]}}})
    with pytest.raises(ConfigError, match=r"profiles\.default\.prompt\.detectors"):
        compile_config(params, reg, ModelCache())

    class DnsThing(detectors.MarkerDetector):
        id = "dns.thing"
        pillar = "dns"

    mixed = DetectorRegistry(DETECTORS, {"dns.thing": DnsThing})
    with pytest.raises(ConfigError, match="not a runtime detector"):
        compile_config(
            GatewayConfig(profiles={"default": {"prompt": {"detectors": [{"id": "dns.thing"}]}}}), mixed, ModelCache()
        )
    with pytest.raises(ValidationError, match="unknown profile"):
        GatewayConfig(apps={"x": "missing"})
    with pytest.raises(ValidationError, match="64 hex"):
        KeyConfig(id="k", sha256="abc")
    with pytest.raises(ValidationError):
        GatewayConfig(profiles={"default": {"prompt": {"acton": "block"}}})  # typo: extra keys are errors


def test_redact_items_maps_spans_to_items_and_merges_overlaps() -> None:
    items = [Item("a", "key SECRET-AAAA1111 x"), Item("b", "no secret"), Item("c", "SECRET-BBBB2222")]
    offsets = [0, len(items[0].text) + 2, len(items[0].text) + 2 + len(items[1].text) + 2]

    def f(start: int, end: int, cat: str = "secret") -> Finding:
        return Finding(detector="d", detector_version="1", rule="r", category=cat, severity=Severity.HIGH,
                       confidence=1.0, message="m", span=Span(start, end))  # fmt: skip

    out = redact_items(items, [f(4, 19), f(6, 10, "pii"), f(offsets[2], offsets[2] + 15)], offsets)
    assert out == ["key <SECRET> x", "no secret", "<SECRET>"]


def test_sse_parser_handles_crlf_split_chunks_and_limits() -> None:
    p = SseParser(max_event=100)
    assert p.feed(b'event: a\r\ndata: {"x"') == []
    assert p.feed(b": 1}\r\n\r\ndata: [DONE]\n\n: comment\n\n") == [("a", '{"x": 1}'), (None, "[DONE]")]
    assert p.feed(b"data: line1\ndata: line2\n\n") == [(None, "line1\nline2")]
    with pytest.raises(Exception, match="larger than"):
        p.feed(b"data: " + b"x" * 200)


def test_budgets_window_and_per_user() -> None:
    now = [0.0]
    b = Budgets(clock=lambda: now[0])
    cfg = BudgetConfig(window_s=10, requests=2, tokens=100)
    assert b.admit("p", "u", cfg) is None and b.admit("p", "u", cfg) is None
    refusal = b.admit("p", "u", cfg)
    assert refusal is not None and "rate limit" in refusal.reason and refusal.retry_after >= 1
    assert b.admit("p", "other", cfg) is None
    now[0] = 11.0
    assert b.admit("p", "u", cfg) is None
    b.spend("p", "u", cfg, model="m", prompt_tokens=90, completion_tokens=20, prices={})
    assert "token budget" in b.admit("p", "u", cfg).reason  # type: ignore[union-attr]


def test_shared_windows_count_across_handles_and_stay_bounded(tmp_path: Path) -> None:
    """Two processes' handles on one table see one count; a full table reuses the oldest window."""
    from tutela.runtime.gateway.profiles import BudgetConfig
    from tutela.runtime.gateway.shared_windows import SharedWindows

    now = [100.0]
    path = tmp_path / "budgets.bin"
    one, two = SharedWindows(path, slots=64, owner=True), SharedWindows(path, slots=64)
    a, b = Budgets(clock=lambda: now[0], windows=one), Budgets(clock=lambda: now[0], windows=two)
    cfg = BudgetConfig(requests=3, tokens=100, window_s=10)
    assert [x.admit("p", "u", cfg) is None for x in (a, b, a, b)] == [True, True, True, False]
    b.spend("p", "v", cfg, model="m", prompt_tokens=90, completion_tokens=20, prices={})
    assert "token budget" in a.admit("p", "v", cfg).reason  # type: ignore[union-attr]
    now[0] = 111.0  # the window is over: counting starts again
    assert a.admit("p", "u", cfg) is None
    for i in range(500):  # many callers in 64 slots: bounded, and the newest windows are kept
        now[0] += 0.001
        a.admit("p", f"caller{i}", cfg)
    assert path.stat().st_size == 64 * 56
    assert a.admit("p", "caller499", cfg) is None and b.admit("p", "caller499", cfg) is None
    assert a.admit("p", "caller499", cfg) is not None  # its 3 requests are used up: the window survived
    two.close()
    one.close()
    assert not path.exists()


def test_shared_windows_start_clean(tmp_path: Path) -> None:
    """The first worker starts an empty table (a stale file of the same name may hold another boot's clock)
    and removes tables whose gateway is gone."""
    from tutela.runtime.gateway.profiles import BudgetConfig
    from tutela.runtime.gateway.shared_windows import SharedWindows, table_path

    cfg = BudgetConfig(requests=1, window_s=60)
    path = table_path(tmp_path, os.getpid())
    old = SharedWindows(path, slots=64)
    Budgets(clock=lambda: 5000.0, windows=old).admit("p", "u", cfg)  # its one request used
    old.close()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = table_path(tmp_path, gone.pid)
    stale.write_bytes(b"x")
    fresh = SharedWindows(path, slots=64, owner=True)
    assert Budgets(clock=lambda: 5001.0, windows=fresh).admit("p", "u", cfg) is None  # not counted again
    assert not stale.exists() and path.exists()
    fresh.close()


def test_audit_reorder_and_restart_continue_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, flush_interval=0.01)
    log.start()
    for i in range(3):
        log.append({"tr_id": str(i), "action": "allow"})
    log.close()
    again = AuditLog(path, flush_interval=0.01)  # a restart continues the chain
    again.start()
    again.append({"tr_id": "3", "action": "block"})
    again.close()
    assert verify(path).ok and verify(path).records == 4
    lines = path.read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    path.write_text("\n".join(lines) + "\n")
    result = verify(path)
    assert not result.ok and result.line == 2
    assert json.loads(lines[0])["seq"] == 1


def test_audit_close_writes_every_queued_record(tmp_path: Path) -> None:
    """Records are written in batches off the request path; shutting down flushes what is still queued."""
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, flush_interval=60)  # the timer never fires: only close() can write these
    log.start()
    for i in range(2000):
        log.append({"tr_id": str(i), "action": "allow"})
    log.close()
    assert log.written == 2000 and log.errors == 0
    assert verify(path).ok and verify(path).records == 2000
    live = AuditLog(path, flush_interval=0.05)  # while running, a batch lands within the interval
    live.start()
    live.append({"tr_id": "x", "action": "block"})
    deadline = time.monotonic() + 5
    while live.written < 1:
        assert time.monotonic() < deadline, "the queued record was never written"
        time.sleep(0.01)
    live.close()
    assert verify(path).ok and verify(path).records == 2001


def test_scan_flags_from_runtime_categories() -> None:
    from tutela.runtime.gateway.schemas import PROMPT_FLAGS, RESPONSE_FLAGS, detected_flags

    flags = detected_flags(["prompt_injection", "source_code"], PROMPT_FLAGS)
    assert flags["injection"] and flags["dlp"] and not flags["malicious_code"]
    out = detected_flags(["exfiltration", "dangerous_sql", "topic"], RESPONSE_FLAGS)
    assert out["url_cats"] and out["db_security"] and out["topic_violation"] and not out["dlp"]


def test_channel_policy_blocks_injection_only_when_the_detector_is_sure() -> None:
    from tutela.core.findings import Action, Finding, Severity
    from tutela.runtime.gateway.profiles import ChannelConfig, _policy

    def finding(detector: str, severity: Severity) -> Finding:
        return Finding(
            detector=detector, detector_version="2", rule="r", category="c", severity=severity,
            confidence=0.9, message="m",
        )  # fmt: skip

    policy = _policy(ChannelConfig(), "open")
    assert policy.decide([finding("runtime.injection", Severity.HIGH)]).action is Action.BLOCK
    assert policy.decide([finding("runtime.injection", Severity.MEDIUM)]).action is Action.ALERT
    assert policy.decide([finding("runtime.pii", Severity.MEDIUM)]).action is Action.BLOCK  # unchanged


def test_is_loopback() -> None:
    from tutela.runtime.gateway.app import is_loopback

    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2", "127.255.0.1"):
        assert is_loopback(host), host
    for host in (None, "", "10.0.0.1", "192.168.1.5", "2001:db8::1", "example.com", "127.0.0.1.evil"):
        assert not is_loopback(host), host
