"""The inline cost work regrouped arithmetic, never changed it: each fast path equals the slow one bit for bit.

- Forest: the numpy leaf-table evaluator (trees of <= 8 splits, the family forest) vs the compiled function.
- Lexicon: coverage() vs segment()[0], trigram_mean_unseen() vs trigram_scores(), on names of every kind,
  including names with unseen trigrams (the back-off memo) and hostile characters.
(tests/dns_models/test_equivalence.py checks the whole detector path against the golden outputs.)
"""

from __future__ import annotations

import random
import string

import pytest

from tutela.dns import models as refs
from tutela.dns.forest import Forest, ForestError
from tutela.dns.scoring import DnsScorer
from tutela.dns.training import synth

POPULAR = ["google.com", "bbc.co.uk", "wikipedia.org", "example.net"]


def _names() -> list[str]:
    rng = random.Random(11)
    out = synth.generate("o", POPULAR, 600, 1) + synth.generate("cloud", [], 300, 1)
    out += ["".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(rng.randrange(5, 40))) + ".com"
            for _ in range(300)]  # fmt: skip
    out += ["".join(rng.choice("abc-_é\x00Z9?*.") for _ in range(rng.randrange(0, 300))) for _ in range(100)]
    out += ["facebookmessenger.com", "thequickbrownfox.net", "www", "", "a", "ab", "xn--bcher-kva.example"]
    return out


def test_family_forest_table_equals_compiled(scorer: DnsScorer) -> None:
    forest, _, codes = scorer._family_model()
    assert forest.tabulated  # 1,020 trees of 6 splits
    compiled = forest._compile()
    rows = []
    for name in _names():
        parts = scorer.split(name)
        if parts.label:
            rows.append([*scorer.dga_features(parts), codes.get(parts.suffix, -1.0)])
    assert len(rows) > 1000
    for x in rows:
        assert forest.raw_one(x) == compiled(x)
        assert forest.proba_one(x) == forest.proba_one(x)


def test_table_evaluator_on_a_small_multiclass_forest() -> None:
    # 2 classes x 2 rounds; one tree without splits; thresholds hit exactly (x <= t goes left)
    def tree(split, threshold, left, right, leaf, klass):
        return {"split": split, "threshold": threshold, "left": left, "right": right, "leaf": leaf, "class": klass}

    spec = {
        "format": "tutela-forest/1",
        "num_class": 2,
        "feature_names": ["a", "b"],
        "trees": [
            tree([0, 1], [0.5, 2.0], [1, ~1], [~0, ~2], [1.0, 2.0, 3.0], 0),
            tree([], [], [], [], [0.25], 1),
            tree([1], [-1.0], [~0], [~1], [-1.0, 1.0], 0),
            tree([0], [0.5], [~0], [~1], [0.5, -0.5], 1),
        ],
    }
    forest = Forest(spec)
    assert forest.tabulated
    compiled = forest._compile()
    for x in ([0.5, 2.0], [0.4, 2.1], [0.6, -1.0], [-3.0, -1.5], [9.0, 9.0]):
        assert forest.raw_one(x) == compiled(x)
    assert forest.raw_one([0.5, 2.0]) == [2.0 + 1.0, 0.25 + 0.5]
    with pytest.raises(ForestError):
        forest.raw_one([1.0])


def reference_raw(forest: Forest, x: list[float]) -> list[float]:
    """A plain walk of every tree, each leaf added to its class's running sum in tree order."""
    sums = [0.0] * forest.num_class
    for tree in forest.trees:
        node = 0 if tree["split"] else ~0
        while node >= 0:
            node = tree["left"][node] if x[tree["split"][node]] <= tree["threshold"][node] else tree["right"][node]
        sums[tree["class"]] += tree["leaf"][~node]
    return sums


@pytest.mark.parametrize("ref", [refs.TUNNEL, refs.DGA])
def test_compiled_forest_equals_a_tree_walk(scorer: DnsScorer, ref) -> None:
    forest, _meta = scorer.bundle.forest(ref)
    rows = []
    for name in _names():
        parts = scorer.split(name)
        if ref is refs.TUNNEL:
            rows.append(scorer.lexicon.tunnel_features(parts.sub))
        elif parts.label:
            rows.append(scorer.dga_features(parts))
    assert len(rows) > 1000
    for x in rows:
        assert forest.raw_one(x) == reference_raw(forest, x)
        # a threshold met exactly goes left, as in LightGBM
        at = list(x)
        tree = forest.trees[0]
        at[tree["split"][0]] = tree["threshold"][0]
        assert forest.raw_one(at) == reference_raw(forest, at)


@pytest.mark.parametrize("ref", [refs.TUNNEL, refs.DGA])
def test_large_trees_stay_compiled(scorer: DnsScorer, ref) -> None:
    forest, _meta = scorer.bundle.forest(ref)
    assert not forest.tabulated  # 14 splits per tree: a 2**14 table per tree would not pay


def test_lexicon_fast_paths_equal_the_full_ones(scorer: DnsScorer) -> None:
    lex = scorer.lexicon
    for name in _names():
        parts = scorer.split(name)
        for text in {parts.label, parts.sub.replace(".", "")[:64], name}:
            scores = lex.trigram_scores(text)
            assert lex.trigram_mean_unseen(text) == (scores[0], scores[2])
            assert lex.coverage(text) == lex.segment(text)[0]
    long = "ab" * 400  # beyond the precomputed slices
    assert lex.coverage(long) == lex.segment(long)[0]
    assert lex.trigram_mean_unseen(long) == (lex.trigram_scores(long)[0], lex.trigram_scores(long)[2])


def reference_trigram_scores(lex, text: str) -> tuple[float, float, float]:
    """(mean, min, share unseen) of the padded text's trigram log-probabilities, a plain loop over 3-character
    strings and the lexicon's own dictionaries (no memo, no character triples)."""
    padded = f"^{text}$"
    lps, unseen = [], 0
    for i in range(len(padded) - 2):
        gram = padded[i : i + 3]
        lp = lex.trigram.get(gram)
        if lp is None:
            unseen += 1
            lp = lex.trigram_ctx_unseen.get(gram[:2], lex.trigram_unseen)
        lps.append(lp)
    if not lps:
        return 0.0, 0.0, 0.0
    total = 0.0
    for lp in lps:
        total += lp
    return total / len(lps), min(0.0, *lps), unseen / len(lps)


def test_trigram_scores_equal_the_reference(scorer: DnsScorer) -> None:
    lex = scorer.lexicon
    texts = {t for name in _names() for t in (name, scorer.split(name).label, name.replace(".", "")[:64])}
    texts |= {"ab" * 400, "", "a", "é" * 5, "\x00\x00\x00"}
    for _ in range(2):  # the second time through the back-off memo
        for text in sorted(texts):
            assert lex.trigram_scores(text) == reference_trigram_scores(lex, text), text


def reference_tunnel_features(lex, sub: str) -> list[float]:
    """tunnel_features as first written (regexes, str.translate counts, the full segmentation DP): the slow path
    the fast one must equal bit for bit."""
    from tutela.dns.lexical import BASE32, HEX, MAX_LABEL, TUNNEL_FEATURES, _counts, entropy, longest_runs

    sub = sub[:MAX_LABEL]
    flat = sub.replace(".", "")
    n = len(flat) or 1
    letters, vowels, digits = _counts(flat)
    f = dict.fromkeys(TUNNEL_FEATURES, 0.0)
    f["sub_length"] = float(len(sub))
    f["sub_labels"] = float(sub.count(".") + 1) if sub else 0.0
    f["max_label"] = float(max(map(len, sub.split("."))))
    f["entropy"] = entropy(flat)
    f["digit_ratio"] = digits / n
    f["symbol_ratio"] = (len(flat) - letters - digits - flat.count("-")) / n
    f["vowel_ratio"] = vowels / letters if letters else 0.0
    f["trigram_mean"], _min, f["trigram_unseen"] = reference_trigram_scores(lex, flat[:64])
    f["word_coverage"] = lex.segment(flat[:64])[0] if flat else 1.0
    f["consonant_run"], f["digit_run"] = map(float, longest_runs(flat))
    if flat:
        f["hex_only"] = float(set(flat) <= HEX)
        f["base32_only"] = float(set(flat) <= BASE32)
    f["unique_chars"] = float(len(set(flat)))
    return list(f.values())


def test_tunnel_features_equal_the_reference(scorer: DnsScorer) -> None:
    lex = scorer.lexicon
    rng = random.Random(5)
    subs = {scorer.split(name).sub for name in _names()}
    subs |= {"".join(rng.choice(string.ascii_letters + string.digits + ".-_=+/é") for _ in range(rng.randrange(0, 300)))
             for _ in range(400)}  # fmt: skip
    subs |= {"".join(rng.choice("bcdfg0123456789aeiou.-") for _ in range(rng.randrange(1, 120))) for _ in range(400)}
    subs |= {".", "..", "a", "ab", "abc", "the", "a.b", "x" * 300, "www", "WWW", "mail.eu", "-", "ü-ber.straße"}
    subs.discard("")
    assert len(subs) > 1000
    for sub in sorted(subs):
        assert lex.tunnel_features(sub) == reference_tunnel_features(lex, sub), sub
    assert lex.tunnel_features("") == [0.0] * 9 + [1.0] + [0.0] * 5
