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
punycode, so a rule under R blocks remembering R whichever way a name spells it. Only ASCII names without
empty labels take the shortcut; everything else, and every first name under a registrable domain, goes
through NameSplitter (memoised as before). The memory of registrable domains is bounded. Equality with
NameSplitter on every name is tested (tests/dns_models/test_splitcache.py). Not the PSL module (dns/psl.py,
owned elsewhere): a cache around the models' splitter, in the models' code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

from tutela.dns.names import MAX_NAME, NameParts, NameSplitter


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
    """NameSplitter plus a bounded memory of registrable domains (see the module docstring)."""

    def __init__(self, cache_size: int = 65536, max_registrables: int = 65536) -> None:
        super().__init__(cache_size)
        self._rules: frozenset[str] | None = None
        self._known: dict[str, tuple[str, str, bool]] = {}
        self._max_known = max_registrables

    def _load(self) -> None:
        super()._load()
        self._rules = bundled_rule_suffixes()

    def _split(self, name: str) -> NameParts:
        known = self._known
        if known:
            n = name.strip().rstrip(".").lower()[:MAX_NAME]
            if n.isascii() and ".." not in n and not n.startswith("."):
                # the registrable domain is the last 2 labels (example.com) or 3 (example.co.uk) of almost every
                # name: only those two tails are looked up (a hit is right whichever tail it is, by the proof
                # above; a name under a deeper one just takes the full split)
                last = n.rfind(".")
                if last > 0:
                    second = n.rfind(".", 0, last)
                    tail = n[second + 1 :]
                    hit = known.get(tail)
                    if hit is None and second > 0:
                        tail = n[n.rfind(".", 0, second) + 1 :]
                        hit = known.get(tail)
                    if hit is not None:
                        label, suffix, private = hit
                        rest = n[: len(n) - len(tail) - 1] if len(n) > len(tail) else ""
                        return NameParts(n, tail, label, suffix, private, rest)
        parts = super()._split(name)
        reg = parts.registrable
        if parts.label and len(known) < self._max_known and reg.isascii() and self._rules and reg not in self._rules:
            known[reg] = (parts.label, parts.suffix, parts.private)
        return parts
