"""GGUF (llama.cpp): header and key/value metadata, read by hand within bounds. Chat templates
are Jinja that a runtime renders; they are checked statically here and never rendered."""

from __future__ import annotations

import re
import struct
from typing import Any

from tutela.core.findings import Severity
from tutela.posture.artifact import Artifact
from tutela.posture.issues import Issue, unparsable

_SCALARS = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_MAX_KV = 1_000_000
_MAX_ARRAY = 50_000_000

# Jinja server-side template injection, statically: what reaches Python objects or builds names.
_CRITICAL = re.compile(
    r"__(class|mro|subclasses|globals|builtins|import|init|base|bases|getattribute|dict|code|func_globals|"
    r"loader|spec|reduce|reduce_ex)__|\b(os|subprocess|sys|builtins|importlib)\s*\.\s*\w+|\b(popen|system|eval|exec|"
    r"__import__|check_output)\s*\(|\b(lipsum|cycler|joiner|url_for|get_flashed_messages|self)\s*\.\s*_|"
    r"_TemplateReference__context|\brequest\.application|\bconfig\.(items|from_)",
)
_HIGH = re.compile(
    r"\|\s*attr\s*\(|\battr\s*\(|\\x5f|\\u005f|\\U0000005f|\\137|['\"]_['\"]\s*~|~\s*['\"]_['\"]|"
    r"['\"]_['\"]\s*\*\s*2|%c|\|\s*format\s*\([^)]*%c|\[\s*['\"]_{2}|\.\s*mro\s*\(|\bgetattr\b|\bsetattr\b"
)
_HIGH_TAGS = re.compile(r"\{%-?\s*(import|include|extends|from)\b")
_MEDIUM = re.compile(r"\brange\s*\(\s*\d{6,}|\bnamespace\s*\.\s*__|\|\s*map\s*\(\s*['\"]attr")


class _Reader:
    def __init__(self, buf: Any, pos: int, end: int) -> None:
        self.buf, self.pos, self.end = buf, pos, end

    def take(self, n: int) -> int:
        if n < 0 or self.pos + n > self.end:
            raise ValueError("GGUF metadata runs past the end of the file")
        at = self.pos
        self.pos += n
        return at

    def u32(self) -> int:
        return int(struct.unpack_from("<I", self.buf, self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack_from("<Q", self.buf, self.take(8))[0])

    def string(self, keep: bool, limit: int = 64 << 20) -> str | None:
        n = self.u64()
        if n > limit:
            raise ValueError(f"GGUF string of {n} bytes")
        at = self.take(n)
        return bytes(self.buf[at : at + n]).decode("utf-8", "replace") if keep else None


def scan(a: Artifact) -> list[Issue]:
    r = _Reader(a.data, a.start, a.end)
    templates: list[tuple[str, str, int]] = []
    try:
        r.take(4)
        version = r.u32()
        if version not in (1, 2, 3):
            return [unparsable("GGUF file", f"unknown version {version}", a.member)]
        if version == 1:
            r.u32()
            n_kv = r.u32()
        else:
            r.u64()
            n_kv = r.u64()
        if n_kv > _MAX_KV:
            return [unparsable("GGUF file", f"{n_kv} metadata entries", a.member)]
        for _ in range(n_kv):
            key = r.string(True, 1 << 16) or ""
            vtype = r.u32()
            at = r.pos
            if vtype == 8:
                value = r.string("chat_template" in key)
                if value is not None:
                    templates.append((key, value, at - a.start))
            elif vtype == 9:
                etype = r.u32()
                count = r.u64()
                if count > _MAX_ARRAY:
                    raise ValueError(f"GGUF array of {count} items")
                if etype == 8:
                    for _ in range(count):
                        r.string(False)
                elif etype in _SCALARS:
                    r.take(_SCALARS[etype] * count)
                else:
                    raise ValueError(f"GGUF array of unsupported type {etype}")
            elif vtype in _SCALARS:
                r.take(_SCALARS[vtype])
            else:
                raise ValueError(f"unknown GGUF value type {vtype}")
    except (ValueError, struct.error) as exc:
        return [unparsable("GGUF metadata", exc, a.member)]
    out: list[Issue] = []
    for key, template, at in templates:
        out.extend(check_template(template, a.member, at, key))
    return out


def check_template(template: str, member: str = "", offset: int | None = None, key: str = "template") -> list[Issue]:
    for pattern, severity, what in (
        (_CRITICAL, Severity.CRITICAL, "reaches Python internals (template injection)"),
        (_HIGH, Severity.HIGH, "builds attribute names or uses attr() (template injection technique)"),
        (_HIGH_TAGS, Severity.HIGH, "loads other templates from the file system"),
        (_MEDIUM, Severity.MEDIUM, "unusual construct"),
    ):
        m = pattern.search(template)
        if m is not None:
            return [
                Issue(
                    "gguf.chat-template",
                    severity,
                    "code-execution",
                    f"{key} {what}: {m.group(0)[:60]!r}",
                    member,
                    offset,
                    key,
                )
            ]
    return []
