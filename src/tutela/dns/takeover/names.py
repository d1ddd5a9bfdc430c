"""Name helpers shared by the scanner and the guard."""

from __future__ import annotations

from collections.abc import Callable, Iterable


def icann_registrable(cache_size: int = 65536) -> Callable[[str], str | None]:
    """Registrable domains by the ICANN section of the PSL only: "x.herokuapp.com" -> "herokuapp.com".

    The private section would make every customer of a platform its own registrable domain, which
    is wrong both for "is this domain registered?" and for "did the CNAME move to a new owner?".
    """
    from functools import lru_cache

    from publicsuffixlist import PublicSuffixList

    psl = PublicSuffixList(only_icann=True)

    @lru_cache(maxsize=cache_size)
    def registrable(name: str) -> str | None:
        result: str | None = psl.privatesuffix(name.rstrip(".").lower())
        return result

    return registrable


def normalise(name: str) -> str:
    return name.strip().rstrip(".").lower()


def in_zones(name: str, zones: Iterable[str]) -> str | None:
    """The zone (of `zones`) that `name` is in or equal to, the longest if several."""
    best: str | None = None
    for zone in zones:
        if (name == zone or name.endswith("." + zone)) and (best is None or len(zone) > len(best)):
            best = zone
    return best
