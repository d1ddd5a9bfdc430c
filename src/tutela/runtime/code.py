"""Source code pasted into text: a line-level score of how code-like a passage is.

Not a language parser: each line is scored by signals that prose rarely has (keywords followed
by identifiers and brackets, statement terminators, assignment, braces, indentation, comments).
A passage is code when enough of its non-blank lines score, in a contiguous block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STRONG = re.compile(
    r"^\s*(?:def |class \w+[:(]|async def |import [\w.]+|from [\w.]+ import |#include\s*[<\"]|package [\w.]+;|"
    r"using [\w.]+;|namespace \w|public |private |protected |static |func \w+\(|fn \w+\(|let mut |impl\b|"
    r"function\s*\w*\s*\(|const \w+\s*=|let \w+\s*=|var \w+\s*=|return\b.*;?$|if\s*\(.*\)\s*\{?$|"
    r"for\s*\(.*\)\s*\{?$|while\s*\(.*\)\s*\{?$|}\s*else\s*\{|elif .*:$|else:$|try:$|except\b.*:$|"
    r"SELECT .* FROM |INSERT INTO |CREATE TABLE |@\w+(?:\(.*\))?$|#!\s*/)"
)
_WEAK = re.compile(
    r"[;{}]\s*$|^\s*[}\])]|=>|->|::|\w+\(.*\)\s*;?$|^\s*(?://|#|/\*|\*)\s|\w+\s*[+\-*/]?=\s*\S|\[\]|&&|\|\|"
)
_FENCE = re.compile(r"^```\s*([\w+#-]*)\s*$", re.MULTILINE)
_LANG_HINTS = (
    ("python", re.compile(r"^\s*(?:def |import |from \w+ import|class \w+.*:$|elif |print\()", re.MULTILINE)),
    ("javascript", re.compile(r"\b(?:function|const|let|=>|console\.log|require\()", re.MULTILINE)),
    ("java", re.compile(r"\b(?:public class|System\.out|private static|import java\.)")),
    ("c", re.compile(r"#include\s*<|\bprintf\(|int main\(")),
    ("go", re.compile(r"\bfunc \w+\(|package main|fmt\.")),
    ("rust", re.compile(r"\bfn \w+\(|let mut |impl |println!")),
    ("sql", re.compile(r"(?i)\b(?:select .* from|insert into|create table|update \w+ set)\b")),
    ("shell", re.compile(r"^\s*(?:#!/bin/|sudo |apt-get |export \w+=|echo )", re.MULTILINE)),
)


@dataclass(frozen=True, slots=True)
class CodeBlock:
    start: int
    end: int
    score: float
    lines: int
    language: str


def find_code(text: str, min_lines: int = 3, min_score: float = 0.5) -> list[CodeBlock]:
    """Blocks of code-like lines (fenced or not) in `text`, with a 0..1 score."""
    blocks: list[CodeBlock] = []
    offset = 0
    run: list[tuple[int, int, float]] = []  # (start, end, line score) of the current block
    gap = 0

    def flush() -> None:
        scored = [s for _, _, s in run if s > 0]
        if len(scored) >= min_lines:
            score = min(1.0, sum(scored) / len(run) * min(1.0, len(scored) / 6 + 0.5))
            if score >= min_score:
                seg = text[run[0][0] : run[-1][1]]
                blocks.append(CodeBlock(run[0][0], run[-1][1], round(score, 4), len(scored), _language(seg)))
        run.clear()

    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        start, end = offset, offset + len(body)
        offset += len(line)
        if not body.strip():
            if run:
                gap += 1
                if gap > 2:
                    flush()
                    gap = 0
            continue
        score = 1.0 if _STRONG.search(body) else 0.6 if _WEAK.search(body) else 0.0
        if body.startswith(("    ", "\t")) and score == 0.0 and run:
            score = 0.3
        if _FENCE.match(body):
            score = 1.0
        if score == 0.0 and len(body) > 40 and body.count(" ") > len(body) / 8:
            if run:
                flush()
            gap = 0
            continue
        run.append((start, end, score))
        gap = 0
    if run:
        flush()
    return blocks


def _language(seg: str) -> str:
    fence = _FENCE.search(seg)
    if fence and fence.group(1):
        return fence.group(1).lower()
    best, hits = "unknown", 0
    for lang, pat in _LANG_HINTS:
        n = len(pat.findall(seg))
        if n > hits:
            best, hits = lang, n
    return best
