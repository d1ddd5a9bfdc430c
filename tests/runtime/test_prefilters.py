"""The DLP regex prefilters (a secret pattern's `needs` literals, a PII recogniser's `min_digits`) only skip
work: with or without them, every text gets the same matches."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tutela.runtime import pii, secrets

PIECES = [
    "password", "PWD", "Secret", "token", "api_key", "ApiKey", "credential", "AccountKey=", "sig=", "Pwd=",
    "postgres://", "https://", "user", ":", "=", ";", "@", "db.example.com", "hunter2hunter2", "'", '"',
    "4111 1111 1111 1111", "078-05-1120", "GB82 WEST 1234 5698 7654 32", "+44 20 7946 0958", "10.0.0.1",
    "fe80::1", "555-0134", "12", "7", " ", "\n", "my name is", "Anna Smith", "K", "\u212a", "\u017f", "\u0663",
    "ＰＡＳＳ", "ext 12", "x", "Box 12", "Main Street",
    # what the literal and gate prefilters key on
    "a@b.co", "@", "1.2.3.4", "192.168.0.1", "2001:db8:0:1", "::", ".", "-", "5550100123", "(555) 010-2345",
    "\u0661\u0662.\u0663", "corner of", "Oak St and Elm Ave", "lives at", "ship to", "address:", "PO Box 12",
    "Postfach 5", "AKIAIOSFODNN7EXAMPLE", "AKIA", "ghp_" + "a1" * 18, "xoxb-1-abcdef", "sk-ant-", "sk-proj-" + "x" * 40,
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghijkl", "SK" + "0a" * 16, "hf_" + "ab" * 17, "-----BEGIN ",
    "PRIVATE KEY-----", "https://hooks.slack.com/services/T1/B2/abc", "aws_secret_key = ",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCY1EXAMPLEKEY", "AIza" + "B" * 35, "_live_", "rk", "glpat-" + "z" * 20,
    "Dear ", "Mr. ", "Dr ", "Regards, ", "Neighbour ", "son ", "I'm ", "Madam ", "John", "O'Neil",
    "npm_" + "n" * 36, "SG." + "s" * 22 + "." + "t" * 43, "ya29." + "g" * 30, '"private_key_id": "' + "f" * 40 + '"',
]  # fmt: skip
texts = st.lists(st.sampled_from(PIECES), max_size=14).map("".join)


def unfiltered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        secrets, "PATTERNS", tuple(dataclasses.replace(p, needs=(), literals=()) for p in secrets.PATTERNS)
    )
    monkeypatch.setattr(
        pii,
        "RECOGNIZERS",
        tuple(dataclasses.replace(r, min_digits=0, literals=(), gate=None) for r in pii.RECOGNIZERS),
    )


@settings(max_examples=1500, deadline=None)
@given(texts)
def test_prefilters_never_change_the_matches(text: str) -> None:
    filtered = (secrets.find_secrets(text), pii.analyze(text))
    with pytest.MonkeyPatch.context() as mp:
        unfiltered(mp)
        assert (secrets.find_secrets(text), pii.analyze(text)) == filtered


def test_prefilters_are_declared_where_they_pay() -> None:
    """The costly patterns carry a prefilter (a regression here is a silent slowdown of every request)."""
    assert {p.kind for p in secrets.PATTERNS if p.needs} >= {"generic_secret", "azure_storage_key"}
    assert {r.entity for r in pii.RECOGNIZERS if r.min_digits} >= {"CREDIT_CARD", "US_SSN", "PHONE_NUMBER"}
    assert {r.entity for r in pii.RECOGNIZERS if r.literals or r.gate} >= {
        "EMAIL_ADDRESS",
        "IP_ADDRESS",
        "PHONE_NUMBER",
    }
    assert sum(1 for p in secrets.PATTERNS if p.needs or p.literals) >= len(secrets.PATTERNS) - 1


@pytest.mark.parametrize(
    "text",
    [
        "mail me at anna.smith@example.org or call +44 20 7946 0958",
        "server 10.0.0.12 and fe80:0:0:1::1 are down",
        "she lives at 12 Oak Street, Springfield, IL 62704; PO Box 77",
        "meet me at the corner of Oak and Elm",
        "Dear Mr. John Smith, my neighbour Anna Lee said so. Regards, Dr Paul Brown",
        "key AKIAIOSFODNN7EXAMPLE token ghp_" + "a1" * 18 + " and xoxb-1-2-abcdefg",
        "postgres://admin:S3cr3t!pass@db.internal/app and password = 'Zq8#kL2@vN5!'",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIabc\n-----END RSA PRIVATE KEY-----",
    ],
)
def test_prefilters_keep_every_known_match(text: str) -> None:
    """Texts that hold each prefiltered kind: the matches are there, and the same as unfiltered."""
    filtered = (secrets.find_secrets(text), pii.analyze(text))
    assert filtered[0] or filtered[1]
    with pytest.MonkeyPatch.context() as mp:
        unfiltered(mp)
        assert (secrets.find_secrets(text), pii.analyze(text)) == filtered
