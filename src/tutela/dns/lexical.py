"""Hand-made lexical features of DNS names (no numpy needed): C where the extension is built, else pure Python.

Two feature vectors:
- `dga_features(label, suffix, private)`: the registrable domain's own label ("example" for
  www.example.co.uk), what a DGA chooses. CDN and cloud hostnames with hashes in their *subdomains*
  are judged by their provider's label, never by the hash.
- `tunnel_features(sub)`: the part of a name left of the registrable domain, where tunnels carry data.

The benign character model (trigram log-probabilities learnt from popular domains), the English word
list and the suffix priors live in a `Lexicon`, built from the shipped lexicon JSON. Nothing here reads
files: the lexicon arrives as a mapping loaded (and sha256-checked) by the model cache.

`tunnel_features` and `dga_features` of ASCII text run in C where the extension built
(tutela._native.dnsfeatures: the trigram and bigram models as dense tables over the lexicon's alphabet, the
word list as a trie, built on first use); `tunnel_features_python` and `dga_features_python` are their
reference twins (bit-identical, tests/dns_models/test_native.py), taken for non-ASCII text, where the
extension is missing, or everywhere with TUTELA_PURE_PYTHON=1.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from itertools import compress, repeat
from typing import Any

from tutela._native import load as load_native

VOWELS = frozenset("aeiou")
DIGITS = frozenset("0123456789")
LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")
HEX = frozenset("0123456789abcdef")
BASE32 = frozenset("abcdefghijklmnopqrstuvwxyz234567")
ALNUM = LETTERS | DIGITS
MIN_WORD = 3
MAX_LABEL = 253  # hostile input: names are bounded before any feature is computed

DGA_FEATURES: tuple[str, ...] = (
    "length",
    "entropy",
    "vowel_ratio",
    "digit_ratio",
    "hyphens",
    "consonant_run",
    "digit_run",
    "unique_ratio",
    "trigram_mean",
    "trigram_min",
    "trigram_unseen",
    "bigram_mean",
    "word_coverage",
    "words",
    "longest_word",
    "fully_words",
    "digit_letter_switches",
    "hex_only",
    "suffix_labels",
    "suffix_private",
    "suffix_logprior",
    "first_digit",
)

TUNNEL_FEATURES: tuple[str, ...] = (
    "sub_length",
    "sub_labels",
    "max_label",
    "entropy",
    "digit_ratio",
    "symbol_ratio",
    "vowel_ratio",
    "trigram_mean",
    "trigram_unseen",
    "word_coverage",
    "digit_run",
    "consonant_run",
    "hex_only",
    "base32_only",
    "unique_chars",
)


_CONSONANT_RUN = re.compile(r"[b-df-hj-np-tv-z]+")
_DIGIT_RUN = re.compile(r"[0-9]+")
_SWITCH = re.compile(r"(?=[a-z][0-9]|[0-9][a-z])")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_LOG2 = math.log2
_NATIVE = load_native("dnsfeatures")  # the C twins, or None: chosen once, at import


def features_path() -> str:
    """Which code computes the lexical features of ASCII names in this process: "C" or "Python"."""
    return "C" if _NATIVE is not None else "Python"


_TERMS: dict[int, list[float]] = {}  # n -> [c/n * log2(c/n) for c in 0..n], names are at most 253 characters


def _terms(n: int) -> list[float]:
    terms = _TERMS.get(n)
    if terms is None:
        terms = [0.0] + [c / n * _LOG2(c / n) for c in range(1, n + 1)]
        if n <= MAX_LABEL + 3:
            _TERMS[n] = terms
    return terms


def entropy(text: str) -> float:
    """Shannon entropy in bits per character.

    The per-count terms come from a table (the same expression, computed once per length) and are summed in
    order of first occurrence, as summing over a Counter did: the result is bit-for-bit the same."""
    n = len(text)
    if n == 0:
        return 0.0
    return max(0.0, -sum(map(_terms(n).__getitem__, map(text.count, dict.fromkeys(text)))))


def runs(text: str) -> tuple[int, int, int]:
    """(longest consonant run, longest digit run, digit/letter switches), with C-speed regexes."""
    cons, digs = longest_runs(text)
    alnum = text if text.isalnum() and text.isascii() else _NOT_ALNUM.sub("", text)
    return cons, digs, len(_SWITCH.findall(alnum))


def longest_runs(text: str) -> tuple[int, int]:
    """(longest consonant run, longest digit run)."""
    cons = max(map(len, _CONSONANT_RUN.findall(text)), default=0)
    digs = max(map(len, _DIGIT_RUN.findall(text)), default=0)
    return cons, digs


_DROP_LETTERS = str.maketrans("", "", "abcdefghijklmnopqrstuvwxyz")
_DROP_VOWELS = str.maketrans("", "", "aeiou")
_DROP_DIGITS = str.maketrans("", "", "0123456789")


def _counts(text: str) -> tuple[int, int, int]:
    """(letters, vowels, digits) of ASCII-lower text: what str.translate deletes, one C pass each."""
    n = len(text)
    return (
        n - len(text.translate(_DROP_LETTERS)),
        n - len(text.translate(_DROP_VOWELS)),
        n - len(text.translate(_DROP_DIGITS)),
    )


class Lexicon:
    """The benign character model, the word list and suffix priors; built once from JSON data."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.version = str(data.get("version", ""))
        self.trigram: dict[str, float] = dict(data["trigram"])
        self.trigram_ctx_unseen: dict[str, float] = dict(data["trigram_ctx_unseen"])
        self.trigram_unseen = float(data["trigram_unseen"])
        self.bigram: dict[str, float] = dict(data["bigram"])
        self.bigram_unseen = float(data["bigram_unseen"])
        self.suffix_logprior: dict[str, float] = dict(data["suffix_logprior"])
        self.suffix_unseen = float(data["suffix_unseen"])
        self.words = frozenset(str(w) for w in data.get("words", ()) if len(w) >= MIN_WORD)
        self.max_word = max((len(w) for w in self.words), default=MIN_WORD)
        prefixes: set[str] = set()
        for w in self.words:
            for i in range(MIN_WORD, len(w) + 1):
                prefixes.add(w[:i])
        self.prefixes = frozenset(prefixes)
        self.starts = frozenset(w[:MIN_WORD] for w in self.words)  # where a word can begin
        # The lookups of the miss path go by character triples, as zip(text, text[1:], text[2:]) hands them out:
        # no 3-character string is built, hashed and compared per position (zip reuses its tuple, single characters
        # are cached objects with cached hashes). Same keys, same values: a view of `trigram` and `starts`.
        self._trigram3: dict[tuple[str, ...], float] = {tuple(g): lp for g, lp in self.trigram.items()}
        self._starts3 = frozenset(tuple(w) for w in self.starts)
        # unseen trigram -> its back-off log-probability, filled as trigrams are met (a memo of a pure function,
        # bounded): names with unseen trigrams then cost one C-level map, not a Python loop. Only the unseen ones,
        # so a seen trigram's own value comes back as get()'s default
        self._backoffs: dict[tuple[str, ...], float] = {}
        self._backoffs_cap = 50_000  # a few MB at most, whatever the traffic
        self._native: Any = None  # the C tables (~0.4 MB), built on first use; False where unavailable

    def native_tables(self) -> Any:
        """The lexicon laid out for tutela._native.dnsfeatures (built once), or None without the extension or for
        a lexicon the tables cannot hold exactly (a value that is not a float, an alphabet over 62 characters):
        that one stays on the Python path."""
        if self._native is None:
            self._native = False
            if _NATIVE is not None:
                trigrams = (self.trigram, self.trigram_ctx_unseen, self.trigram_unseen)
                try:
                    self._native = _NATIVE.Tables(*trigrams, self.bigram, self.bigram_unseen, self.words)
                except (TypeError, ValueError):
                    self._native = False
        return self._native or None

    # -- character model -------------------------------------------------------------------------
    def trigram_scores(self, text: str) -> tuple[float, float, float]:
        """(mean, min log-probability, fraction unseen) of the text's trigrams, with ^ and $ padding."""
        lps, unseen = self._trigram_lps(text)
        n = len(lps)
        if n <= 0:
            return 0.0, 0.0, 0.0
        # sum() adds left to right from 0 as the loop did, and min() with 0.0 is the running minimum from 0.0
        return sum(lps) / n, min(0.0, *lps), unseen / n

    def trigram_mean_unseen(self, text: str) -> tuple[float, float]:
        """(mean log-probability, fraction unseen) of trigram_scores, without the minimum."""
        lps, unseen = self._trigram_lps(text)
        n = len(lps)
        if n <= 0:
            return 0.0, 0.0
        return sum(lps) / n, unseen / n

    def _trigram_lps(self, text: str) -> tuple[list[float], int]:
        """Log-probabilities of the padded text's trigrams in order (an unseen trigram takes its two-character
        context's back-off value) and how many were unseen."""
        padded = f"^{text}$"
        lps = list(map(self._trigram3.get, zip(padded, padded[1:], padded[2:], strict=False)))
        unseen = lps.count(None)
        if unseen:
            lps = list(map(self._backoffs.get, zip(padded, padded[1:], padded[2:], strict=False), lps))
            if None in lps:
                grams = zip(padded, padded[1:], padded[2:], strict=False)
                lps = [self._backoff(g) if lp is None else lp for g, lp in zip(grams, lps, strict=True)]
        return lps, unseen  # type: ignore[return-value]

    def _backoff(self, gram: tuple[str, ...]) -> float:
        lp = self.trigram_ctx_unseen.get(gram[0] + gram[1], self.trigram_unseen)
        if len(self._backoffs) < self._backoffs_cap:
            self._backoffs[gram] = lp
        return lp

    def bigram_mean(self, text: str) -> float:
        padded = f"^{text}$"
        bi = self.bigram
        default = self.bigram_unseen
        n = len(padded) - 1
        grams = map(str.__add__, padded, padded[1:])
        return sum(map(bi.get, grams, repeat(default, n))) / n

    # -- dictionary -------------------------------------------------------------------------------
    def segment(self, text: str) -> tuple[float, int, int]:
        """Best cover of `text` by dictionary words (length >= 3), by dynamic programming.

        Returns (fraction of characters covered, number of words used, longest word). Words are found
        by walking the prefix set from each position, so the cost is linear in practice. The best cover of
        text[:i] is ranked by (characters covered, fewer words), packed into one int so that ranking is one
        comparison: key = covered * (n + 1) + (n - words), with 0 <= n - words <= n.
        """
        n = len(text)
        if n == 0:
            return 0.0, 0, 0
        if not self._any_start(text):
            return 0.0, 0, 0  # no word begins anywhere: nothing is covered (what the loop below finds too)
        prefixes = self.prefixes
        words = self.words
        span = n + 1
        key = [n] * (n + 1)  # covered 0, words 0
        longest = [0] * (n + 1)
        for i in range(n):
            cur = key[i]
            if cur > key[i + 1]:
                key[i + 1] = cur
                longest[i + 1] = longest[i]
            j = i + MIN_WORD
            while j <= n:
                piece = text[i:j]
                if piece not in prefixes:
                    break
                if piece in words:
                    cand = cur + (j - i) * span - 1
                    if cand > key[j]:
                        key[j] = cand
                        longest[j] = max(longest[i], j - i)
                j += 1
        covered, rest = divmod(key[n], span)
        return covered / n, n - rest, longest[n]

    def _any_start(self, text: str) -> bool:
        """Whether some dictionary word could begin in `text` (one of its 3-character pieces starts a word)."""
        return not self._starts3.isdisjoint(zip(text, text[1:], text[2:], strict=False))

    def coverage(self, text: str) -> float:
        """segment(text)[0] alone: the largest fraction of characters covered by non-overlapping words (the
        (covered, fewer words) ranking of segment() maximises coverage first, so the value is the same).

        The dynamic programme visits only positions where a word can begin. best[j] is the most characters
        covered by words ending exactly at j; `run`, the most covered anywhere up to the current start (what
        segment() carries forward position by position), is the maximum of best[] up to it. Integers
        throughout, so the value is the same."""
        n = len(text)
        starts = map(self._starts3.__contains__, zip(text, text[1:], text[2:], strict=False))
        at = list(compress(range(n), starts))
        if not at:
            return 0.0
        prefixes = self.prefixes
        words = self.words
        best = [0] * (n + 1)
        run = 0
        done = 0  # best[:done] is folded into run
        for i in at:
            top = max(best[done : i + 1])
            if top > run:
                run = top
            done = i + 1
            j = i + MIN_WORD
            while j <= n:
                piece = text[i:j]
                if piece not in prefixes:
                    break
                if piece in words and run + j - i > best[j]:
                    best[j] = run + j - i
                j += 1
        return max(best) / n

    # -- feature vectors ---------------------------------------------------------------------------
    def dga_features(self, label: str, suffix: str, private: bool) -> list[float]:
        """The DGA feature vector: in C for an ASCII label where the extension is built, else
        `dga_features_python` (the same floats, bit for bit). The suffix's three values are computed here."""
        tables = self._native if self._native is not None else self.native_tables()
        if tables:
            x: list[float] | None = tables.dga_features(
                label,
                float(suffix.count(".") + 1),
                1.0 if private else 0.0,
                self.suffix_logprior.get(suffix, self.suffix_unseen),
            )
            if x is not None:
                return x
        return self.dga_features_python(label, suffix, private)

    def dga_features_python(self, label: str, suffix: str, private: bool) -> list[float]:
        label = label[:MAX_LABEL]
        n = len(label) or 1
        letters, vowels, digits = _counts(label)
        cons_run, digit_run, switches = runs(label)
        tri_mean, tri_min, tri_unseen = self.trigram_scores(label)
        coverage, nwords, longest = self.segment(label.replace("-", ""))
        return [
            float(len(label)),
            entropy(label),
            vowels / letters if letters else 0.0,
            digits / n,
            float(label.count("-")),
            float(cons_run),
            float(digit_run),
            len(set(label)) / n,
            tri_mean,
            tri_min,
            tri_unseen,
            self.bigram_mean(label),
            coverage,
            float(nwords),
            float(longest),
            1.0 if coverage >= 0.999 else 0.0,
            float(switches),
            1.0 if label and all(ch in HEX for ch in label) else 0.0,
            float(suffix.count(".") + 1),
            1.0 if private else 0.0,
            self.suffix_logprior.get(suffix, self.suffix_unseen),
            1.0 if label[:1] in DIGITS else 0.0,
        ]

    def tunnel_features(self, sub: str) -> list[float]:
        """Features of the subdomain part (labels left of the registrable domain, dots kept): in C for ASCII
        text where the extension is built, else `tunnel_features_python` (the same floats, bit for bit)."""
        tables = self._native if self._native is not None else self.native_tables()
        if tables:
            x: list[float] | None = tables.tunnel_features(sub)
            if x is not None:
                return x
        return self.tunnel_features_python(sub)

    def tunnel_features_python(self, sub: str) -> list[float]:
        """Features of the subdomain part (labels left of the registrable domain, dots kept).

        ASCII text (every name the splitter gives: IDNs arrive as punycode) takes `_ascii_classes`: one bytes
        translate to character classes, counted and scanned for runs in C, instead of three str translates
        (a str translate that deletes falls back to a per-character dict lookup) and two regex scans. Exact: the
        same integers and float operations in the same order as the general path (test_fast_paths.py)."""
        sub = sub[:MAX_LABEL]
        if not sub:
            return _NO_SUB.copy()
        flat = sub.replace(".", "")
        size = len(flat)
        n = size or 1
        if flat.isascii():
            letters, vowels, digits, hyphens, cons_run, digit_run = _ascii_classes(flat)
        else:
            letters = size - len(flat.translate(_DROP_LETTERS))
            vowels = size - len(flat.translate(_DROP_VOWELS))
            digits = size - len(flat.translate(_DROP_DIGITS))
            hyphens = flat.count("-")
            cons_run, digit_run = longest_runs(flat)
        # distinct characters in order of first occurrence: entropy() sums in that order (bit-identical)
        uniq = dict.fromkeys(flat)
        if flat:
            head = flat[:64]
            lps, unseen = self._trigram_lps(head)
            tri_mean, tri_unseen = sum(lps) / len(lps), unseen / len(lps)
            coverage = self.coverage(head)
            ent = max(0.0, -sum(map(_terms(size).__getitem__, map(flat.count, uniq))))
            chars = uniq.keys()
            hex_only = 1.0 if chars <= HEX else 0.0
            b32_only = 1.0 if chars <= BASE32 else 0.0
        else:
            tri_mean, tri_unseen, coverage, ent, hex_only, b32_only = 0.0, 0.0, 1.0, 0.0, 0.0, 0.0
        return [
            float(len(sub)),
            float(sub.count(".") + 1),
            float(max(map(len, sub.split(".")))),
            ent,
            digits / n,
            (size - letters - digits - hyphens) / n,
            vowels / letters if letters else 0.0,
            tri_mean,
            tri_unseen,
            coverage,
            float(digit_run),
            float(cons_run),
            hex_only,
            b32_only,
            float(len(uniq)),
        ]


def _class_table() -> tuple[bytes, bytes, bytes]:
    """Byte tables: ASCII -> class (v vowel, c consonant, d digit, - hyphen, o other), and class -> itself for
    consonants (digits) with space for anything else, so runs come out of bytes.split()."""
    classes = bytearray(b"o" * 256)
    for ch in "abcdefghijklmnopqrstuvwxyz":
        classes[ord(ch)] = ord("v") if ch in VOWELS else ord("c")
    for ch in "0123456789":
        classes[ord(ch)] = ord("d")
    classes[ord("-")] = ord("-")
    keep_c = bytearray(b" " * 256)
    keep_c[ord("c")] = ord("c")
    keep_d = bytearray(b" " * 256)
    keep_d[ord("d")] = ord("d")
    return bytes(classes), bytes(keep_c), bytes(keep_d)


_CLASSES, _KEEP_CONSONANTS, _KEEP_DIGITS = _class_table()


def _ascii_classes(text: str) -> tuple[int, int, int, int, int, int]:
    """(letters, vowels, digits, hyphens, longest consonant run, longest digit run) of ASCII text, as _counts(),
    str.count("-") and longest_runs() give them (lower-case letters only, like their regexes)."""
    classes = text.encode("ascii").translate(_CLASSES)
    cons = classes.count(b"c")
    vowels = classes.count(b"v")
    digits = classes.count(b"d")
    cons_run = max(map(len, classes.translate(_KEEP_CONSONANTS).split())) if cons else 0
    digit_run = max(map(len, classes.translate(_KEEP_DIGITS).split())) if digits else 0
    return cons + vowels, vowels, digits, classes.count(b"-"), cons_run, digit_run


# tunnel features of an empty subdomain part (what the general code gives for "")
_NO_SUB = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def explain_dga(features: Sequence[float]) -> str:
    """A one-line human explanation of a DGA feature vector ("entropy 3.9, no dictionary words, ...")."""
    f = dict(zip(DGA_FEATURES, features, strict=True))
    parts = [f"length {int(f['length'])}", f"entropy {f['entropy']:.1f}"]
    if f["words"] == 0:
        parts.append("no dictionary words")
    else:
        w = int(f["words"])
        parts.append(f"{w} dictionary word{'s' if w > 1 else ''} covering {f['word_coverage']:.0%}")
    if f["consonant_run"] >= 4:
        parts.append(f"consonant run {int(f['consonant_run'])}")
    if f["digit_ratio"] > 0:
        parts.append(f"digits {f['digit_ratio']:.0%}")
    parts.append(f"{f['trigram_unseen']:.0%} trigrams unseen in popular domains")
    if f["suffix_logprior"] < -9:
        parts.append("rare suffix")
    return ", ".join(parts)


def explain_tunnel(features: Sequence[float]) -> str:
    f = dict(zip(TUNNEL_FEATURES, features, strict=True))
    parts = [
        f"subdomain {int(f['sub_length'])} chars in {int(f['sub_labels'])} label{'s' if f['sub_labels'] > 1 else ''}",
        f"longest label {int(f['max_label'])}",
        f"entropy {f['entropy']:.1f}",
    ]
    if f["symbol_ratio"] > 0:
        parts.append(f"non-hostname characters {f['symbol_ratio']:.0%}")
    if f["word_coverage"] < 0.3:
        parts.append("few dictionary words")
    return ", ".join(parts)
