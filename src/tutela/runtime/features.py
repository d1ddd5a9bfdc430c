"""Text features of the fast injection tier: words, word pairs and character n-grams of words.

Pure Python and deterministic (no hashing seeds): the training script and the detector call the
same `text_features`, so what was trained is what runs. Input is the folded view of
`tutela.runtime.normalize` (lower-case, de-leeted, invisible characters gone).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping

_WORDS = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_CACHE: dict[str, tuple[str, ...]] = {}
_CACHE_MAX = 100_000


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
