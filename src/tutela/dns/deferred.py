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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from tutela.core.findings import Finding

Details = Callable[[], tuple[str, Mapping[str, Any]]]

_MESSAGE: Any = Finding.__dict__["message"]  # the base class's slot descriptors
_EVIDENCE: Any = Finding.__dict__["evidence"]
_FINGERPRINT: Any = Finding.__dict__["fingerprint"]


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
        finding = object.__new__(cls)
        object.__setattr__(finding, "_details", None)
        object.__setattr__(finding, "_match", None)
        Finding.__init__(finding, message="", evidence={}, fingerprint="-", **fields)  # validated as an eager one
        object.__setattr__(finding, "_match", match)
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
