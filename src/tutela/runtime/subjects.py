"""The runtime pillar's subject: one piece of text an LLM application handles.

`kind` says where the text comes from, because the same words mean different things there:
  prompt    what a user types (direct injection, jailbreaks, data a user should not paste)
  document  retrieved pages, emails, tool output (indirect injection; benign text must pass)
  output    what a model answered (leaks, exfiltration links, dangerous SQL)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["prompt", "document", "output"]
KINDS: tuple[str, ...] = ("prompt", "document", "output")


@dataclass(frozen=True, slots=True)
class TextSubject:
    text: str
    kind: Kind = "prompt"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown text kind {self.kind!r}; use one of {', '.join(KINDS)}")
