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
from typing import TYPE_CHECKING, Any, Literal

from tutela.core.findings import Action, DetectorFailure, Finding, Severity, Verdict

if TYPE_CHECKING:
    from tutela.core._schemas import PolicyConfig as PolicyConfig
    from tutela.core._schemas import PolicyRule as PolicyRule

PILLARS = ("dns", "runtime", "posture", "access", "copilot")

DEFAULT_SEVERITY_ACTIONS: dict[Severity, Action] = {
    Severity.INFO: Action.ALLOW,
    Severity.LOW: Action.ALERT,
    Severity.MEDIUM: Action.ALERT,
    Severity.HIGH: Action.BLOCK,
    Severity.CRITICAL: Action.BLOCK,
}


def __getattr__(name: str) -> Any:
    # PolicyRule and PolicyConfig (pydantic models) are built on first use: `Policy()` and
    # `Policy(on_error="closed")` decide verdicts without importing pydantic.
    if name in ("PolicyRule", "PolicyConfig"):
        from tutela.core import _schemas

        return getattr(_schemas, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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

    def __init__(
        self, config: PolicyConfig | None = None, *, on_error: Literal["open", "closed"] | None = None
    ) -> None:
        """`Policy(config)`, or the defaults (no rules, severity actions) failing open or as `on_error` says."""
        if config is not None and on_error is not None:
            raise TypeError("pass either a PolicyConfig or on_error, not both")
        self._config = config
        self.on_error: Literal["open", "closed"] = config.on_error if config is not None else (on_error or "open")
        self._rules = [_CompiledRule(r, i) for i, r in enumerate(config.rules)] if config is not None else []
        self._by_severity = (
            {Severity.parse(k): Action(v) for k, v in config.severity_actions.items()}
            if config is not None
            else dict(DEFAULT_SEVERITY_ACTIONS)
        )
        self._allow = Verdict(action=Action.ALLOW)

    @property
    def config(self) -> PolicyConfig:
        if self._config is None:
            from tutela.core._schemas import PolicyConfig

            self._config = PolicyConfig(on_error=self.on_error)
        return self._config

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
            if self.on_error == "closed":
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
