"""Registration, config and the default policy (alert at MEDIUM, block at HIGH)."""

from __future__ import annotations

import pytest

from tutela.core.config import load_settings
from tutela.core.errors import ConfigError
from tutela.core.findings import Action, Finding, Severity
from tutela.core.policy import Policy, PolicyConfig
from tutela.core.registry import DetectorRegistry
from tutela.dns.policy import default_policy


def _finding(rule: str, severity: Severity, confidence: float) -> Finding:
    return Finding(detector="dns.dga", detector_version="1", rule=rule, category="dga", severity=severity,
                   confidence=confidence, message="m")  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "severity", "confidence", "action"),
    [("dga.low", Severity.INFO, 0.55, Action.ALLOW), ("dga.medium", Severity.MEDIUM, 0.75, Action.ALERT),
     ("dga.high", Severity.HIGH, 0.95, Action.BLOCK), ("tunnel.session.high", Severity.HIGH, 0.9, Action.BLOCK)],
)  # fmt: skip
def test_default_policy(rule, severity, confidence, action):
    f = _finding(rule, severity, confidence)
    assert Policy(default_policy()).decide([f]).action == action
    assert Policy(PolicyConfig()).decide([f]).action == action  # core severity defaults agree


def test_policy_chooses_a_stricter_level(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("policy:\n  dns:\n    rules:\n      - {detector: dns.dga, min_confidence: 0.7, action: block}\n")
    settings = load_settings(cfg, env={"TUTELA_HOME": str(tmp_path)})
    policy = Policy(settings.policy_for("dns"))
    assert policy.decide([_finding("dga.medium", Severity.MEDIUM, 0.75)]).action == Action.BLOCK
    assert policy.decide([_finding("dga.low", Severity.INFO, 0.55)]).action == Action.ALLOW


def test_detectors_are_registered():
    reg = DetectorRegistry.load()
    for name in ("dns.dga", "dns.tunnel"):
        klass = reg.get(name)
        assert klass.pillar == "dns" and klass.side == "request"
        assert reg.describe(name)["config"]["additionalProperties"] is False


def test_detector_config_is_validated(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("detectors:\n  dns:\n    - {id: dns.dga, params: {min_level: extreme}}\n")
    with pytest.raises(ConfigError, match="min_level"):
        load_settings(cfg, env={"TUTELA_HOME": str(tmp_path)}, detectors=DetectorRegistry.load())
    cfg.write_text("detectors:\n  dns:\n    - {id: dns.tunnel, params: {window_s: 30, max_keys: 1000}}\n")
    load_settings(cfg, env={"TUTELA_HOME": str(tmp_path)}, detectors=DetectorRegistry.load())
