"""Generic synthetic DGA names: training positives that belong to no real family (no torch, no tutela import).

Leave-family-out results showed the character CNN learns each family's shape rather than "generated":
a family left out of training is mostly missed. These generators teach the concept instead, from first
principles rather than from any family's code or output: uniform random letters, letters and digits,
hexadecimal, pronounceable consonant-vowel syllables, and concatenations of 2-4 English words (from the
package's own word list, wordfreq-derived: never from a DGA family's word list), some with a hyphen, a digit
tail or a few random letters. The public suffix of each name is drawn from the benign training names, so the
suffix carries no signal. Deterministic for a seed.

    from dga_synth import generate
    names = generate(words, benign_texts, n_per_kind=5000, seed=7)   # {kind: ["^label.suffix$", ...]}
"""

from __future__ import annotations

import random
import string

KINDS = ("alpha", "alnum", "hex", "syllables", "words", "words_noise")
VOWELS = "aeiou"
CONSONANTS = "bcdfghjklmnpqrstvwxz"


def _suffixes(benign_texts: list[str]) -> list[str]:
    out = []
    for t in benign_texts:
        body = t.strip("^$")
        _label, _, suffix = body.partition(".")
        if suffix:
            out.append(suffix)
    return out or ["com"]


def _label(kind: str, rng: random.Random, words: list[str]) -> str:
    if kind == "alpha":
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(6, 24)))
    if kind == "alnum":
        return "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(rng.randint(6, 28)))
    if kind == "hex":
        return "".join(rng.choice("0123456789abcdef") for _ in range(rng.randint(8, 32)))
    if kind == "syllables":
        out = []
        for _ in range(rng.randint(3, 7)):
            syl = rng.choice(CONSONANTS) + rng.choice(VOWELS)
            if rng.random() < 0.3:
                syl += rng.choice(CONSONANTS)
            out.append(syl)
        return "".join(out)
    if kind in ("words", "words_noise"):
        parts = [rng.choice(words) for _ in range(rng.randint(2, 4))]
        sep = "-" if rng.random() < 0.15 else ""
        label = sep.join(parts)
        if kind == "words_noise":
            noise = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 5)))
            label = noise + label if rng.random() < 0.5 else label + noise
        elif rng.random() < 0.1:
            label += str(rng.randint(0, 99))
        return label[:63]
    raise ValueError(kind)


def generate(words: list[str], benign_texts: list[str], n_per_kind: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    suffixes = _suffixes(benign_texts)
    long_words = [w for w in words if len(w) >= 4]
    benign = set(benign_texts)
    out: dict[str, list[str]] = {}
    for kind in KINDS:
        names: set[str] = set()
        tries = 0
        while len(names) < n_per_kind and tries < n_per_kind * 20:
            tries += 1
            label = _label(kind, rng, long_words)
            text = f"^{label}.{rng.choice(suffixes)}$"
            if text not in benign:
                names.add(text)
        out[kind] = sorted(names)
        rng.shuffle(out[kind])
    return out


def load_words(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [w.strip() for w in f if w.strip() and not w.startswith("#")]
