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
]  # fmt: skip
texts = st.lists(st.sampled_from(PIECES), max_size=14).map("".join)


def unfiltered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "PATTERNS", tuple(dataclasses.replace(p, needs=()) for p in secrets.PATTERNS))
    monkeypatch.setattr(pii, "RECOGNIZERS", tuple(dataclasses.replace(r, min_digits=0) for r in pii.RECOGNIZERS))


@settings(max_examples=400, deadline=None)
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
