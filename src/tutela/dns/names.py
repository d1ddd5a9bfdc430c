"""Split a DNS name into what the models judge: subdomain part, registrable label and public suffix.

"a1.b2.example.co.uk" -> sub "a1.b2", label "example", suffix "co.uk", private False.
"d1x2y3.cloudfront.net" -> sub "", label "d1x2y3", suffix "cloudfront.net", private True (the suffix is
in the PSL's private section: a platform hands out names under it).
Both lists are the Public Suffix List bundled with `publicsuffixlist`; nothing is fetched.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

# A name is at most 255 octets on the wire, and its text escapes an octet outside printable ASCII as \DDD
# (dns/wire.py): 4 characters, so a name off the wire is at most 4 * 255 characters. Longer text (a log line,
# `dns score` input) keeps its right end, where the public suffix and registrable domain are. (Keeping the
# first 253 characters took the domain off a tunnel's escaped data names, e.g. iodine's, ~600 characters, so
# dns.tunnel never judged them: bench/dns_tunnel_tools.py.)
MAX_NAME = 4 * 255


def clip(name: str) -> str:
    """A name as the models split it: stripped, without the trailing dot, lower-case, its last MAX_NAME characters."""
    return name.strip().rstrip(".").lower()[-MAX_NAME:]


class NameParts(NamedTuple):
    """Immutable. A NamedTuple, not a frozen dataclass: one is built per new name on the inline miss path, and a
    frozen dataclass's __init__ (object.__setattr__ per field) costs ~2 µs there, a NamedTuple ~0.4 µs."""

    name: str
    registrable: str
    label: str
    suffix: str
    private: bool
    sub: str


class NameSplitter:
    """Memoised (bounded LRU per instance); the lists load on first use, not in the constructor."""

    def __init__(self, cache_size: int = 65536) -> None:
        self._all: Any = None
        self._icann: Any = None
        self._private: dict[str, bool] = {}  # per public suffix: a small, bounded set
        self.split = lru_cache(maxsize=cache_size)(self._split)

    def warmup(self) -> None:
        """Load both lists now (servers call this at start; benchmarks before timing)."""
        if self._all is None:
            self._load()

    def _load(self) -> None:
        from publicsuffixlist import PublicSuffixList

        self._all = PublicSuffixList()
        self._icann = PublicSuffixList(only_icann=True)

    def _split(self, name: str) -> NameParts:
        if self._all is None:
            self._load()
        name = clip(name)
        suffix = self._all.publicsuffix(name) or name.rpartition(".")[2]
        if name == suffix:
            return NameParts(name, name, "", suffix, False, "")
        head = name[: -len(suffix) - 1]
        rest, _, label = head.rpartition(".")
        return NameParts(name, f"{label}.{suffix}", label, suffix, self.is_private(suffix), rest)

    def is_private(self, suffix: str) -> bool:
        """Whether a public suffix is in the list's private section (not an ICANN one); lists loaded."""
        private = self._private.get(suffix)
        if private is None:
            private = self._icann.publicsuffix(f"x.{suffix}") != suffix
            if len(self._private) < 100_000:
                self._private[suffix] = private
        return private

    def __call__(self, name: str) -> NameParts:
        return self.split(name)
