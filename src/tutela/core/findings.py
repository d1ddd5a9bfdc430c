"""The one result model of every pillar: Finding -> (Policy) -> Verdict.

Detectors return findings; a policy picks the action; operators act. A finding explains
itself (detector, rule, evidence, score) and never carries raw secrets: evidence is redacted
by the detector, and the fingerprint is built from a hash of the match.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Any


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, value: Severity | str | int) -> Severity:
        if isinstance(value, Severity):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[value.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {value!r}; use one of {names}") from None

    def __str__(self) -> str:
        return self.name.lower()


class Action(StrEnum):
    """What happens to a subject. Ordered by strength: the strongest action of a verdict wins."""

    ALLOW = "allow"
    ALERT = "alert"
    REDACT = "redact"
    SINKHOLE = "sinkhole"
    BLOCK = "block"

    @property
    def strength(self) -> int:
        return _ACTION_STRENGTH[self]

    @classmethod
    def strongest(cls, actions: Iterable[Action]) -> Action:
        return max(actions, key=_ACTION_STRENGTH.__getitem__, default=cls.ALLOW)


_ACTION_STRENGTH = {a: i for i, a in enumerate(Action)}


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open character (or byte) range [start, end) in the original subject."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.start < 0 or self.end < self.start:
            raise ValueError(f"invalid span [{self.start}, {self.end})")


def digest(value: str | bytes) -> str:
    """sha256 hex of a value: what findings keep instead of the value itself."""
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One thing a detector found, with everything needed to explain it."""

    detector: str
    detector_version: str
    rule: str
    category: str
    severity: Severity
    confidence: float
    message: str
    span: Span | None = None
    location: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be within 0..1, got {self.confidence}")
        object.__setattr__(self, "severity", Severity.parse(self.severity))
        object.__setattr__(self, "evidence", _frozen(self.evidence))
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", self.compute_fingerprint(""))

    def compute_fingerprint(self, match: str | bytes) -> str:
        """Stable across runs: detector, rule, location and a hash of the match; no line numbers."""
        parts = [self.detector, self.rule, self.location or "", digest(match)]
        return digest("\x1f".join(parts))[:32]

    @classmethod
    def of(cls, *, match: str | bytes = "", **fields: Any) -> Finding:
        """Build a finding whose fingerprint covers `match`, which is hashed and never stored."""
        finding = cls(**fields)
        object.__setattr__(finding, "fingerprint", finding.compute_fingerprint(match))
        return finding

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "detector": self.detector,
            "detector_version": self.detector_version,
            "rule": self.rule,
            "category": self.category,
            "severity": str(self.severity),
            "confidence": round(self.confidence, 6),
            "message": self.message,
            "fingerprint": self.fingerprint,
        }
        if self.span is not None:
            out["span"] = {"start": self.span.start, "end": self.span.end}
        if self.location is not None:
            out["location"] = self.location
        if self.evidence:
            out["evidence"] = dict(self.evidence)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        span = data.get("span")
        return cls(
            detector=data["detector"],
            detector_version=data.get("detector_version", ""),
            rule=data["rule"],
            category=data["category"],
            severity=Severity.parse(data["severity"]),
            confidence=float(data["confidence"]),
            message=data.get("message", ""),
            span=Span(span["start"], span["end"]) if span else None,
            location=data.get("location"),
            evidence=data.get("evidence") or {},
            fingerprint=data.get("fingerprint", ""),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectorFailure:
    """A detector that raised or timed out. Recorded on the verdict, never silently dropped."""

    detector: str
    error: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"detector": self.detector, "error": self.error, "message": self.message}

    @classmethod
    def from_exception(cls, detector: str, exc: BaseException) -> DetectorFailure:
        return cls(detector=detector, error=type(exc).__name__, message=str(exc)[:500])


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The decision about one subject: the action, and the findings and failures behind it."""

    action: Action
    findings: tuple[Finding, ...] = ()
    failures: tuple[DetectorFailure, ...] = ()
    reasons: tuple[str, ...] = ()
    output: str | bytes | None = None

    @property
    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.category for f in self.findings))

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": str(self.action),
            "findings": [f.to_dict() for f in self.findings],
            "failures": [f.to_dict() for f in self.failures],
            "reasons": list(self.reasons),
        }


ALLOW = Verdict(action=Action.ALLOW)
