"""RegistrableSplitter gives NameSplitter's answer on every name, whichever names it learnt from first."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tutela.dns.names import MAX_NAME, NameSplitter
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
        assert fast(name) == plain.split(name) == fast(name) == fast.split(name), name
    assert len(fast._known) > 1000  # the shortcut was taken


def _rule_names() -> list[str]:
    """Names at, under and beside every rule of the bundled list (wildcards and exceptions included)."""
    out = []
    from publicsuffixlist import PublicSuffixList

    for rule in sorted(PublicSuffixList()._publicsuffix):
        body = rule.lstrip("!").replace("*", "w")
        out += [body, f"a.{body}", f"b.a.{body}", f"a.{body.partition('.')[2]}"]
    return out


def test_same_parts_as_name_splitter_on_every_rule_of_the_list() -> None:
    names = _rule_names()
    assert len(names) > 30_000
    plain, fast = NameSplitter(), RegistrableSplitter()
    for name in names + names[::-1]:
        assert fast.split(name) == plain.split(name), name


HOSTILE = (
    [
        "a\x00b.com",
        "\x00.com",
        "a.\x00",
        "x" * 300 + ".com",
        "a." * 130 + "com",
        ("a" * 252) + ".com",
        ("b" * 251) + "..com",
        "a.b.c." + "d" * 250,
        "a .com",
        "a\t.b.com",
        " .com",
        "com.",
        "..",
        "...",
        "a.",
        ".a",
        "A.B.CO.UK",
        "a.b.WWW.CK",
        "www.ck.",
        "ß.de",
        "İ.com",
        "a.xn--",
        "xn--.xn--",
        "-.-",
        "*.ck",
        "!www.ck",
        "a.*.kawasaki.jp",
        "\x7f.\x80.com",
        "a.\udcff.com",
        "a." + "\u0130" * 200 + ".com",
        ".".join(["\\200" * 60] * 3) + ".example.com",  # 8-bit labels, escaped as the wire parser writes them
        "x" * 2000 + ".example.com",  # past MAX_NAME: the right end is kept
        "." * 2000 + "a.com",
    ]
    + [f"{chr(b)}.ex{chr(b)}mple.co{chr(b)}" for b in range(256)]
    + [f"a{chr(b)}b.c{chr(b)}.uk" for b in range(256)]
)


def test_same_parts_as_name_splitter_on_hostile_names() -> None:
    plain, fast = NameSplitter(), RegistrableSplitter()
    for name in [*HOSTILE, "a.example.com", "example.co.uk", *HOSTILE]:
        got = fast(name)
        assert got == plain.split(name) == fast(f"{name}"), repr(name)
        assert len(got.name) <= MAX_NAME


def test_long_names_keep_their_domain() -> None:
    """A name is cut to its last MAX_NAME characters: the registrable domain is at the right end. Text escapes an
    8-bit octet as 4 characters, so a 255-octet wire name can be 4 * 255 characters long and is kept whole."""
    escaped = ".".join(["\\200" * 63] * 3) + ".example.com"  # 3 x 63 octets + 11: 203 octets on the wire
    assert len(escaped) <= MAX_NAME
    for split in (NameSplitter(), RegistrableSplitter()):
        assert split(escaped).registrable == "example.com" and split(escaped).sub == escaped[: -len(".example.com")]
        long = split("x" * 2000 + ".example.com")
        assert long.registrable == "example.com" and len(long.name) == MAX_NAME and set(long.sub) == {"x"}


_LABEL = st.text(alphabet=st.sampled_from("abcz09-_.*!\x00 \u00e9\u0130A"), max_size=12)
_TAIL = st.sampled_from(["com", "co.uk", "ck", "www.ck", "kawasaki.jp", "city.kawasaki.jp", "amazonaws.com",
                         "s3.amazonaws.com", "blogspot.com", "zzunknown", "", ".", "xn--p1ai"])  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.lists(_LABEL, max_size=4), _TAIL), min_size=1, max_size=6))
def test_same_parts_as_name_splitter_on_generated_names(specs: list[tuple[list[str], str]]) -> None:
    for labels, tail in specs + specs:  # one splitter pair for all examples: it learns across them
        name = ".".join([*labels, tail])
        assert _FAST(name) == _PLAIN.split(name), repr(name)


_PLAIN, _FAST = NameSplitter(), RegistrableSplitter()


def test_registrable_domains_with_rules_beneath_are_never_remembered() -> None:
    fast = RegistrableSplitter()
    for name in ("a.b.s3.amazonaws.com", "x.amazonaws.com", "foo.ck", "a.city.kawasaki.jp", "x.blogspot.com"):
        fast.split(name)
    assert "amazonaws.com" not in fast._known and "city.kawasaki.jp" not in fast._known
    assert "x.blogspot.com" in fast._known  # nothing beneath it


def test_names_with_empty_labels_teach_nothing() -> None:
    """NameSplitter splits them with its fallback (last label as suffix), not by the list: remembering that
    answer would split later names under a wildcard rule wrongly (main did, until this test)."""
    plain, fast = NameSplitter(), RegistrableSplitter()
    for bad, good in ((".foo.ck", "a.foo.ck"), (".*.ck", "*.ck"), ("a..bar.kawasaki.jp", "b.bar.kawasaki.jp")):
        assert fast(bad) == plain.split(bad)
        assert fast(good) == plain.split(good), good
    assert "foo.ck" not in fast._known and "*.ck" not in fast._known


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
