"""RegistrableSplitter gives NameSplitter's answer on every name, whichever names it learnt from first."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tutela.dns.names import NameSplitter
from tutela.dns.splitcache import RegistrableSplitter, bundled_rule_suffixes, rule_suffixes
from tutela.dns.training import synth

# names under registrable domains with PSL rules beneath or beside them (private sections, wildcards,
# exceptions), hostile spellings, IDNs, unknown TLDs
TRICKY = [
    "a.b.s3.amazonaws.com", "bucket.s3.amazonaws.com", "x.amazonaws.com", "www.amazonaws.com", "amazonaws.com",
    "x.blogspot.com", "blogspot.com", "a.x.blogspot.com", "foo.ck", "www.ck", "a.www.ck", "b.foo.ck",
    "city.kawasaki.jp", "a.city.kawasaki.jp", "foo.kawasaki.jp", "a.foo.kawasaki.jp", "kawasaki.jp",
    "d1x2y3.cloudfront.net", "a.d1x2y3.cloudfront.net", "cloudfront.net", "a.github.io", "b.a.github.io",
    "www.example.co.uk", "a.b.example.co.uk", "co.uk", "example.co.uk", "a..example.com", ".example.com",
    "Upper.Example.COM.", "  spaced.example.com  ", "é.example.com", "xn--bcher-kva.example", "a.xn--p1ai",
    "b.a.xn--p1ai", "host.local", "a.host.local", "foo.zzzunknown", "a.foo.zzzunknown", "com", "", ".", "a",
    "1.2.3.4.in-addr.arpa", "_sip._tls.example.com", "x" * 63 + ".com", ("a" * 63 + ".") * 4 + "com",
    "a.b.c.d.e.f.g.h.example.co.uk", "q+Z8AnwaBA.hidemyself.org", "a.appspot.com", "b.a.appspot.com",
]  # fmt: skip
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dns"


def _names() -> list[str]:
    out = list(TRICKY)
    popular = ["google.com", "bbc.co.uk", "example.net", "amazonaws.com", "blogspot.com", "kawasaki.jp", "ck",
               "github.io", "city.kawasaki.jp", "s3.amazonaws.com", "xn--p1ai"]  # fmt: skip
    out += synth.generate("o", popular, 3000, 3) + synth.generate("cloud", [], 1000, 3)
    tranco = DATA / "benign" / "tranco_top_50k.csv"
    if tranco.is_file():
        domains = [line.split(",", 1)[1] for line in tranco.read_text().splitlines()[1::10]]
        out += domains + synth.generate("o", domains, 5000, 4)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_parts_as_name_splitter_in_any_order(seed: int) -> None:
    names = _names()
    random.Random(seed).shuffle(names)
    plain, fast = NameSplitter(), RegistrableSplitter()
    for name in names + names:  # the second pass takes the shortcut for every name it can
        assert fast.split(name) == plain.split(name), name
    assert len(fast._known) > 1000  # the shortcut was taken


def test_registrable_domains_with_rules_beneath_are_never_remembered() -> None:
    fast = RegistrableSplitter()
    for name in ("a.b.s3.amazonaws.com", "x.amazonaws.com", "foo.ck", "a.city.kawasaki.jp", "x.blogspot.com"):
        fast.split(name)
    assert "amazonaws.com" not in fast._known and "city.kawasaki.jp" not in fast._known
    assert "x.blogspot.com" in fast._known  # nothing beneath it


def test_rule_suffixes() -> None:
    got = rule_suffixes(["// comment", "", "*.kawasaki.jp", "!city.kawasaki.jp", "s3.amazonaws.com", "рф"])
    assert {"kawasaki.jp", "jp", "city.kawasaki.jp", "s3.amazonaws.com", "amazonaws.com", "com"} <= got
    assert {"рф", "xn--p1ai"} <= got
    assert "amazonaws.com" in bundled_rule_suffixes()


def test_memory_is_bounded() -> None:
    fast = RegistrableSplitter(max_registrables=10)
    for i in range(100):
        fast.split(f"www.site{i}.com")
    assert len(fast._known) == 10
