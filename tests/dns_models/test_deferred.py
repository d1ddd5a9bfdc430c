"""dns.dga's findings compute their explanation and families on first read, and then equal eager ones."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from tutela.core.detector import ScanContext
from tutela.core.findings import Finding, Severity, Span
from tutela.core.models import ModelCache
from tutela.core.policy import Policy
from tutela.dns.deferred import HEAD_FIELDS, DeferredFinding
from tutela.dns.detectors.dga import DgaConfig, DgaDetector
from tutela.dns.policy import default_policy
from tutela.dns.subjects import DnsQuery

FLAGGED = ["oiyvxttcdjbfjotxsecg.com", "www.oiyvxttcdjbfjotxsecg.com", "qzkvbxwptrmnjd.net", "xjwqpfzkvb.info"]


def _fields(**extra: object) -> dict[str, object]:
    return {"detector": "d", "detector_version": "1", "rule": "r.high", "category": "c",
            "severity": Severity.HIGH, "confidence": 0.9, **extra}  # fmt: skip


def test_details_are_computed_once_on_first_read() -> None:
    calls = []

    def details() -> tuple[str, dict[str, str]]:
        calls.append(1)
        return "the message", {"k": "v"}

    f = DeferredFinding.deferred(details, match="m", **_fields())
    eager = Finding.of(match="m", message="the message", evidence={"k": "v"}, **_fields())
    assert f.pending and not calls
    assert f.fingerprint == eager.fingerprint and f.rule == eager.rule and f.confidence == eager.confidence
    assert not calls  # the verdict's fields do not compute the details
    assert f.to_dict() == eager.to_dict()
    assert not f.pending and len(calls) == 1
    assert f.message == "the message" and isinstance(f.evidence, MappingProxyType)
    assert len(calls) == 1
    with pytest.raises(TypeError):
        f.evidence["k"] = "w"  # type: ignore[index]


def test_replace_and_repr_see_the_details() -> None:
    f = DeferredFinding.deferred(lambda: ("msg", {"a": "1"}), match="m", **_fields())
    assert "msg" in repr(f)
    g = DeferredFinding.deferred(lambda: ("msg", {"a": "1"}), match="m", **_fields())
    r = dataclasses.replace(g, confidence=0.5)
    assert r.message == "msg" and dict(r.evidence) == {"a": "1"} and r.confidence == 0.5


def test_invalid_fields_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="confidence"):
        DeferredFinding.deferred(lambda: ("", {}), **_fields(confidence=2.0))
    with pytest.raises(ValueError, match="severity"):
        DeferredFinding.deferred(lambda: ("", {}), **_fields(severity="loud"))
    with pytest.raises(TypeError, match="message"):
        DeferredFinding.deferred(lambda: ("", {}), **_fields(message="eager"))
    with pytest.raises(TypeError):
        DeferredFinding.deferred(lambda: ("", {}), match="m", detector="d")  # fields missing


@pytest.mark.parametrize(
    "extra",
    [{}, {"severity": "medium"}, {"severity": 1}, {"confidence": 0.0}, {"confidence": 1.0},
     {"location": "q.example.com"}, {"span": Span(2, 5), "location": "x"}],
)  # fmt: skip
def test_built_without_the_dataclass_init_yet_equal_to_an_eager_finding(extra: dict[str, object]) -> None:
    fields = _fields(**extra)
    f = DeferredFinding.deferred(lambda: ("msg", {"a": "1"}), match="m", **fields)
    eager = Finding.of(match="m", message="msg", evidence={"a": "1"}, **fields)
    assert type(f.severity) is Severity and f.severity == eager.severity
    assert f.fingerprint == eager.fingerprint and f.to_dict() == eager.to_dict()
    assert [getattr(f, x.name) for x in dataclasses.fields(Finding)] == [
        getattr(eager, x.name) for x in dataclasses.fields(Finding)
    ]
    assert isinstance(f.evidence, MappingProxyType)
    head = [fields.get(k, "m") for k in HEAD_FIELDS]
    g = DeferredFinding.positional(lambda: ("msg", {"a": "1"}), *head, fields.get("span"), fields.get("location"))
    assert g.to_dict() == eager.to_dict()


def test_dga_findings_equal_the_eager_ones_and_the_policy_reads_none_of_the_details() -> None:
    models = ModelCache()
    det = DgaDetector(DgaConfig(), models)
    policy = Policy(default_policy())
    ctx = ScanContext()
    for name in FLAGGED:
        (f,) = det.detect(DnsQuery(name), ctx)
        assert isinstance(f, DeferredFinding) and f.pending
        verdict = policy.decide((f,))
        assert f.pending, "deciding the verdict computed the explanation"
        eager = det.finding(det.score(name))
        assert f.to_dict() == eager.to_dict()
        assert "likeliest families" in f.message and f.evidence["families"]
        assert verdict.action == policy.decide((eager,)).action
        (again,) = det.detect(DnsQuery(name), ctx)
        assert again is f  # cached per name: the details are computed once per name


def test_without_cache_the_same() -> None:
    det = DgaDetector(DgaConfig(cache_size=0), ModelCache())
    cached = DgaDetector(DgaConfig(), ModelCache())
    for name in FLAGGED:
        (a,) = det.detect(DnsQuery(name), ScanContext())
        (b,) = cached.detect(DnsQuery(name), ScanContext())
        assert a.to_dict() == b.to_dict()


def test_tunnel_query_findings_are_deferred_and_equal_the_eager_ones() -> None:
    from tutela.dns.detectors.tunnel import TunnelConfig, TunnelDetector

    det = TunnelDetector(TunnelConfig(window=False), ModelCache())
    name = "mzxw6ytboi2dgmbrgu4tgnrxhe3tm.yrbo2g.tunnel.example.com"
    (f,) = det.detect(DnsQuery(name), ScanContext())
    assert isinstance(f, DeferredFinding) and f.pending and f.rule.startswith("tunnel.query.")
    eager = det.query_finding(det.score(name), len(det.scorer.split(name).sub))
    assert f.to_dict() == eager.to_dict() and "tunnelled data" in f.message
