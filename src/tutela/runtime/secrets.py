"""Secrets in text: provider key formats, private keys, JWTs, connection strings, key=value pairs.

Each pattern has a validator where one exists (a JWT's header must decode to JSON with "alg",
a connection string must carry a real password, a generic `password=...` value must have
enough entropy and must not be a placeholder). Results carry the secret's span; callers must
never store the value itself (findings keep a hash).
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

PLACEHOLDER = re.compile(
    r"^(?:x+|\*+|\.+|-+|#+|<[^>]*>|\$\{[^}]*\}|\{\{[^}]*\}\}|%[^%]*%|\$[A-Z_]+|changeme|change_me|password|"
    r"passwd|secret|your[_-]?\w*|example\w*|dummy\w*|test\w*|sample\w*|redacted|null|none|true|false|todo|"
    r"placeholder|foo|bar|foobar|abc123|123456\d*|qwerty|letmein)$",
    re.IGNORECASE,
)


def shannon_entropy(s: str) -> float:
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


@dataclass(frozen=True, slots=True)
class SecretMatch:
    kind: str  # "aws_access_key", "jwt", ...
    start: int
    end: int
    score: float


@dataclass(frozen=True, slots=True)
class SecretPattern:
    kind: str
    pattern: re.Pattern[str]
    score: float
    validate: Callable[[str], bool] | None = None
    group: str | int = 0
    # lower-case literals, one of which every match contains: on ASCII text, a pattern none of them
    # appears in is skipped without running its regex (a prefilter, exact: it never changes the result)
    needs: tuple[str, ...] = ()
    # case-sensitive literals, one of which every match contains (the pattern spells them out and is not
    # case-insensitive): on any text, a pattern none of them appears in is skipped (exact, see `needs`)
    literals: tuple[str, ...] = ()


def _jwt_ok(value: str) -> bool:
    head = value.split(".", 1)[0]
    try:
        data = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and "alg" in data


def _password_ok(value: str) -> bool:
    value = value.strip("'\"`")
    if len(value) < 6 or PLACEHOLDER.match(value):
        return False
    return shannon_entropy(value) >= 2.5


def _generic_ok(value: str) -> bool:
    value = value.strip("'\"`")
    if len(value) < 8 or PLACEHOLDER.match(value) or (value.isalpha() and value.islower()):
        return False
    if re.fullmatch(r"[\w.-]+\(\)?|[a-z_.]+\.[a-z_]+", value):  # a call or attribute, not a value
        return False
    return shannon_entropy(value) >= 3.0


def _aws_secret_ok(value: str) -> bool:
    return shannon_entropy(value) >= 4.0 and any(c.isdigit() for c in value) and any(c.isupper() for c in value)


PATTERNS: tuple[SecretPattern, ...] = (
    SecretPattern(
        "private_key",
        re.compile(
            r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED |SSH2 ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----"
            r"[\s\S]{0,8000}?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)"
        ),
        1.0,
        literals=("-----BEGIN ",),
    ),
    SecretPattern(
        "aws_access_key",
        re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
        0.95,
        literals=("AKIA", "ASIA", "ABIA", "ACCA"),
    ),
    SecretPattern(
        "aws_secret_key",
        re.compile(r"(?i)aws.{0,20}?(?:secret|key).{0,20}?[=:\"'\s]\s*[\"']?(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"),
        0.9,
        _aws_secret_ok,
        "v",
        ("aws",),
    ),
    SecretPattern("gcp_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![\w-])"), 0.95, literals=("AIza",)),
    SecretPattern(
        "gcp_service_account",
        re.compile(r"\"private_key_id\"\s*:\s*\"[0-9a-f]{40}\""),
        0.95,
        literals=('"private_key_id"',),
    ),
    SecretPattern(
        "azure_storage_key",
        re.compile(r"(?i)(?:AccountKey|SharedAccessSignature|sig)=(?P<v>[A-Za-z0-9+/%]{30,}={0,2})"),
        0.9,
        None,
        "v",
        ("accountkey=", "sharedaccesssignature=", "sig="),
    ),
    SecretPattern(
        "github_token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,})"),
        0.98,
        literals=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    SecretPattern("gitlab_token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"), 0.98, literals=("glpat-",)),
    SecretPattern("slack_token", re.compile(r"\bxox[abposr]-(?:\d+-)+[A-Za-z0-9-]{6,}"), 0.95, literals=("xox",)),
    SecretPattern(
        "slack_webhook",
        re.compile(r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+"),
        0.95,
        literals=("https://hooks.slack.com/services/T",),
    ),
    SecretPattern("stripe_key", re.compile(r"\b(?:sk|rk)_live_[0-9A-Za-z]{20,}"), 0.98, literals=("_live_",)),
    SecretPattern(
        "openai_key",
        re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}|\bsk-proj-[\w-]{40,}"),
        0.98,
        literals=("sk-",),
    ),
    SecretPattern(
        "anthropic_key", re.compile(r"\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{80,}"), 0.98, literals=("sk-ant-",)
    ),
    SecretPattern("huggingface_token", re.compile(r"\bhf_[A-Za-z]{34}\b"), 0.95, literals=("hf_",)),
    SecretPattern("google_oauth_token", re.compile(r"\bya29\.[0-9A-Za-z_-]{30,}"), 0.9, literals=("ya29.",)),
    SecretPattern("twilio_key", re.compile(r"\bSK[0-9a-fA-F]{32}\b"), 0.7, literals=("SK",)),
    SecretPattern("sendgrid_key", re.compile(r"\bSG\.[\w-]{22}\.[\w-]{43}\b"), 0.98, literals=("SG.",)),
    SecretPattern("npm_token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), 0.95, literals=("npm_",)),
    SecretPattern(
        "pypi_token", re.compile(r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"), 0.98, literals=("pypi-AgEIcHlwaS5vcmc",)
    ),
    SecretPattern(
        "jwt",
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{10,}"),
        0.85,
        _jwt_ok,
        literals=("eyJ",),
    ),
    SecretPattern(
        "connection_string",
        re.compile(
            r"\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|redis|rediss|amqps?|mssql|sqlserver|oracle|"
            r"ftp|sftp|smtp|ldap|https?)://[^\s:/@]{1,64}:(?P<v>[^\s@/]{1,128})@[\w.-]+"
        ),
        0.9,
        _password_ok,
        "v",
        literals=("://",),
    ),
    SecretPattern(
        "connection_string",
        re.compile(r"(?i)(?:Password|Pwd)=(?P<v>[^;\s\"']{6,});"),
        0.85,
        _password_ok,
        "v",
        ("password=", "pwd="),
    ),
    SecretPattern(
        "generic_secret",
        re.compile(
            r"(?i)\b[\w.-]{0,20}(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
            r"auth[_-]?key|client[_-]?secret|private[_-]?key|credential)s?[\"']?\s*(?:[:=]|=>|:=)\s*"
            r"(?P<v>\"[^\"\s]{8,200}\"|'[^'\s]{8,200}'|[^\s,;\"'`)]{8,200})"
        ),
        0.75,
        _generic_ok,
        "v",
        ("pass", "pwd", "secret", "token", "key", "credential"),
        (":", "="),  # the assignment the pattern requires
    ),
)


_NEEDS = frozenset(n for p in PATTERNS for n in p.needs)
_LITERALS = frozenset(n for p in PATTERNS for n in p.literals)


def _runnable(text: str) -> list[SecretPattern]:
    """The patterns whose prefilter literals are in `text` (each distinct literal looked up once)."""
    # `needs` is exact only on ASCII: case-insensitive matching folds some non-ASCII letters
    lower = text.lower() if text.isascii() else None
    needed = {n for n in _NEEDS if n in lower} if lower is not None else None
    spelled = {n for n in _LITERALS if n in text}
    return [
        pat
        for pat in PATTERNS
        if (not pat.needs or needed is None or not needed.isdisjoint(pat.needs))
        and (not pat.literals or not spelled.isdisjoint(pat.literals))
    ]


def find_secrets(text: str) -> list[SecretMatch]:
    out: list[SecretMatch] = []
    for pat in _runnable(text):
        for m in pat.pattern.finditer(text):
            start, end = m.span(pat.group)
            value = text[start:end]
            if pat.validate is not None and not pat.validate(value):
                continue
            if pat.group and value[:1] in "\"'" and value[-1:] == value[:1]:
                start, end = start + 1, end - 1
            out.append(SecretMatch(pat.kind, start, end, pat.score))
    ranked = sorted(out, key=lambda s: (-s.score, -(s.end - s.start)))
    kept: list[SecretMatch] = []
    for s in ranked:
        if all(s.end <= k.start or s.start >= k.end for k in kept):
            kept.append(s)
    return sorted(kept, key=lambda s: s.start)
