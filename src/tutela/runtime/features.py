"""Text features of the fast injection tier: words, word pairs and character n-grams of words.

Pure Python and deterministic (no hashing seeds): the training script and the detector call the
same `text_features`, so what was trained is what runs. Input is the folded view of
`tutela.runtime.normalize` (lower-case, de-leeted, invisible characters gone).

`LinearScorer.score` runs in C where tutela._native.linearscore is built (the detector's hot loop: every
window of every prompt); `LinearScorer.score_python` is its reference twin, bit-identical on CPython 3.11
(tests/runtime/test_linearscore_native.py; TUTELA_PURE_PYTHON=1 forces it).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from typing import Any

from tutela._native import load as load_native

_WORDS = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_CACHE: dict[str, tuple[str, ...]] = {}
_CACHE_MAX = 100_000
_NATIVE = load_native("linearscore")  # the score in C, or None: chosen once, at import


def _word_grams(word: str) -> tuple[str, ...]:
    grams = _CACHE.get(word)
    if grams is None:
        padded = f" {word[:40]} "
        n = len(padded)
        out = ["w:" + word[:40]]
        for size in (3, 4, 5):
            if n >= size:
                out.extend(padded[i : i + size] for i in range(n - size + 1))
        grams = tuple(out)
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[word] = grams
    return grams


def text_features(text: str, max_words: int = 2000) -> set[str]:
    words = _WORDS.findall(text)[:max_words]
    grams = _CACHE.get
    feats = set(itertools.chain.from_iterable(grams(w) or _word_grams(w) for w in words))
    feats.update(f"b:{a} {b}" for a, b in itertools.pairwise(words))
    return feats


def linear_score(feats: set[str], weights: Mapping[str, float], bias: float) -> float:
    """Probability from a logistic model over binary features scaled by 1/sqrt(count)."""
    if not feats:
        return 1.0 / (1.0 + math.exp(-bias))
    z = bias + sum(map(weights.get, feats, itertools.repeat(0.0))) / math.sqrt(len(feats))
    if z < -30:
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))


class LinearScorer:
    """`linear_score(text_features(text), weights, bias)`, computed faster: the same features, the same sum.

    Each word's character n-grams are looked up in the 80,000-entry weight table once and kept as a small
    {gram: weight} dict (a bounded cache, per scorer); a text's distinct features are then the union of
    those dicts (merged in C by `dict.update`) plus its word pairs, and the score is the sum of their
    weights over the square root of their count, as in `linear_score`. Grams ("w:word", 3-5 letter
    windows) and pairs ("b:a b") cannot collide, so the union is the feature set of `text_features`.
    """

    def __init__(self, weights: Mapping[str, float], bias: float, cache_max: int = 50_000) -> None:
        self.weights = weights
        self.bias = bias
        self._words: dict[str, dict[str, float]] = {}
        self._max = cache_max
        # the C twin reads the table with the dict C API: only for a plain dict (the model's JSON object)
        self._native: Any = (
            _NATIVE.Scorer(weights, bias, cache_max) if _NATIVE is not None and type(weights) is dict else None
        )

    def _word(self, word: str) -> dict[str, float]:
        get = self.weights.get
        grams = _CACHE.get(word) or _word_grams(word)
        out = {g: get(g, 0.0) for g in grams}
        if len(self._words) >= self._max:
            self._words.clear()
        self._words[word] = out
        return out

    def score(self, text: str, max_words: int = 2000) -> float:
        if self._native is not None and max_words >= 0:
            return self._native.score(text, max_words)  # type: ignore[no-any-return]
        return self.score_python(text, max_words)

    def score_python(self, text: str, max_words: int = 2000) -> float:
        """The reference for the C `score`: the same words, features and float operations in the same order."""
        words = _WORDS.findall(text)[:max_words]
        if not words:
            return linear_score(set(), self.weights, self.bias)
        cached = self._words.get
        feats: dict[str, float] = {}
        update = feats.update
        for w in words:
            update(cached(w) or self._word(w))
        pairs = [f"b:{a} {b}" for a, b in itertools.pairwise(words)]
        update(zip(pairs, map(self.weights.get, pairs, itertools.repeat(0.0)), strict=False))
        z = self.bias + sum(feats.values()) / math.sqrt(len(feats))
        if z < -30:
            return 0.0
        return 1.0 / (1.0 + math.exp(-z))
