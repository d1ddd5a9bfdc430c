"""Dangerous SQL in generated queries: destructive statements, unbounded writes, stacked statements.

A small tokenizer strips comments and string literals first (so `'; DROP TABLE'` inside a string
is not a statement), then splits statements on top-level semicolons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SQL_START = re.compile(
    r"(?i)\b(?:SELECT|INSERT|UPDATE|DELETE|DROP|TRUNCATE|ALTER|CREATE|GRANT|REVOKE|MERGE|REPLACE|EXEC|EXECUTE)\b"
)
_TOKEN = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|;|[^;'\"/-]+|[/-]", re.S)


_STMT_AT = re.compile(
    r"(?i)(?:^|\n|[:`])\s*((?:SELECT|INSERT|UPDATE|DELETE|DROP|TRUNCATE|ALTER|CREATE|GRANT|REVOKE|MERGE|REPLACE|"
    r"EXEC|EXECUTE)\b)"
)


def _raw_offset(raw: str, blanked: str, pos: int) -> int:
    """Offset in `raw` of position `pos` of its blanked form (exact when no literal precedes it)."""
    return pos if len(raw) == len(blanked) else min(pos, len(raw))


@dataclass(frozen=True, slots=True)
class SqlIssue:
    rule: str
    start: int
    end: int
    severity: str
    message: str


def _statements(text: str) -> list[tuple[int, int, str]]:
    """Top-level statements as (start, end, text with literals and comments blanked)."""
    out: list[tuple[int, int, str]] = []
    start = 0
    buf: list[str] = []
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if tok == ";":
            out.append((start, m.start(), "".join(buf)))
            start, buf = m.end(), []
        elif tok.startswith(("--", "/*")):
            buf.append(" ")
        elif tok[:1] in "'\"":
            buf.append(" '' ")
        else:
            buf.append(tok)
    if "".join(buf).strip():
        out.append((start, len(text), "".join(buf)))
    return out


def analyze_sql(text: str) -> list[SqlIssue]:
    if not _SQL_START.search(text):
        return []
    issues: list[SqlIssue] = []
    stmts = []
    for s, e, body in _statements(text):
        m = _STMT_AT.search(body)
        if m is None:
            continue
        cut = m.start(1)
        # literals were blanked to a fixed width, so map the cut back through the unblanked prefix
        prefix = len(body) - len(body[cut:])
        stmts.append((s + _raw_offset(text[s:e], body, prefix), e, body[cut:]))
    for s, e, body in stmts:
        b = " ".join(body.split()).upper()
        if re.match(r"DROP\s+(?:TABLE|DATABASE|SCHEMA|VIEW|INDEX|USER)\b", b):
            issues.append(SqlIssue("sql.drop", s, e, "high", "DROP statement"))
        elif re.match(r"TRUNCATE\s+(?:TABLE\s+)?[\w.\"`\[\]]+\s*(?:CASCADE|RESTART IDENTITY)?\s*$", b):
            issues.append(SqlIssue("sql.truncate", s, e, "high", "TRUNCATE statement"))
        elif re.match(r"DELETE\s+(?:FROM\s+)?[\w.\"`\[\]]+\s*(?:$|WHERE|RETURNING|;)", b) and " WHERE " not in f" {b} ":
            issues.append(SqlIssue("sql.delete_without_where", s, e, "high", "DELETE without WHERE"))
        elif re.match(r"UPDATE\s+[\w.\"`\[\]]+\s+SET\s", b) and " WHERE " not in f" {b} ":
            issues.append(SqlIssue("sql.update_without_where", s, e, "high", "UPDATE without WHERE"))
        elif re.search(r"\bWHERE\s+(?:1\s*=\s*1|'[^']*'\s*=\s*'[^']*'|TRUE)\b", b) and b.startswith(
            ("DELETE", "UPDATE")
        ):
            issues.append(SqlIssue("sql.tautology_where", s, e, "high", "write with an always-true WHERE"))
        elif re.match(r"(?:GRANT|REVOKE)\b", b) or re.match(r"ALTER\s+(?:USER|ROLE)\b", b):
            issues.append(SqlIssue("sql.privilege_change", s, e, "medium", "privilege change"))
        elif re.search(r"\b(?:XP_CMDSHELL|INTO\s+OUTFILE|LOAD_FILE|COPY\s+.*\s+(?:TO|FROM)\s+PROGRAM)\b", b):
            issues.append(SqlIssue("sql.os_access", s, e, "high", "statement reaching the OS or file system"))
    if len(stmts) > 1:
        kinds = {stmt[2].strip().split(None, 1)[0].upper() for stmt in stmts}
        if kinds - {"SELECT"}:
            issues.append(SqlIssue("sql.stacked", stmts[0][0], stmts[-1][1], "medium", "stacked statements"))
    return issues
