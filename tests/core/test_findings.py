from __future__ import annotations

import pytest

from tutela.core.findings import Action, DetectorFailure, Finding, Severity, Span, Verdict


def make(**over: object) -> Finding:
    fields: dict[str, object] = dict(
        detector="test.det",
        detector_version="1",
        rule="r1",
        category="cat",
        severity=Severity.HIGH,
        confidence=0.9,
        message="m",
    )
    fields.update(over)
    return Finding(**fields)  # type: ignore[arg-type]


def test_confidence_is_bounded() -> None:
    with pytest.raises(ValueError, match="confidence"):
        make(confidence=1.5)
    with pytest.raises(ValueError, match="confidence"):
        make(confidence=-0.1)


def test_severity_parses_names_and_orders() -> None:
    assert Severity.parse("critical") is Severity.CRITICAL
    assert Severity.parse(" High ") is Severity.HIGH
    assert make(severity="low").severity is Severity.LOW
    assert Severity.LOW < Severity.MEDIUM < Severity.HIGH < Severity.CRITICAL
    with pytest.raises(ValueError, match="unknown severity"):
        Severity.parse("urgent")


def test_action_strength_order() -> None:
    order = [Action.ALLOW, Action.ALERT, Action.REDACT, Action.SINKHOLE, Action.BLOCK]
    assert sorted(order, key=lambda a: a.strength) == order
    assert Action.strongest([Action.ALERT, Action.BLOCK, Action.ALLOW]) is Action.BLOCK
    assert Action.strongest([]) is Action.ALLOW


def test_fingerprint_is_stable_and_covers_the_match_without_storing_it() -> None:
    a = Finding.of(match="AKIAIOSFODNN7EXAMPLE", **_fields())
    b = Finding.of(match="AKIAIOSFODNN7EXAMPLE", **_fields())
    c = Finding.of(match="AKIAIOSFODNN7EXAMPLF", **_fields())
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert "AKIA" not in repr(a.to_dict())
    assert len(a.fingerprint) == 32


def test_fingerprint_ignores_span_but_not_location() -> None:
    a = Finding.of(match="x", span=Span(0, 1), **_fields())
    b = Finding.of(match="x", span=Span(10, 11), **_fields())
    c = Finding.of(match="x", location="other.pkl", **_fields())
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_evidence_is_immutable_and_roundtrips() -> None:
    f = make(evidence={"entropy": "3.9"}, span=Span(2, 5), location="a/b")
    with pytest.raises(TypeError):
        f.evidence["entropy"] = "0"  # type: ignore[index]
    again = Finding.from_dict(f.to_dict())
    assert again == f


def test_span_rejects_inverted_ranges() -> None:
    with pytest.raises(ValueError):
        Span(5, 2)


def test_verdict_summary() -> None:
    v = Verdict(
        action=Action.BLOCK,
        findings=(make(severity="medium", category="a"), make(severity="critical", category="b")),
        failures=(DetectorFailure(detector="x", error="ValueError", message="boom"),),
    )
    assert v.max_severity is Severity.CRITICAL
    assert v.categories == ("a", "b")
    d = v.to_dict()
    assert d["action"] == "block" and len(d["findings"]) == 2 and d["failures"][0]["error"] == "ValueError"


def _fields() -> dict[str, object]:
    return dict(
        detector="runtime.secrets",
        detector_version="1",
        rule="aws_access_key",
        category="secret",
        severity=Severity.HIGH,
        confidence=0.99,
        message="AWS access key",
    )
