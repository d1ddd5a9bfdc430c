"""Policy: maps findings (and detector failures) to an action.

Thresholds live here, in config, never inside detectors. A finding takes the action of the
first rule that matches it, else the action for its severity; a verdict takes the strongest
action of its findings. A detector failure fails open (recorded, no action) or closed (block),
as the pillar's policy says.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tutela.core.findings import Action, DetectorFailure, Finding, Severity, Verdict

PILLARS = ("dns", "runtime", "posture", "access", "copilot")

DEFAULT_SEVERITY_ACTIONS: dict[Severity, Action] = {
    Severity.INFO: Action.ALLOW,
    Severity.LOW: Action.ALERT,
    Severity.MEDIUM: Action.ALERT,
    Severity.HIGH: Action.BLOCK,
    Severity.CRITICAL: Action.BLOCK,
}


class PolicyRule(BaseModel):
    """Match findings by glob on detector, category and rule, and by minimum severity/confidence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detector: str = "*"
    category: str = "*"
    rule: str = "*"
    min_severity: Severity = Severity.INFO
    min_confidence: float = Field(0.0, ge=0.0, le=1.0)
    action: Action

    @field_validator("min_severity", mode="before")
    @classmethod
    def _severity(cls, value: object) -> Severity:
        if isinstance(value, Severity | str | int):
            return Severity.parse(value)
        raise ValueError(f"invalid severity {value!r}")


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[PolicyRule, ...] = ()
    severity_actions: dict[str, Action] = Field(
        default_factory=lambda: {str(s): a for s, a in DEFAULT_SEVERITY_ACTIONS.items()}
    )
    on_error: Literal["open", "closed"] = "open"

    @field_validator("severity_actions")
    @classmethod
    def _known_severities(cls, value: dict[str, Action]) -> dict[str, Action]:
        merged = {str(s): a for s, a in DEFAULT_SEVERITY_ACTIONS.items()}
        for key, action in value.items():
            merged[str(Severity.parse(key))] = action
        return merged


class _CompiledRule:
    __slots__ = ("action", "category", "detector", "index", "min_confidence", "min_severity", "rule")

    def __init__(self, rule: PolicyRule, index: int) -> None:
        self.detector = re.compile(fnmatch.translate(rule.detector)).match
        self.category = re.compile(fnmatch.translate(rule.category)).match
        self.rule = re.compile(fnmatch.translate(rule.rule)).match
        self.min_severity = rule.min_severity
        self.min_confidence = rule.min_confidence
        self.action = rule.action
        self.index = index

    def matches(self, f: Finding) -> bool:
        return (
            f.severity >= self.min_severity
            and f.confidence >= self.min_confidence
            and self.detector(f.detector) is not None
            and self.category(f.category) is not None
            and self.rule(f.rule) is not None
        )


class Policy:
    """Decides verdicts. Cheap to call with no findings, which is the common case inline."""

    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config or PolicyConfig()
        self._rules = [_CompiledRule(r, i) for i, r in enumerate(self.config.rules)]
        self._by_severity = {Severity.parse(k): Action(v) for k, v in self.config.severity_actions.items()}
        self._allow = Verdict(action=Action.ALLOW)

    def action_for(self, finding: Finding) -> tuple[Action, str]:
        """The action for one finding, and why (which rule or which severity default)."""
        for rule in self._rules:
            if rule.matches(finding):
                return rule.action, f"policy rule #{rule.index + 1}"
        return self._by_severity[finding.severity], f"severity {finding.severity}"

    def decide(
        self,
        findings: Sequence[Finding] = (),
        failures: Iterable[DetectorFailure] = (),
        *,
        output: str | bytes | None = None,
    ) -> Verdict:
        failures = tuple(failures)
        if not findings and not failures:
            return self._allow
        actions: list[Action] = []
        reasons: list[str] = []
        for f in findings:
            action, why = self.action_for(f)
            actions.append(action)
            reasons.append(
                f"{f.detector}/{f.rule} [{f.category}] severity={f.severity} "
                f"confidence={f.confidence:.3f} -> {action} ({why})"
            )
        for failure in failures:
            if self.config.on_error == "closed":
                actions.append(Action.BLOCK)
                reasons.append(f"{failure.detector} failed ({failure.error}) -> block (fail closed)")
            else:
                reasons.append(f"{failure.detector} failed ({failure.error}) -> ignored (fail open)")
        return Verdict(
            action=Action.strongest(actions),
            findings=tuple(findings),
            failures=failures,
            reasons=tuple(reasons),
            output=output,
        )
