"""Generic synthetic DGA names: training positives that belong to no real family (no torch, no tutela import).

Leave-family-out results showed the character CNN learns each family's shape rather than "generated":
a family left out of training is mostly missed. These generators teach the concept instead, from first
principles rather than from any family's code or output: uniform random letters, letters and digits,
hexadecimal, pronounceable consonant-vowel syllables, and concatenations of 2-4 English words (from the
package's own word list, wordfreq-derived: never from a DGA family's word list), some with a hyphen, a digit
tail or a few random letters. v4 adds three kinds (EXTRA_KINDS): letters drawn with English letter
frequencies ("freq"), pronounceable gibberish from a character bigram chain fitted on the same English word
list ("markov"), and random letters with one to three digits mixed in ("sparse_digits"); lengths 5-20.
The public suffix of each name is drawn from the benign training names, so the suffix carries no signal.
Deterministic for a seed.

    from dga_synth import generate
    names = generate(words, benign_texts, n_per_kind=5000, seed=7)   # {kind: ["^label.suffix$", ...]}
"""

from __future__ import annotations

import random
import string

KINDS = ("alpha", "alnum", "hex", "syllables", "words", "words_noise")
EXTRA_KINDS = ("freq", "markov", "sparse_digits")
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


class _English:
    """Letter frequencies and a character bigram chain fitted on an English word list (no family data)."""

    def __init__(self, words: list[str]) -> None:
        letters: dict[str, int] = {}
        nxt: dict[str, dict[str, int]] = {}
        for w in words:
            w = "".join(c for c in w.lower() if c in string.ascii_lowercase)
            for a, b in zip("^" + w, w + "$", strict=True):
                nxt.setdefault(a, {})[b] = nxt.setdefault(a, {}).get(b, 0) + 1
            for c in w:
                letters[c] = letters.get(c, 0) + 1
        self.letters = sorted(letters) or list(string.ascii_lowercase)
        self.letter_w = [letters.get(c, 1) for c in self.letters]
        self.nxt = {a: (sorted(d), [d[k] for k in sorted(d)]) for a, d in nxt.items()}

    def freq(self, rng: random.Random, n: int) -> str:
        return "".join(rng.choices(self.letters, self.letter_w, k=n))

    def markov(self, rng: random.Random, n: int) -> str:
        out, prev = [], "^"
        while len(out) < n:
            keys, w = self.nxt.get(prev, (self.letters, self.letter_w))
            c = rng.choices(keys, w)[0]
            if c == "$":  # a word ended: start a new one, keep going to the drawn length
                prev = "^"
                continue
            out.append(c)
            prev = c
        return "".join(out)


def _label(kind: str, rng: random.Random, words: list[str], eng: _English | None = None) -> str:
    if kind in EXTRA_KINDS:
        assert eng is not None
        n = rng.randint(5, 20)
        if kind == "freq":
            return eng.freq(rng, n)
        if kind == "markov":
            return eng.markov(rng, n)
        chars = list("".join(rng.choice(string.ascii_lowercase) for _ in range(n)))
        for _ in range(rng.randint(1, 3)):
            chars[rng.randrange(len(chars))] = rng.choice(string.digits)
        return "".join(chars)
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


def generate(
    words: list[str], benign_texts: list[str], n_per_kind: int, seed: int, kinds: tuple[str, ...] = KINDS
) -> dict[str, list[str]]:
    rng = random.Random(seed)
    eng = _English(words) if set(kinds) & set(EXTRA_KINDS) else None
    suffixes = _suffixes(benign_texts)
    long_words = [w for w in words if len(w) >= 4]
    benign = set(benign_texts)
    out: dict[str, list[str]] = {}
    for kind in kinds:
        names: set[str] = set()
        tries = 0
        while len(names) < n_per_kind and tries < n_per_kind * 20:
            tries += 1
            label = _label(kind, rng, long_words, eng)
            text = f"^{label}.{rng.choice(suffixes)}$"
            if text not in benign:
                names.add(text)
        out[kind] = sorted(names)
        rng.shuffle(out[kind])
    return out


def load_words(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [w.strip() for w in f if w.strip() and not w.startswith("#")]
