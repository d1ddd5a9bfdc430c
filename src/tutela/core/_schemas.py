"""The pydantic models of core's runtime modules, built on first use.

`tutela.core.detector`, `.policy` and `.pipeline` expose these under their public names
(`DetectorConfig`, `PolicyRule`, `PolicyConfig`, `DetectorSpec`) through a module `__getattr__`,
so code that only runs detectors and decides verdicts (a CLI scan, a hook) never imports pydantic,
which costs ~0.1-0.2 s of start-up. Import them from the public modules, never from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tutela.core.findings import Action, Severity
from tutela.core.policy import DEFAULT_SEVERITY_ACTIONS


class DetectorConfig(BaseModel):
    """Base of every detector's `Config`: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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


class DetectorSpec(BaseModel):
    """One entry of a pipeline in config: `{id: dns.dga, params: {...}}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    enabled: bool = True
    params: Mapping[str, Any] = Field(default_factory=dict)
