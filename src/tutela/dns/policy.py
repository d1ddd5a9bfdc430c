"""The DNS pillar's default policy for the model detectors: alert at MEDIUM, block at HIGH.

Confidence levels are chosen in policy, never in detectors. The detectors name their level in the
rule id (`dga.high`, `tunnel.query.medium`, `tunnel.session.high`, ...) and put a confidence on one
common scale (LOW 0.5, MEDIUM 0.7, HIGH 0.9). Equivalent YAML (config.yaml):

    policy:
      dns:
        rules:
          - {detector: "dns.*", rule: "*.high", action: block}
          - {detector: "dns.*", rule: "*.medium", action: alert}
          - {detector: "dns.*", rule: "*.low", action: allow}

Stricter: `{detector: dns.dga, min_confidence: 0.7, action: block}` blocks DGAs from MEDIUM up.
The core's severity defaults give the same result (low -> severity info -> allow, medium -> alert,
high -> block), so a dns policy without rules behaves like this one.
"""

from __future__ import annotations

from tutela.core.findings import Action
from tutela.core.policy import PolicyConfig, PolicyRule

DEFAULT_RULES: tuple[PolicyRule, ...] = (
    PolicyRule(detector="dns.*", rule="*.high", action=Action.BLOCK),
    PolicyRule(detector="dns.*", rule="*.medium", action=Action.ALERT),
    PolicyRule(detector="dns.*", rule="*.low", action=Action.ALLOW),
)


def default_policy() -> PolicyConfig:
    return PolicyConfig(rules=DEFAULT_RULES, on_error="open")
