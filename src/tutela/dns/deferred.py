"""A Finding whose message and evidence are computed on first read, not when the detector builds it.

What the sensor's verdict reads of a finding (detector, rule, category, severity, confidence) is set at
once; the message and evidence of a flagged DGA name (its lexical explanation, the 1,020-tree family model)
cost several times the model's own score, and the policy never reads them. They are computed when something
reads `message` or `evidence` (the event writer's `to_dict()` on its own thread, a sinkhole answer, a
report), once, by a pure function of the name, so every reader sees what an eagerly built Finding would
hold; the fingerprint likewise when it is read. A finding of a name that no event records (e.g. a LOW level
the policy allows) never pays for them.

The Finding is a frozen slots dataclass: the subclass reads and writes the base class's own slots for these
fields through their member descriptors, so to_dict(), repr() and dataclasses.replace() see the computed
values. Two threads that read a pending finding at once may both compute it; the results are equal.

A flagged name builds one of these on the query path, so `positional()` fills the slots through those descriptors
too, with Finding.__post_init__'s checks written out (confidence range, severity parsed), instead of the
dataclass __init__ (a keyword call, object.__setattr__ per field through this class's properties, a fresh
empty evidence mapping): ~5x cheaper, the same finding (tests/dns_models/test_deferred.py compares them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from tutela.core.findings import Finding, Severity

Details = Callable[[], tuple[str, Mapping[str, Any]]]

_MESSAGE: Any = Finding.__dict__["message"]  # the base class's slot descriptors
_EVIDENCE: Any = Finding.__dict__["evidence"]
_FINGERPRINT: Any = Finding.__dict__["fingerprint"]
_FIELDS = ("detector", "detector_version", "rule", "category", "severity", "confidence", "span", "location")
_DETECTOR, _VERSION, _RULE, _CATEGORY, _SEVERITY, _CONFIDENCE, _SPAN, _LOCATION = (
    Finding.__dict__[name].__set__ for name in _FIELDS
)
# what `positional()` takes by position after the details (and the keywords a detector's eager Finding.of() takes)
HEAD_FIELDS = ("match", "detector", "detector_version", "rule", "category", "severity", "confidence")
_NO_EVIDENCE: Mapping[str, Any] = MappingProxyType({})  # immutable: one for every pending finding


class DeferredFinding(Finding):
    __slots__ = ("_details", "_match")
    _details: Details | None
    _match: str | bytes | None

    def __init__(self, **fields: Any) -> None:
        """An ordinary, eager finding (what dataclasses.replace() builds)."""
        object.__setattr__(self, "_details", None)
        object.__setattr__(self, "_match", None)
        Finding.__init__(self, **fields)

    @classmethod
    def deferred(cls, details: Details, *, match: str | bytes = "", **fields: Any) -> DeferredFinding:
        """A finding like `Finding.of(match=..., **fields)` whose message and evidence are `details()`, called
        on first read. `fields` must not hold message or evidence. The fingerprint (two sha256) is computed on
        first read too: the policy does not read it either."""
        unknown = fields.keys() - set(_FIELDS)
        if unknown:
            raise TypeError(f"DeferredFinding.deferred() got unexpected fields: {', '.join(sorted(unknown))}")
        span, location = fields.pop("span", None), fields.pop("location", None)
        return cls.positional(details, match, span=span, location=location, **fields)

    @classmethod
    def positional(
        cls,
        details: Details,
        match: str | bytes,
        detector: str,
        detector_version: str,
        rule: str,
        category: str,
        severity: Severity | str | int,
        confidence: float,
        span: Any = None,
        location: str | None = None,
    ) -> DeferredFinding:
        """`deferred()` with the fields by position: what detectors call on the query path."""
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"confidence must be within 0..1, got {confidence}")
        finding = object.__new__(cls)
        _DETECTOR(finding, detector)
        _VERSION(finding, detector_version)
        _RULE(finding, rule)
        _CATEGORY(finding, category)
        _SEVERITY(finding, severity if type(severity) is Severity else Severity.parse(severity))
        _CONFIDENCE(finding, confidence)
        _SPAN(finding, span)
        _LOCATION(finding, location)
        _MESSAGE.__set__(finding, "")
        _EVIDENCE.__set__(finding, _NO_EVIDENCE)
        _FINGERPRINT.__set__(finding, "-")
        _SET_MATCH(finding, match)
        _SET_DETAILS(finding, details)
        return finding

    def _resolve(self) -> None:
        details = self._details
        if details is None:
            return
        message, evidence = details()
        _MESSAGE.__set__(self, message)
        _EVIDENCE.__set__(self, MappingProxyType(dict(evidence)))
        object.__setattr__(self, "_details", None)  # after the values: a reader that sees None sees them

    @property
    def message(self) -> str:
        if self._details is not None:
            self._resolve()
        value: str = _MESSAGE.__get__(self, Finding)
        return value

    @message.setter
    def message(self, value: str) -> None:
        _MESSAGE.__set__(self, value)

    @property
    def evidence(self) -> Mapping[str, Any]:
        if self._details is not None:
            self._resolve()
        value: Mapping[str, Any] = _EVIDENCE.__get__(self, Finding)
        return value

    @evidence.setter
    def evidence(self, value: Mapping[str, Any]) -> None:
        _EVIDENCE.__set__(self, value)

    @property
    def fingerprint(self) -> str:
        match = self._match
        if match is not None:
            _FINGERPRINT.__set__(self, self.compute_fingerprint(match))
            object.__setattr__(self, "_match", None)
        value: str = _FINGERPRINT.__get__(self, Finding)
        return value

    @fingerprint.setter
    def fingerprint(self, value: str) -> None:
        _FINGERPRINT.__set__(self, value)

    @property
    def pending(self) -> bool:
        """Whether message and evidence are still to be computed."""
        return self._details is not None


_SET_MATCH = DeferredFinding.__dict__["_match"].__set__
_SET_DETAILS = DeferredFinding.__dict__["_details"].__set__
