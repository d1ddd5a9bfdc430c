"""The PSL walk (tutela.dns.psl) must give exactly what publicsuffixlist's privatesuffix gives."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tutela.dns.psl import Registrable, _public_suffix_list, registrable_of

TRANCO = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dns" / "benign" / "tranco_top_50k.csv"
PSL = _public_suffix_list()
RULES = sorted(PSL._publicsuffix)
STEMS = sorted({r.lstrip("!").removeprefix("*.") for r in RULES})


def reference(name: str) -> str:
    name = name.rstrip(".").lower()
    return PSL.privatesuffix(name) or name


def test_every_rule_with_labels_around_it() -> None:
    """Exact, wildcard and exception rules (e.g. *.ck and !www.ck), at and under every rule."""
    names = ["", ".", "com", "COM.", "a..b.com", "x.unknown-tld", "UPPER.Example.CO.UK.", "a.b.c.d.e.f.g.h"]
    for rule in RULES:
        stem = rule.lstrip("!").removeprefix("*.")
        names += [stem, f"a.{stem}", f"b.a.{stem}", f"z.y.x.{stem}", "q." + rule.lstrip("!").replace("*", "v")]
    wrong = [(n, registrable_of(n), reference(n)) for n in names if registrable_of(n) != reference(n)]
    assert not wrong, wrong[:5]
    assert registrable_of("a.b.example.co.uk") == "example.co.uk"
    assert registrable_of("foo.www.ck") == "www.ck" and registrable_of("a.b.c.ck") == "b.c.ck"  # !www.ck, *.ck


def test_tranco_names_agree() -> None:
    if not TRANCO.exists():
        pytest.skip("the shared DNS data is not on this machine")
    with TRANCO.open() as fh:
        names = [row[1] for row in csv.reader(fh) if len(row) > 1][1:]
    names += [f"deep.sub.{n}" for n in names[:5000]]
    wrong = [n for n in names if registrable_of(n) != reference(n)]
    assert not wrong, wrong[:5]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(["a", "www", "city", "x1", "co", "com", "uk", "ck", "kobe", "jp", "s3"]), max_size=4),
    st.sampled_from(STEMS),
)
def test_random_names_over_rule_stems_agree(prefix: list[str], stem: str) -> None:
    name = ".".join([*prefix, stem])
    assert registrable_of(name) == reference(name)
    assert Registrable()(name) == reference(name)
