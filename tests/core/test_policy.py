from __future__ import annotations

import pytest
from pydantic import ValidationError

from tutela.core.findings import Action, DetectorFailure, Finding, Severity
from tutela.core.policy import Policy, PolicyConfig, PolicyRule


def finding(
    detector: str = "dns.dga",
    rule: str = "char",
    category: str = "dga",
    severity: str = "medium",
    confidence: float = 0.5,
) -> Finding:
    return Finding(
        detector=detector,
        detector_version="1",
        rule=rule,
        category=category,
        severity=Severity.parse(severity),
        confidence=confidence,
        message="",
    )


def test_no_findings_allows() -> None:
    v = Policy().decide([])
    assert v.action is Action.ALLOW and v.findings == () and v.reasons == ()


def test_severity_defaults() -> None:
    p = Policy()
    assert p.decide([finding(severity="info")]).action is Action.ALLOW
    assert p.decide([finding(severity="low")]).action is Action.ALERT
    assert p.decide([finding(severity="medium")]).action is Action.ALERT
    assert p.decide([finding(severity="high")]).action is Action.BLOCK
    assert p.decide([finding(severity="critical")]).action is Action.BLOCK


def test_first_matching_rule_wins_and_is_explained() -> None:
    cfg = PolicyConfig(
        rules=(
            PolicyRule(detector="dns.*", category="dga", min_confidence=0.95, action=Action.BLOCK),
            PolicyRule(detector="dns.*", category="dga", min_confidence=0.7, action=Action.ALERT),
            PolicyRule(category="dga", action=Action.ALLOW),
        )
    )
    p = Policy(cfg)
    assert p.decide([finding(confidence=0.99)]).action is Action.BLOCK
    v = p.decide([finding(confidence=0.8)])
    assert v.action is Action.ALERT and "policy rule #2" in v.reasons[0] and "dns.dga/char" in v.reasons[0]
    assert p.decide([finding(confidence=0.1)]).action is Action.ALLOW


def test_strongest_action_of_all_findings() -> None:
    cfg = PolicyConfig(rules=(PolicyRule(category="sinkme", action=Action.SINKHOLE),))
    v = Policy(cfg).decide([finding(severity="low"), finding(category="sinkme"), finding(severity="info")])
    assert v.action is Action.SINKHOLE
    assert len(v.reasons) == 3


def test_rule_min_severity() -> None:
    cfg = PolicyConfig(rules=(PolicyRule(min_severity=Severity.HIGH, action=Action.SINKHOLE),))
    assert Policy(cfg).decide([finding(severity="critical")]).action is Action.SINKHOLE
    assert Policy(cfg).decide([finding(severity="medium")]).action is Action.ALERT


def test_severity_actions_override() -> None:
    p = Policy(PolicyConfig(severity_actions={"high": Action.ALERT}))
    assert p.decide([finding(severity="high")]).action is Action.ALERT
    assert p.decide([finding(severity="critical")]).action is Action.BLOCK


def test_failures_fail_open_or_closed_and_are_recorded() -> None:
    failure = DetectorFailure(detector="dns.dga", error="RuntimeError", message="x")
    v = Policy(PolicyConfig(on_error="open")).decide([], [failure])
    assert v.action is Action.ALLOW and v.failures == (failure,) and "fail open" in v.reasons[0]
    v = Policy(PolicyConfig(on_error="closed")).decide([], [failure])
    assert v.action is Action.BLOCK and "fail closed" in v.reasons[0]


def test_rule_config_is_strict() -> None:
    with pytest.raises(ValidationError):
        PolicyRule.model_validate({"action": "block", "categroy": "x"})
    with pytest.raises(ValidationError):
        PolicyRule.model_validate({"action": "explode"})
    with pytest.raises(ValidationError):
        PolicyRule.model_validate({"action": "block", "min_severity": "urgent"})
