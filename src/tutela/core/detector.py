"""The one Detector protocol every pillar implements.

A detector is synchronous and pure: it reads a subject (an in-memory value such as a DNS
query, a chat turn or an artifact's bytes) and yields findings. It never decides the action:
thresholds and actions live in `tutela.core.policy`. Constructors are cheap; models load lazily
through the `ModelCache` they are given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from tutela.core.findings import Finding
from tutela.core.models import ModelCache

if TYPE_CHECKING:
    from tutela.core._schemas import DetectorConfig as DetectorConfig

S_contra = TypeVar("S_contra", contravariant=True)


def __getattr__(name: str) -> Any:
    # DetectorConfig (a pydantic model) is built on first use: running detectors never imports pydantic.
    if name == "DetectorConfig":
        from tutela.core import _schemas

        return _schemas.DetectorConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class ScanContext:
    """What one scan shares between detectors: the source, earlier findings, parsed artefacts."""

    source: str = ""
    findings: list[Finding] = field(default_factory=list)
    artefacts: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Detector(Protocol[S_contra]):
    id: ClassVar[str]  # "dns.dga": public API, never renamed
    version: ClassVar[str]  # bumped on any change of behaviour; recorded on findings
    pillar: ClassVar[str]  # "dns", "runtime", "posture", "access"
    categories: ClassVar[tuple[str, ...]]  # the finding categories it can emit
    description: ClassVar[str]
    Config: ClassVar[type[DetectorConfig]]

    def __init__(self, config: Any, models: ModelCache) -> None: ...

    def detect(self, subject: S_contra, ctx: ScanContext) -> Iterable[Finding]: ...
