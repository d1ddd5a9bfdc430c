"""The runtime pipeline as one object: build the detectors, scan a text, score it for machines.

`RuntimeScanner` is what the CLI uses today and what the gateway will put inline: it builds the
runtime detectors from the registry (or from explicit specs), runs them over a `TextSubject`
and asks the runtime policy for a verdict. The default policy (`default_policy()`) blocks
injection, redacts PII and secrets, and alerts on the rest; config can replace it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tutela.core.detector import ScanContext
from tutela.core.findings import Action, Finding, Verdict
from tutela.core.models import ModelCache
from tutela.core.pipeline import DetectorSpec, Pipeline
from tutela.core.policy import Policy, PolicyConfig, PolicyRule
from tutela.core.registry import DetectorRegistry
from tutela.runtime.subjects import Kind, TextSubject

DEFAULT_DETECTORS: tuple[str, ...] = (
    "runtime.obfuscation",
    "runtime.injection",
    "runtime.pii",
    "runtime.secrets",
    "runtime.source_code",
    "runtime.urls",
    "runtime.sql",
)


def default_policy() -> Policy:
    return Policy(
        PolicyConfig(
            rules=(
                PolicyRule(category="prompt_injection", action=Action.BLOCK),
                PolicyRule(category="exfiltration", action=Action.BLOCK),
                PolicyRule(rule="invisible.tag_characters", action=Action.BLOCK),
                PolicyRule(category="secret", action=Action.REDACT),
                PolicyRule(category="pii", action=Action.REDACT),
                PolicyRule(category="dangerous_sql", action=Action.BLOCK),
                PolicyRule(category="malicious_url", min_severity="high", action=Action.BLOCK),
                PolicyRule(category="*", action=Action.ALERT, min_severity="low"),
            )
        )
    )


def specs_for(names: Sequence[str], params: dict[str, dict[str, Any]] | None = None) -> list[DetectorSpec]:
    params = params or {}
    return [DetectorSpec(id=n, params=params.get(n, {})) for n in names]


class RuntimeScanner:
    def __init__(
        self,
        registry: DetectorRegistry | None = None,
        specs: Sequence[DetectorSpec] | None = None,
        policy: Policy | None = None,
        models: ModelCache | None = None,
    ) -> None:
        self.registry = registry or DetectorRegistry.load()
        self.models = models or ModelCache()
        self.pipeline: Pipeline[TextSubject] = Pipeline.build(
            self.registry,
            list(specs) if specs is not None else specs_for(DEFAULT_DETECTORS),
            policy or default_policy(),
            self.models,
        )

    def scan(self, text: str, kind: Kind = "prompt") -> Verdict:
        return self.pipeline.run(TextSubject(text, kind), ScanContext(source=f"runtime:{kind}"))

    def score(self, verdict: Verdict) -> float:
        """One number for machines: the highest confidence among the findings that set the verdict's action
        (0.0 when the verdict allows)."""
        if verdict.action == Action.ALLOW:
            return 0.0
        policy = self.pipeline.policy
        pool = [f.confidence for f in verdict.findings if policy.action_for(f)[0] == verdict.action]
        return round(max(pool, default=0.0), 6)

    @staticmethod
    def finding_record(f: Finding) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "detector": f.detector,
            "category": f.category,
            "rule": f.rule,
            "severity": str(f.severity),
            "confidence": round(f.confidence, 6),
            "message": f.message,
        }
        entity = f.evidence.get("entity")
        if entity:
            rec["entity"] = entity
        if f.span is not None:
            rec["span"] = {"start": f.span.start, "end": f.span.end}
        return rec
