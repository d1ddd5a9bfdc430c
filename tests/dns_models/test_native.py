"""The C twins (tutela._native.dnsfeatures) give the Python reference's floats, bit for bit: both lexical feature
vectors (tunnel and DGA) and the one-row forest evaluator.

Compared on real names (the shared data's tunnel and popular-domain sets), generated ones (hypothesis) and hostile
ones (empty, over 253 characters, non-ASCII, NUL bytes, every byte value). The extension must be built: a missing
one fails here unless TUTELA_PURE_PYTHON=1 (the Python path on purpose: the rest of the suite then tests it) or
TUTELA_ALLOW_NO_NATIVE=1.
"""

from __future__ import annotations

import csv
import math
import random
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.native_build import PURE, missing
from tutela.dns import forest as forest_mod
from tutela.dns import lexical
from tutela.dns.forest import Forest
from tutela.dns.lexical import Lexicon
from tutela.dns.scoring import DnsScorer
from tutela.dns.training import synth

NAME_CHARS = string.ascii_lowercase + string.digits + "-_.^$" + "AZ\x00é"


def bits(values: list[float]) -> list[str]:
    """Exact identity of floats (-0.0 differs from 0.0, NaN equals NaN)."""
    return [v.hex() for v in values]


def test_the_extension_is_built_unless_python_is_asked_for() -> None:
    if PURE:
        assert lexical._NATIVE is None and forest_mod._NATIVE is None
        return
    if lexical._NATIVE is None:
        missing("dnsfeatures")
    assert forest_mod._NATIVE is lexical._NATIVE


@pytest.fixture(scope="module")
def lex(scorer: DnsScorer) -> Lexicon:
    if scorer.lexicon.native_tables() is None:
        pytest.skip("no C extension on this path")
    return scorer.lexicon


@pytest.fixture(scope="module")
def tunnel_forest(scorer: DnsScorer) -> Forest:
    forest, _cal = scorer._tunnel_model()
    forest.compile()
    if forest._native is None:
        pytest.skip("no C extension on this path")
    return forest


def same_features(lex: Lexicon, sub: str) -> None:
    """Both feature vectors of `sub` (as a subdomain part, and as a registrable label), C against Python."""
    want = lex.tunnel_features_python(sub)
    assert bits(lex.tunnel_features(sub)) == bits(want), sub
    native = lex.native_tables().tunnel_features(sub)
    assert native is None if not sub.isascii() else bits(native) == bits(want), sub  # non-ASCII: the Python path
    suffix, private = ("co.uk", True) if len(sub) % 2 else ("no-such-suffix", False)
    want = lex.dga_features_python(sub, suffix, private)
    assert bits(lex.dga_features(sub, suffix, private)) == bits(want), sub
    native = lex.native_tables().dga_features(sub, 1.0, 0.0, -3.5)
    assert native is None if not sub.isascii() else native[18:21] == [1.0, 0.0, -3.5], sub


HOSTILE = [
    "", ".", "..", "a", "ab", "abc", "-", "_", "^", "$", "^$", "$^", "a.b", ".a.", "a..b",
    "x" * 253, "x" * 254, "ab." * 100, "q" * 1000, "\x00", "\x00" * 300, "a\x00b.c\x00d",
    "".join(map(chr, range(128))), "".join(map(chr, range(256))), "é", "www.é", "a" * 252 + "é", "a" * 253 + "é",
    "ABC.Example", "DNS", "theDNSserver", "0123456789abcdef" * 8, "mfrggzdfmztwq2lknnwg23tpobyxe43uov3ho6dzpi",
    "www", "mail", "api-v2", "cdn-77", "e1234", "thequickbrownfox" * 5, "9" * 64 + "z", "a-" * 40,
]  # fmt: skip


@pytest.mark.parametrize("sub", HOSTILE + [chr(b) for b in range(256)] + [chr(b) * 70 for b in range(0, 256, 7)])
def test_features_equal_on_hostile_text(lex: Lexicon, sub: str) -> None:
    same_features(lex, sub)


def test_features_equal_on_real_names(lex: Lexicon, scorer: DnsScorer, data_dir: Path) -> None:
    names: list[str] = []
    for part in ("train", "validate"):
        with open(data_dir / "tunneling" / f"{part}.csv", newline="", encoding="utf-8") as f:
            names += [row[1] for row in csv.reader(f) if len(row) == 2]  # label,qname (no header)
    with open(data_dir / "benign" / "tranco_top_50k.csv", newline="", encoding="utf-8") as f:
        names += [row[1] for row in csv.reader(f)][:20_000]
    names += [line.strip() for line in (data_dir / "dga" / "banjori.txt").read_text().splitlines()[:2000]]
    assert len(names) > 30_000
    parts = [scorer.split(n) for n in names]
    texts = {p.sub for p in parts} | {p.label for p in parts} | set(names[::5])  # subdomains, labels, whole names
    for text in texts:
        same_features(lex, text)


def test_features_equal_on_generated_hostnames(lex: Lexicon, scorer: DnsScorer) -> None:
    rng = random.Random(5)
    names = synth.generate("o", ["google.com", "bbc.co.uk", "akamaiedge.net"], 3000, 2)
    names += synth.generate("cloud", [], 1000, 2)
    b32 = "abcdefghijklmnopqrstuvwxyz234567"
    names += ["".join(rng.choices(b32, k=rng.randrange(1, 120))) + f".{i}.t.example.net" for i in range(500)]
    names += ["".join(rng.choices(string.ascii_lowercase + string.digits, k=rng.randrange(4, 30))) + ".com"
              for _ in range(1000)]  # fmt: skip
    for name in names:
        parts = scorer.split(name)
        same_features(lex, parts.sub)
        same_features(lex, parts.label)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.sampled_from(NAME_CHARS), max_size=300) | st.text(max_size=300))
def test_features_equal_on_any_text(lex: Lexicon, sub: str) -> None:
    same_features(lex, sub)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.sampled_from(string.ascii_lowercase + "-0"), min_size=0, max_size=64))
def test_coverage_equal(lex: Lexicon, text: str) -> None:
    assert lex.native_tables().coverage(text).hex() == lex.coverage(text).hex()


def test_tables_reject_what_they_cannot_lay_out() -> None:
    native = lexical._NATIVE
    if native is None:
        pytest.skip("no C extension on this path")
    with pytest.raises(TypeError):
        native.Tables({"abc": 1}, {}, -9.0, {}, -5.0, [])  # an int value: Python would add it exactly
    with pytest.raises(ValueError):
        native.Tables({"abcd": -1.0}, {}, -9.0, {}, -5.0, [])
    with pytest.raises(ValueError):
        native.Tables({}, {}, -9.0, {"abc": -1.0}, -5.0, [])
    with pytest.raises(ValueError):  # an alphabet too large for the dense table
        native.Tables({chr(33 + i) * 3: -1.0 for i in range(90)}, {}, -9.0, {}, -5.0, [])
    with pytest.raises(TypeError):
        native.Tables({}, {}, -9.0, {}, -5.0, [b"bytes"])
    tables = native.Tables({"éab": -1.0, "abc": -2.0}, {"ab": -3.0}, -9.0, {"^a": -0.5, "c$": -0.25}, -5.0,
                           ["abc", "é" * 4, "ab"])  # fmt: skip
    assert tables.tunnel_features("é") is None
    with pytest.raises(TypeError):
        tables.tunnel_features(b"abc")
    lex = Lexicon({"trigram": {"éab": -1.0, "abc": -2.0}, "trigram_ctx_unseen": {"ab": -3.0}, "trigram_unseen": -9.0,
                   "bigram": {"^a": -0.5, "c$": -0.25}, "bigram_unseen": -5.0, "suffix_logprior": {},
                   "suffix_unseen": -9.0, "words": ["abc", "é" * 4, "ab"]})  # fmt: skip
    odd = Lexicon({"trigram": {"abc": -2}, "trigram_ctx_unseen": {}, "trigram_unseen": -9.0, "bigram": {},
                   "bigram_unseen": -5.0, "suffix_logprior": {}, "suffix_unseen": -9.0, "words": []})  # fmt: skip
    assert odd.native_tables() is None  # an int value: this lexicon stays on the Python path
    assert odd.tunnel_features("abc") == odd.tunnel_features_python("abc")
    for text in ("abc", "abcabc.x", "zab", "^ab$", "ababab", "", "a-b-c", "abcab1c"):
        assert bits(tables.tunnel_features(text)) == bits(lex.tunnel_features_python(text)), text
        want = lex.dga_features_python(text, "com", False)
        assert bits(tables.dga_features(text, *want[18:21])) == bits(want), text


# -- trees ------------------------------------------------------------------------------------------------------
def test_tunnel_trees_equal_on_features_and_edges(tunnel_forest: Forest, lex: Lexicon, scorer: DnsScorer) -> None:
    rows = [lex.tunnel_features(scorer.split(n).sub or "www") for n in synth.generate("o", ["google.com"], 1500, 3)]
    thresholds = sorted({t for tree in tunnel_forest.trees for t in tree["threshold"]})
    rng = random.Random(9)
    edges = [*thresholds, *(math.nextafter(t, math.inf) for t in thresholds), math.nan, math.inf, -math.inf, -0.0]
    for _ in range(3000):  # rows hitting thresholds exactly, just above them, and NaN / infinities
        rows.append([rng.choice(edges) for _ in range(tunnel_forest.num_features)])
    for x in rows:
        assert bits(tunnel_forest.raw_one(x)) == bits(tunnel_forest.raw_one_python(x))
        assert tunnel_forest._native.raw_one(x) is not None
    x = rows[0]
    assert tunnel_forest._native.raw_one(tuple(x)) is None  # not a list: the Python evaluator serves it
    assert tunnel_forest._native.raw_one([int(v) for v in x]) is None
    assert tunnel_forest._native.raw_one(x[:-1]) is None
    assert tunnel_forest.raw_one(tuple(x)) == tunnel_forest.raw_one_python(x)


def test_trees_reject_malformed_specs() -> None:
    native = forest_mod._NATIVE
    if native is None:
        pytest.skip("no C extension on this path")

    def tree(split, left, right, leaf, klass=0):
        return {"split": split, "threshold": [0.5] * len(split), "left": left, "right": right, "leaf": leaf,
                "class": klass}  # fmt: skip

    cyclic = native.Trees([tree([0, 0], [1, 0], [~0, ~1], [1.0, 2.0, 3.0])], 1, 1)
    with pytest.raises(ValueError, match="cycle"):
        cyclic.raw_one([0.0])
    for bad in (
        [tree([1], [~0], [~1], [1.0, 2.0])],  # unknown feature
        [tree([0], [5], [~1], [1.0, 2.0])],  # child out of range
        [tree([0], [~0], [~2], [1.0, 2.0])],  # leaf out of range
        [tree([0], [~0], [~1], [1.0])],  # too few leaves
        [tree([0], [~0], [~1], [1.0, 2.0], klass=1)],  # class out of range
        [{"split": [0]}],
    ):
        with pytest.raises((ValueError, TypeError)):
            native.Trees(bad, 1, 1)
    ok = native.Trees([tree([], [], [], [0.25]), tree([0], [~0], [~1], [1.0, 2.0])], 1, 1)
    assert ok.raw_one([0.5]) == [0.25 + 1.0] and ok.raw_one([0.6]) == [0.25 + 2.0]
