"""Registrable domains from the Public Suffix List bundled in the `publicsuffixlist` package.

The list ships inside the wheel and is never fetched at run time. A brand-new name costs one
right-to-left walk (`SuffixIndex.count_public`): a set lookup per label, stopping at the first
suffix that no rule extends, so "host.site.com" costs two steps, not `publicsuffixlist`'s join and
three set lookups per candidate depth from the deepest down. The walk gives exactly what
`PublicSuffixList.privatesuffix` gives (a test compares them on real and rule-derived names).
Results are memoised in one bounded LRU, since the same names repeat inline.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any


@cache
def _public_suffix_list() -> Any:
    """The parsed bundled list, shared by every `Registrable` (it is immutable and ~1 s to parse)."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


class SuffixIndex:
    """The list's rules ("com", "*.ck", "!www.ck") and every label-suffix of a rule ("ck"): a suffix
    outside `stems` cannot be matched by any rule, nor can any longer suffix ending with it."""

    __slots__ = ("rules", "stems")

    def __init__(self, rules: frozenset[str]) -> None:
        self.rules = rules
        stems: set[str] = set()
        for rule in rules:
            stem = rule[1:] if rule.startswith("!") else rule
            if stem.startswith("*."):
                stem = stem[2:]
            parts = stem.split(".")
            for k in range(len(parts)):
                stems.add(".".join(parts[k:]))
        self.stems = frozenset(stems)

    def count_public(self, labels: list[str]) -> int:
        """Labels in the public suffix of a name (lower-case labels, none empty), unknown TLDs
        public: `PublicSuffixList._countpublic(labels, accept_unknown=True)`. The deepest matching
        suffix decides, by its rule: exception (one label less), wildcard (one more, unless it is
        the whole name), exact."""
        ll = len(labels)
        if ll == 1:
            return 1
        rules, stems = self.rules, self.stems
        found = 1  # unknown TLD: public
        depth = 1
        s = labels[-1]
        while s in stems:
            if "!" + s in rules:
                found = depth - 1
            elif "*." + s in rules:
                found = depth + 1 if depth < ll else depth
            elif s in rules:
                found = depth
            if depth == ll:
                break
            depth += 1
            s = labels[-depth] + "." + s
        return found


@cache
def _index() -> SuffixIndex:
    return SuffixIndex(_public_suffix_list()._publicsuffix)


def registrable_of(name: str, index: SuffixIndex | None = None) -> str:
    """The registrable domain (public suffix plus one label) of a name; the name itself when it has
    none (a public suffix, an empty label)."""
    name = name.rstrip(".").lower()
    labels = name.split(".")
    if "" in labels:
        return name
    publen = (index or _index()).count_public(labels)
    if not publen or len(labels) <= publen:
        return name
    return ".".join(labels[-publen - 1 :])


_SHARED_CACHE = 1 << 17


@lru_cache(maxsize=_SHARED_CACHE)
def _registrable(name: str) -> str:
    return registrable_of(name)


@lru_cache(maxsize=4096)
def _known_tld(tld: str) -> bool:
    psl = _public_suffix_list()
    return bool(tld) and psl.is_public(tld) and psl.publicsuffix(tld, accept_unknown=False) is not None


class Registrable:
    """`Registrable()(name)` -> "example.co.uk" for "a.b.example.co.uk"; the name itself if no suffix matches.

    Every instance shares one bounded memo (a pure function of the bundled list), so detectors
    that each ask for a query's registrable domain pay for the lookup once.
    """

    def __init__(self, cache_size: int = _SHARED_CACHE) -> None:  # cache_size: kept for compatibility
        self._psl: Any = None

    def __call__(self, name: str) -> str:
        return _registrable(name)

    def known_suffix(self, name: str) -> bool:
        """Whether the name's TLD is on the list (unknown TLDs are not public)."""
        return _known_tld(name.rstrip(".").lower().rpartition(".")[2])

    def public_suffix(self, name: str) -> str | None:
        self._psl = _public_suffix_list()
        suffix: str | None = self._psl.publicsuffix(name.rstrip(".").lower())
        return suffix


_PRIVATE_TLDS = frozenset(
    {
        "local",
        "lan",
        "home",
        "internal",
        "localdomain",
        "corp",
        "intranet",
        "private",
        "test",
        "localhost",
        "invalid",
        "example",
        "arpa",
        "onion",
        "alt",
    }
)


def is_public_name(name: str, psl: Registrable) -> bool:
    """Whether a name lives in the public DNS: its suffix is on the Public Suffix List (ICANN or
    private section) and is not a special-use or home-network TLD (RFC 6761/8375)."""
    name = name.rstrip(".").lower()
    tld = name.rpartition(".")[2]
    if not tld or tld in _PRIVATE_TLDS or name.endswith(".home.arpa"):
        return False
    return psl.known_suffix(name)
