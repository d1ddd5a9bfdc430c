"""Small real detectors for the gateway tests: they exercise the plumbing, not detection quality.

After the merge, integration tests run the real runtime detectors through the same gateway.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from tutela.core.detector import DetectorConfig, ScanContext
from tutela.core.findings import Finding, Severity, Span
from tutela.core.models import ModelCache
from tutela.core.registry import DETECTORS, DetectorRegistry
from tutela.runtime.subjects import TextSubject


class _Base:
    version = "1"
    pillar = "runtime"
    description = "test detector"

    class Config(DetectorConfig):
        pass

    def __init__(self, config: DetectorConfig, models: ModelCache) -> None:
        self.config = config


class MarkerDetector(_Base):
    """Flags the word FORBIDDEN (an injection stand-in, no span-based redaction needed)."""

    id = "test.marker"
    categories = ("prompt_injection",)

    def detect(self, subject: TextSubject, ctx: ScanContext) -> Iterator[Finding]:
        for m in re.finditer(r"FORBIDDEN", subject.text):
            yield Finding.of(
                match=m.group(0),
                detector=self.id,
                detector_version=self.version,
                rule="marker",
                category="prompt_injection",
                severity=Severity.HIGH,
                confidence=0.9,
                message=f"marker word in {subject.kind}",
                span=Span(m.start(), m.end()),
            )


class SecretDetector(_Base):
    """Flags SECRET-XXXXXXXX tokens (a DLP stand-in, with spans for redaction)."""

    id = "test.secret"
    categories = ("secret",)

    class Config(DetectorConfig):
        severity: str = "high"

    def detect(self, subject: TextSubject, ctx: ScanContext) -> Iterator[Finding]:
        for m in re.finditer(r"SECRET-[A-Z0-9]{8}", subject.text):
            yield Finding.of(
                match=m.group(0),
                detector=self.id,
                detector_version=self.version,
                rule="token",
                category="secret",
                severity=Severity.parse(self.config.severity),  # type: ignore[attr-defined]
                confidence=0.95,
                message="secret token",
                span=Span(m.start(), m.end()),
                evidence={"masked": m.group(0)[:7] + "…"},
            )


class BoomDetector(_Base):
    """Raises on the word BOOM: a detector bug."""

    id = "test.boom"
    categories = ("none",)

    def detect(self, subject: TextSubject, ctx: ScanContext) -> Iterator[Finding]:
        if "BOOM" in subject.text:
            raise RuntimeError("detector exploded")
        return iter(())


class SlowDetector(_Base):
    """Sleeps on the word SLOW: a detector that hangs."""

    id = "test.slow"
    categories = ("none",)

    def detect(self, subject: TextSubject, ctx: ScanContext) -> Iterator[Finding]:
        if "SLOW" in subject.text:
            time.sleep(1.0)
        return iter(())


ALL = (MarkerDetector, SecretDetector, BoomDetector, SlowDetector)


def registry() -> DetectorRegistry:
    return DetectorRegistry(DETECTORS, {d.id: d for d in ALL})
