"""Operators that act on detected spans: redact, mask, hash, and reversible mask-then-restore.

Detection never rewrites text; these functions do, given spans in the original text.
`Vault.mask()` swaps each span for a placeholder such as `<EMAIL_ADDRESS_1>` that does not occur
in the text, remembers the original, and `Vault.restore()` puts the originals back into the
masked text or into a model's answer that repeats the placeholders: restore(mask(t)) == t.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Operator = Literal["redact", "mask", "hash"]


@dataclass(frozen=True, slots=True)
class Replaceable:
    """A span to act on: [start, end) in the original text and what it is."""

    start: int
    end: int
    entity: str


def _non_overlapping(spans: Iterable[Replaceable], length: int) -> list[Replaceable]:
    out: list[Replaceable] = []
    for s in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if not 0 <= s.start < s.end <= length:
            raise ValueError(f"span [{s.start}, {s.end}) outside the text (length {length})")
        if out and s.start < out[-1].end:
            continue  # overlapping: the earlier, longer one already covers it
        out.append(s)
    return out


def apply(
    text: str,
    spans: Iterable[Replaceable],
    operator: Operator = "redact",
    *,
    mask_char: str = "*",
    keep_last: int = 4,
    key: bytes = b"",
) -> str:
    """Rewrite `text`: each span replaced by `<ENTITY>` (redact), by mask characters keeping the last
    `keep_last` characters (mask), or by `<ENTITY:hmac8>` (hash; keyed by `key`)."""
    parts: list[str] = []
    pos = 0
    for s in _non_overlapping(spans, len(text)):
        parts.append(text[pos : s.start])
        value = text[s.start : s.end]
        if operator == "redact":
            parts.append(f"<{s.entity}>")
        elif operator == "mask":
            keep = min(keep_last, len(value) // 3)
            parts.append(mask_char * (len(value) - keep) + (value[len(value) - keep :] if keep else ""))
        elif operator == "hash":
            digest = hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:12]
            parts.append(f"<{s.entity}:{digest}>")
        else:
            raise ValueError(f"unknown operator {operator!r}; use redact, mask or hash")
        pos = s.end
    parts.append(text[pos:])
    return "".join(parts)


@dataclass
class Vault:
    """Reversible masking for one conversation: same value, same placeholder."""

    originals: dict[str, str] = field(default_factory=dict)  # placeholder -> original value
    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    _counters: dict[str, int] = field(default_factory=dict)

    def _placeholder(self, entity: str, value: str, text: str) -> str:
        key = (entity, value)
        if key in self._by_value:
            return self._by_value[key]
        tag = re.sub(r"[^A-Z0-9_]", "_", entity.upper()) or "PII"
        while True:
            n = self._counters.get(tag, 0) + 1
            self._counters[tag] = n
            ph = f"<{tag}_{n}>"
            if ph not in text and ph not in self.originals:
                break
        self._by_value[key] = ph
        self.originals[ph] = value
        return ph

    def mask(self, text: str, spans: Sequence[Replaceable]) -> str:
        parts: list[str] = []
        pos = 0
        for s in _non_overlapping(spans, len(text)):
            parts.append(text[pos : s.start])
            parts.append(self._placeholder(s.entity, text[s.start : s.end], text))
            pos = s.end
        parts.append(text[pos:])
        return "".join(parts)

    def restore(self, text: str) -> str:
        if not self.originals:
            return text
        pattern = re.compile("|".join(re.escape(p) for p in sorted(self.originals, key=len, reverse=True)))
        return pattern.sub(lambda m: self.originals[m.group()], text)
