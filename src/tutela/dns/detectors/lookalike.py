"""Lookalikes of protected brands: IDN homoglyphs, typo permutations, TLD swaps, combosquats.

Everything is precomputed from the configured brands on first use: a dict from every typo
permutation of each brand's label (omission, repetition, transposition, keyboard replacement and
insertion, ASCII homoglyphs, bit flips, hyphenation, vowel swaps) to the brand. A query then
costs one registrable-domain lookup, one skeleton (punycode decoded, confusables folded to
ASCII) and a few dict lookups: O(1) in the number of brands and permutations.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import ClassVar

from pydantic import Field

from tutela.core.detector import DetectorConfig, ScanContext
from tutela.core.findings import Finding, Severity
from tutela.core.models import ModelCache
from tutela.dns.psl import Registrable
from tutela.dns.subjects import DnsQuery

_KEYBOARD = {
    "q": "wa", "w": "qeas", "e": "wrsd", "r": "etdf", "t": "ryfg", "y": "tugh", "u": "yihj", "i": "uojk",
    "o": "ipkl", "p": "ol", "a": "qwsz", "s": "awedxz", "d": "serfcx", "f": "drtgvc", "g": "ftyhbv",
    "h": "gyujnb", "j": "huikmn", "k": "jiolm", "l": "kop", "z": "asx", "x": "zsdc", "c": "xdfv",
    "v": "cfgb", "b": "vghn", "n": "bhjm", "m": "njk", "1": "2q", "2": "13wq", "3": "24ew", "4": "35re",
    "5": "46tr", "6": "57yt", "7": "68uy", "8": "79iu", "9": "80oi", "0": "9po",
}  # fmt: skip
_ASCII_GLYPHS = {
    "o": ("0",), "0": ("o",), "l": ("1", "i"), "i": ("1", "l"), "1": ("l", "i"), "e": ("3",), "a": ("4",),
    "s": ("5",), "b": ("6",), "g": ("9", "q"), "q": ("g",), "m": ("rn", "nn"), "w": ("vv",), "d": ("cl",),
    "u": ("v",), "v": ("u",), "z": ("2",), "t": ("7",),
}  # fmt: skip
_MULTI_GLYPHS = {"rn": "m", "vv": "w", "cl": "d", "nn": "m"}
# Unicode characters that render like ASCII letters and do not decompose under NFKD.
_CONFUSABLES = str.maketrans({
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s",
    "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "к": "k", "м": "m", "т": "t", "в": "b", "н": "h",
    "ɡ": "g", "ο": "o", "α": "a", "ν": "v", "ι": "i", "κ": "k", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    "ε": "e", "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ŀ": "l", "ɩ": "i", "ɑ": "a", "ℓ": "l",
})  # fmt: skip
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-"
_VOWELS = "aeiou"


def skeleton(label: str) -> str:
    """An ASCII skeleton of a label: punycode decoded, confusables and accents folded."""
    if label.startswith("xn--"):
        try:
            label = label.encode("ascii").decode("idna")
        except UnicodeError:
            return label
    if label.isascii():
        return label
    folded = unicodedata.normalize("NFKD", label.translate(_CONFUSABLES))
    return "".join(c for c in folded if not unicodedata.combining(c)).translate(_CONFUSABLES).lower()


def permutations(label: str) -> set[str]:
    """Typo permutations of one label (dnstwist's fuzzers, minus those needing a dictionary)."""
    out: set[str] = set()
    n = len(label)
    for i in range(n):
        out.add(label[:i] + label[i + 1 :])  # omission
        out.add(label[:i] + label[i] + label[i:])  # repetition
        if i < n - 1:
            out.add(label[:i] + label[i + 1] + label[i] + label[i + 2 :])  # transposition
            out.add(label[: i + 1] + "-" + label[i + 1 :])  # hyphenation
        c = label[i]
        for k in _KEYBOARD.get(c, ""):
            out.add(label[:i] + k + label[i + 1 :])  # replacement
            out.add(label[:i] + k + label[i:])  # insertion before
            out.add(label[: i + 1] + k + label[i + 1 :])  # insertion after
        for g in _ASCII_GLYPHS.get(c, ()):
            out.add(label[:i] + g + label[i + 1 :])
        if c in _VOWELS:
            for v in _VOWELS:
                out.add(label[:i] + v + label[i + 1 :])
        for bit in range(8):
            flipped = chr(ord(c) ^ (1 << bit)).lower()
            if flipped in _ALPHABET:
                out.add(label[:i] + flipped + label[i + 1 :])
    for multi, single in _MULTI_GLYPHS.items():
        if single in label:
            out.add(label.replace(single, multi, 1))
    out.discard(label)
    return {p for p in out if p and not p.startswith("-") and not p.endswith("-")}


class LookalikeConfig(DetectorConfig):
    brands: tuple[str, ...] = ()  # registrable domains to protect: "paypal.com", "example.org"
    min_label: int = Field(4, ge=1)  # brands with shorter labels get no typo permutations
    homoglyph_severity: Severity = Severity.HIGH
    typo_severity: Severity = Severity.MEDIUM
    combo_severity: Severity = Severity.LOW


class LookalikeDetector:
    id: ClassVar[str] = "dns.lookalike"
    version: ClassVar[str] = "1"
    pillar: ClassVar[str] = "dns"
    side: ClassVar[str] = "request"
    cacheable: ClassVar[bool] = True
    categories: ClassVar[tuple[str, ...]] = ("lookalike",)
    description: ClassVar[str] = "homoglyph, typo, TLD-swap and combo lookalikes of configured brand domains"
    Config: ClassVar[type[DetectorConfig]] = LookalikeConfig

    def __init__(self, config: LookalikeConfig, models: ModelCache) -> None:
        self.config = config
        self._psl = Registrable()
        self._tables: tuple[frozenset[str], dict[str, str], dict[str, str]] | None = None

    def _build(self) -> tuple[frozenset[str], dict[str, str], dict[str, str]]:
        domains = frozenset(b.strip().rstrip(".").lower() for b in self.config.brands if b.strip())
        labels: dict[str, str] = {}  # brand label -> brand domain
        typos: dict[str, str] = {}
        for domain in sorted(domains):
            label = self._label(domain)
            labels.setdefault(label, domain)
            if len(label) >= self.config.min_label:
                for p in permutations(label):
                    typos.setdefault(p, domain)
        for label in labels:
            typos.pop(label, None)
        self._tables = (domains, labels, typos)
        return self._tables

    def warmup(self) -> None:
        self._psl("example.com")
        if self._tables is None and self.config.brands:
            self._build()

    def _label(self, domain: str) -> str:
        reg = self._psl(domain)
        return reg.split(".", 1)[0]

    def detect(self, subject: DnsQuery, ctx: ScanContext) -> Iterator[Finding]:
        if not self.config.brands:
            return
        domains, labels, typos = self._tables or self._build()
        name = subject.name
        reg = self._psl(name)
        if reg in domains:
            return
        label = reg.split(".", 1)[0]
        skel = skeleton(label)
        if skel != label and skel in labels:
            yield self._finding(name, "homoglyph", labels[skel], self.config.homoglyph_severity, 0.95, label)
        elif label in labels:
            yield self._finding(name, "tld-swap", labels[label], self.config.typo_severity, 0.7, label)
        elif skel in typos:
            yield self._finding(name, "typo", typos[skel], self.config.typo_severity, 0.8, label)
        else:
            tokens = skel.split("-")
            if len(tokens) > 1:
                for tok in tokens:
                    if tok in labels:
                        yield self._finding(name, "combo", labels[tok], self.config.combo_severity, 0.6, label)
                        return
            sub = name[: -len(reg)].rstrip(".")
            if sub:
                for part in sub.split("."):
                    if part in labels:
                        yield self._finding(
                            name, "brand-subdomain", labels[part], self.config.combo_severity, 0.6, part
                        )
                        return

    def _finding(self, name: str, rule: str, brand: str, severity: Severity, confidence: float, label: str) -> Finding:
        return Finding.of(
            match=name,
            detector=self.id,
            detector_version=self.version,
            rule=rule,
            category="lookalike",
            severity=severity,
            confidence=confidence,
            message=f"{name} looks like protected brand {brand} ({rule})",
            location=name,
            evidence={"brand": brand, "label": label, "skeleton": skeleton(label)},
        )
