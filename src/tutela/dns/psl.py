"""Registrable domains from the Public Suffix List bundled in the `publicsuffixlist` package.

The list ships inside the wheel and is never fetched at run time. Lookups are memoised in one
bounded LRU, since the same names repeat inline.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any


@cache
def _public_suffix_list() -> Any:
    """The parsed bundled list, shared by every `Registrable` (it is immutable and ~1 s to parse)."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


_SHARED_CACHE = 1 << 17


@lru_cache(maxsize=_SHARED_CACHE)
def _registrable(name: str) -> str:
    name = name.rstrip(".").lower()
    found: str | None = _public_suffix_list().privatesuffix(name)
    return found or name


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
        self._psl = _public_suffix_list()
        tld = name.rstrip(".").lower().rpartition(".")[2]
        return bool(tld) and self._psl.is_public(tld) and self._psl.publicsuffix(tld, accept_unknown=False) is not None

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
