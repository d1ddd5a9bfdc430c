"""A Finding whose message and evidence are computed on first read, not when the detector builds it.

What the sensor's verdict reads of a finding (detector, rule, category, severity, confidence, fingerprint) is
set at once; the message and evidence of a flagged DGA name (its lexical explanation, the 1,020-tree family
model) cost several times the model's own score, and the policy never reads them. They are computed when
something reads `message` or `evidence` (the event writer's `to_dict()`, a sinkhole answer, a report), once,
by a pure function of the name, so every reader sees what an eagerly built Finding would hold. A finding of a
name that no event records (e.g. a LOW level the policy allows) never pays for them.

The Finding is a frozen slots dataclass: the subclass reads and writes the base class's own slots for the two
fields through their member descriptors, so to_dict(), repr() and dataclasses.replace() see the
computed values. Two threads that read a pending finding at once may both compute it; the results are equal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from tutela.core.findings import Finding

Details = Callable[[], tuple[str, Mapping[str, Any]]]

_MESSAGE: Any = Finding.__dict__["message"]  # the base class's slot descriptors
_EVIDENCE: Any = Finding.__dict__["evidence"]


class DeferredFinding(Finding):
    __slots__ = ("_details",)
    _details: Details | None

    def __init__(self, **fields: Any) -> None:
        """An ordinary, eager finding (what dataclasses.replace() and unpickling build)."""
        object.__setattr__(self, "_details", None)
        Finding.__init__(self, **fields)

    @classmethod
    def deferred(cls, details: Details, *, match: str | bytes = "", **fields: Any) -> DeferredFinding:
        """A finding like `Finding.of(match=..., **fields)` whose message and evidence are `details()`, called
        on first read. `fields` must not hold message or evidence."""
        finding = cls(message="", evidence={}, fingerprint="-", **fields)  # validated as an ordinary one first
        object.__setattr__(finding, "fingerprint", finding.compute_fingerprint(match))
        object.__setattr__(finding, "_details", details)
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
    def pending(self) -> bool:
        """Whether message and evidence are still to be computed."""
        return self._details is not None
