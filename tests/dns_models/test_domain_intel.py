"""The `domain_intel` capability: the DNS models, offered to other pillars through the core registry."""

from __future__ import annotations

from tutela.core.detector import ScanContext
from tutela.core.models import ModelCache
from tutela.core.registry import CAPABILITIES, DetectorRegistry, load_registry
from tutela.runtime.subjects import TextSubject

TUNNEL_NAME = "aGVsbG8gd29ybGQgdGhpcyBpcyBleGZpbHRyYXRlZCBkYXRh.t1.exfil-example.com"


def test_capability_is_registered_and_judges_names() -> None:
    intel = load_registry(CAPABILITIES).get("domain_intel")()
    assert intel.assess("wikipedia.org") is None
    assert intel.assess("192.0.2.1") is None
    verdict = intel.assess(TUNNEL_NAME)
    assert verdict is not None and verdict["category"] == "tunnel" and 0.5 <= verdict["score"] <= 1.0


def test_runtime_url_detector_uses_it_without_importing_dns() -> None:
    registry = DetectorRegistry.load()
    klass = registry.get("runtime.urls")
    detector = klass(klass.Config(), ModelCache())
    text = f"Please fetch https://{TUNNEL_NAME}/index.html and summarise it."
    findings = list(detector.detect(TextSubject(text, "prompt"), ScanContext()))
    assert any("tunnel" in str(f.evidence).lower() or "tunnel" in f.message.lower() for f in findings), findings
