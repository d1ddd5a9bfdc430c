"""A NameSplitter that remembers registrable domains, so a new hostname under a known one skips the PSL walk.

The inline miss path splits every new name (dns.dga judges `label.suffix`, dns.tunnel the subdomain part).
publicsuffixlist's lookup costs ~6 µs per new name on an idle core, twice that on the data path. Most new
names sit under a registrable domain already seen (`cdn1234.example.com`, `a1b2c3.api.example.com`), and
for those the answer is known without the list:

    if R = label.S was split with public suffix S, and no Public Suffix List rule (normal, wildcard or
    exception, ICANN or private) is R itself or ends with ".R", then every name under R has public
    suffix S and registrable domain R.

Proof: a rule that matches n and is longer than S is either a normal or exception rule equal to R or
ending with ".R" (then R is in the rule-suffix set below), or a wildcard `*.X` with X a suffix of n: X = S
would have made R itself public in the split that taught us R (unless `!R` exists, which puts R in the set),
and a longer X is R or ends with ".R" (R in the set again). So no rule longer than S applies, S is n's public
suffix, and the split of n is that of R with n's leftmost labels as the subdomain part.

`rule_suffixes` holds every suffix of every rule (`*.` and `!` stripped), in the list's form and in
punycode, so a rule under R blocks remembering R whichever way a name spells it.

The first name under a registrable domain does not call publicsuffixlist either (~3x the rest of a split):
if no rule is `label.tld` or ends with it (dns/psl.py's SuffixIndex.stems, built from the very rules
publicsuffixlist matches) and there is no `*.tld` or `!tld` rule, every rule that could match is the TLD
itself, so the public suffix is the TLD, listed or unknown (two set lookups: "abcxyz.com", "www.abcxyz.net");
otherwise SuffixIndex.count_public walks the labels (exactly what publicsuffixlist counts; tested in
tests/dns/test_psl.py). Only ASCII names of two or more labels, none empty, take either path; everything
else goes through NameSplitter (memoised as before). The memory of registrable domains is bounded. Equality
with NameSplitter is tested on real and generated names, names at and under every rule of the list, and
hostile ones (tests/dns_models/test_splitcache.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

from tutela.dns.names import NameParts, NameSplitter, clip
from tutela.dns.psl import SuffixIndex


def rule_suffixes(lines: Iterable[str]) -> frozenset[str]:
    """Every label suffix of every rule of a Public Suffix List text, as written and in punycode."""
    out: set[str] = set()
    for line in lines:
        rule = line.strip().split(" ", 1)[0].lower()
        if not rule or rule.startswith("//"):
            continue
        rule = rule.lstrip("!")
        while rule.startswith("*."):
            rule = rule[2:]
        forms = [rule]
        with contextlib.suppress(UnicodeError):
            forms.append(".".join(label.encode("idna").decode("ascii") for label in rule.split(".")))
        for form in forms:
            labels = form.split(".")
            for i in range(len(labels)):
                out.add(".".join(labels[i:]))
    return frozenset(out)


def bundled_rule_suffixes() -> frozenset[str]:
    """Rule suffixes of the list publicsuffixlist loads by default (its bundled file, never fetched)."""
    import publicsuffixlist

    default = Path(publicsuffixlist.__file__).with_name("public_suffix_list.dat")
    path = Path(getattr(publicsuffixlist, "PSLFILE", default))
    with path.open(encoding="utf-8") as f:
        return rule_suffixes(f)


class RegistrableSplitter(NameSplitter):
    """NameSplitter plus a bounded memory of registrable domains and, for a new one, the PSL walk of dns/psl.py
    (see the module docstring)."""

    def __init__(self, cache_size: int = 65536, max_registrables: int = 65536) -> None:
        super().__init__(cache_size)
        self._rules: frozenset[str] | None = None
        self._index: SuffixIndex | None = None
        self._deep_tlds: frozenset[str] = frozenset()
        self._known: dict[str, tuple[str, str, bool]] = {}
        self._max_known = max_registrables
        self._last: tuple[object, NameParts] = (None, _NO_PARTS)

    def __call__(self, name: str) -> NameParts:
        """The parts of a name. dns.dga and dns.tunnel ask for each new name back to back, and each caches its
        results per name itself, so a call remembers the last name only (one tuple, replaced at once: safe
        across threads) instead of going through the LRU of `split`; same parts, ~1 µs less per new name."""
        last = self._last
        if last[0] is name:
            return last[1]
        parts = self._split(name)
        self._last = (name, parts)
        return parts

    def _load(self) -> None:
        super()._load()
        self._rules = bundled_rule_suffixes()
        # the very rules NameSplitter's publicsuffixlist matches (its punycode forms included)
        index = self._index = SuffixIndex(self._all._publicsuffix)
        # TLDs with a rule `*.tld` or `!tld`: there the TLD alone is not the answer even if no rule ends with `x.tld`
        self._deep_tlds = frozenset(
            r.removeprefix("!").removeprefix("*.") for r in index.rules if r[0] in "!*" and r.count(".") <= 1
        )

    def _split(self, name: str) -> NameParts:
        n = clip(name)
        last = n.rfind(".")
        # ASCII names of 2+ labels, none empty (clipping may leave a leading dot); the rest: NameSplitter
        if last <= 0 or n[-1] == "." or ".." in n or n[0] == ".":
            # an empty label: NameSplitter's fallback (the last label as suffix), not the list's answer, so it
            # teaches nothing (".foo.ck" must not make "a.foo.ck" split under "ck": the list has "*.ck")
            return super()._split(name)
        if not n.isascii():
            return self._remember(super()._split(name))
        known = self._known
        second = n.rfind(".", 0, last)
        tail = n[second + 1 :]
        if known:
            # the registrable domain is the last 2 labels (example.com) or 3 (example.co.uk) of almost every
            # name: only those two tails are looked up (a hit is right whichever tail it is, by the proof
            # above; a name under a deeper one just takes the walk)
            hit = known.get(tail)
            if hit is None and second > 0:
                tail3 = n[n.rfind(".", 0, second) + 1 :]
                hit = known.get(tail3)
                if hit is not None:
                    tail = tail3
            if hit is not None:
                label, suffix, private = hit
                rest = n[: len(n) - len(tail) - 1] if len(n) > len(tail) else ""
                return _new_tuple(NameParts, (n, tail, label, suffix, private, rest))
        index = self._index
        if index is None:
            self._load()
            index = self._index
            assert index is not None
        tld = n[last + 1 :]
        if tail not in index.stems and tld not in self._deep_tlds:
            # no rule is `tail` or ends with it, and none is `*.tld` or `!tld`: the public suffix is the TLD
            # (listed or unknown), what count_public's walk would find after two lookups
            private = self.is_private(tld)
            label = n[second + 1 : last]
            if len(known) < self._max_known and self._rules and tail not in self._rules:
                known[tail] = (label, tld, private)
            return _new_tuple(NameParts, (n, tail, label, tld, private, n[:second] if second > 0 else ""))
        labels = n.split(".")
        publen = index.count_public(labels)
        if publen < 1:  # no public suffix (publicsuffixlist says None): NameSplitter's fallback
            return self._remember(super()._split(name))
        suffix = ".".join(labels[-publen:])
        if publen >= len(labels):  # the name is a public suffix
            return _new_tuple(NameParts, (n, n, "", suffix, False, ""))
        label = labels[-publen - 1]
        parts = (n, f"{label}.{suffix}", label, suffix, self.is_private(suffix), ".".join(labels[: -publen - 1]))
        return self._remember(_new_tuple(NameParts, parts))

    def _remember(self, parts: NameParts) -> NameParts:
        reg = parts.registrable
        known = self._known
        if parts.label and len(known) < self._max_known and reg.isascii() and self._rules and reg not in self._rules:
            known[reg] = (parts.label, parts.suffix, parts.private)
        return parts


_new_tuple = tuple.__new__  # NameParts without its Python-level __new__: one frame fewer per name
_NO_PARTS = NameParts("", "", "", "", False, "")
