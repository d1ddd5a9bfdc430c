"""Runs detectors over a subject and asks the policy for a verdict.

A detector that raises never loses the subject: its exception becomes a DetectorFailure on the
verdict, and the policy's `on_error` decides whether that fails open or closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tutela.core.detector import Detector, ScanContext
from tutela.core.errors import ConfigError
from tutela.core.findings import DetectorFailure, Finding, Verdict
from tutela.core.models import ModelCache
from tutela.core.policy import Policy
from tutela.core.registry import DetectorRegistry

if TYPE_CHECKING:
    from tutela.core._schemas import DetectorSpec as DetectorSpec

S = TypeVar("S")


def __getattr__(name: str) -> Any:
    # DetectorSpec (a pydantic model) is built on first use: running a pipeline never imports pydantic.
    if name == "DetectorSpec":
        from tutela.core import _schemas

        return _schemas.DetectorSpec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_detector(
    registry: DetectorRegistry, spec: DetectorSpec, models: ModelCache, where: str = "config"
) -> Detector[Any]:
    from pydantic import ValidationError

    klass = registry.get(spec.id)
    try:
        config = klass.Config(**dict(spec.params))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{where}: detector {spec.id} params.{key}: {first['msg']}") from None
    return klass(config, models)


class Pipeline(Generic[S]):
    def __init__(self, detectors: Sequence[Detector[S]], policy: Policy) -> None:
        self.detectors = tuple(detectors)
        self.policy = policy

    @classmethod
    def build(
        cls,
        registry: DetectorRegistry,
        specs: Sequence[DetectorSpec],
        policy: Policy,
        models: ModelCache,
    ) -> Pipeline[Any]:
        detectors = [build_detector(registry, s, models) for s in specs if s.enabled]
        return cls(detectors, policy)

    def scan(self, subject: S, ctx: ScanContext | None = None) -> tuple[list[Finding], list[DetectorFailure]]:
        ctx = ctx or ScanContext()
        failures: list[DetectorFailure] = []
        for detector in self.detectors:
            try:
                ctx.findings.extend(detector.detect(subject, ctx))
            except Exception as exc:  # a detector bug must not lose the subject
                failures.append(DetectorFailure.from_exception(detector.id, exc))
        return ctx.findings, failures

    def run(self, subject: S, ctx: ScanContext | None = None) -> Verdict:
        findings, failures = self.scan(subject, ctx)
        return self.policy.decide(findings, failures)
