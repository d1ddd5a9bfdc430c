"""Fast-flux and wildcard-abuse scores from the answers a resolver sees.

Fast flux (per name, over a sliding window): many distinct addresses spread over many networks
with low TTLs. The score is Holz et al.'s linear flux score (NDSS 2008),
`1.32 * n_addresses + 18.54 * n_networks - 142.38`, where networks are origin ASNs when an
IP-to-ASN table is configured and /16 prefixes otherwise (a coarser stand-in). A CDN that rotates
inside a few prefixes stays far below zero; a botnet-hosted name crosses it. Since the score grows
with the address count alone, fewer than `min_networks` (3) networks is never flux: a load
balancer pool of 256 addresses in one /24 is not a botnet.

Wildcard abuse (per registrable domain, over a window): many distinct random-looking subdomains
that all resolve, nearly all to the same answer, the footprint of a wildcard record used for
tunnelling, tracking or phishing kits.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from tutela.dns.lexical import entropy
from tutela.dns.subjects import DnsResponse
from tutela.dns.takeover.baseline import AsnTable, prefix_of

A, AAAA = 1, 28


def flux_score(n_addresses: int, n_networks: int) -> float:
    return 1.32 * n_addresses + 18.54 * n_networks - 142.38


@dataclass
class _Flux:
    """Per name: address -> (last seen, network), with network counts kept incrementally."""

    addresses: OrderedDict[str, tuple[float, str]] = field(default_factory=OrderedDict)
    networks: Counter[str] = field(default_factory=Counter)
    min_ttl: int = 1 << 31

    def add(self, address: str, seen: float, network: str) -> None:
        old = self.addresses.pop(address, None)
        if old is None:
            self.networks[network] += 1
        self.addresses[address] = (seen, network)

    def evict_oldest(self) -> None:
        _, (_, network) = self.addresses.popitem(last=False)
        self.networks[network] -= 1
        if self.networks[network] <= 0:
            del self.networks[network]


@dataclass
class _Wild:
    """Per registrable domain; the answer counts and the entropy sum are kept incrementally, so an
    observation costs O(1) however many subdomains the window holds."""

    names: OrderedDict[str, tuple[float, str, float]] = field(default_factory=OrderedDict)  # name -> (seen, answer, H)
    answers: Counter[str] = field(default_factory=Counter)
    entropy_sum: float = 0.0
    flagged_until: float = 0.0

    def add(self, name: str, seen: float, answer: str, h: float) -> None:
        old = self.names.pop(name, None)
        if old is not None:
            self._forget(old)
        self.names[name] = (seen, answer, h)
        self.answers[answer] += 1
        self.entropy_sum += h

    def evict_oldest(self) -> None:
        _, old = self.names.popitem(last=False)
        self._forget(old)

    def _forget(self, old: tuple[float, str, float]) -> None:
        self.answers[old[1]] -= 1
        if self.answers[old[1]] <= 0:
            del self.answers[old[1]]
        self.entropy_sum -= old[2]


@dataclass(frozen=True, slots=True)
class FluxResult:
    kind: str  # "fast_flux" or "wildcard_abuse"
    key: str
    score: float
    detail: dict[str, object]


class FluxTracker:
    def __init__(
        self,
        *,
        window_s: float = 3600.0,
        max_ttl: int = 300,
        min_addresses: int = 10,
        min_networks: int = 3,
        wildcard_min_names: int = 50,
        wildcard_same_answer: float = 0.8,
        wildcard_min_entropy: float = 2.5,
        max_keys: int = 100_000,
        max_per_key: int = 512,
        coalesce_s: float = 1.0,
        asn: AsnTable | None = None,
        registrable: Callable[[str], str | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_s = window_s
        self.max_ttl = max_ttl
        self.min_addresses = min_addresses
        self.min_networks = min_networks
        self.wildcard_min_names = wildcard_min_names
        self.wildcard_same_answer = wildcard_same_answer
        self.wildcard_min_entropy = wildcard_min_entropy
        self.max_keys = max_keys
        self.max_per_key = max_per_key
        self.asn = asn or AsnTable()
        self._has_asn = len(self.asn) > 0
        self.registrable = registrable
        self.clock = clock
        self._flux: OrderedDict[str, _Flux] = OrderedDict()
        self._wild: OrderedDict[str, _Wild] = OrderedDict()
        self.coalesce_s = coalesce_s
        self._recent: dict[tuple[object, ...], tuple[float, list[FluxResult]]] = {}

    def observe(self, r: DnsResponse) -> list[FluxResult]:
        if r.rcode != 0 or r.query.qtype not in (A, AAAA):
            return []
        records = [a for a in r.answers if a.rtype == A or a.rtype == AAAA]
        if not records:
            return []
        addresses = sorted({a.data for a in records}) if len(records) > 1 else [records[0].data]
        ttl = min(a.ttl for a in records)
        now = self.clock()
        name = r.query.name.rstrip(".").lower()
        recent = self._coalesced(name, ttl, addresses, now)
        if recent is not None:
            return recent
        out = self._observe(name, addresses, ttl, now)
        if self.coalesce_s > 0:
            if len(self._recent) >= self.max_keys:
                self._recent.clear()
            self._recent[(name, ttl, *addresses)] = (now + self.coalesce_s, out)
        return list(out)

    def _coalesced(self, name: str, ttl: int, addresses: list[str], now: float) -> list[FluxResult] | None:
        """The results of an identical answer (name, TTL, addresses) observed less than `coalesce_s`
        ago, or None. A popular name is answered many times a second with the same records; each
        repeat would only refresh the window's timestamps (by under `coalesce_s`, against a window
        of an hour) and score the same state again, so it gets the same results without the work."""
        if self.coalesce_s <= 0:
            return None
        hit = self._recent.get((name, ttl, *addresses))
        if hit is None or hit[0] <= now:
            return None
        return list(hit[1])

    def _observe(self, name: str, addresses: list[str], ttl: int, now: float) -> list[FluxResult]:
        out: list[FluxResult] = []
        flux = self._observe_flux(name, addresses, ttl, now)
        if flux is not None:
            out.append(flux)
        if self.registrable is not None:
            wild = self._observe_wild(name, ",".join(addresses), now)
            if wild is not None:
                out.append(wild)
        return out

    def _bounded(self, table: OrderedDict[str, object], key: str, make: Callable[[], object]) -> object:
        entry = table.get(key)
        if entry is None:
            entry = make()
            table[key] = entry
            while len(table) > self.max_keys:
                table.popitem(last=False)
        else:
            table.move_to_end(key)
        return entry

    def _observe_flux(self, name: str, addresses: list[str], ttl: int, now: float) -> FluxResult | None:
        st: _Flux = self._bounded(self._flux, name, _Flux)  # type: ignore[arg-type, assignment]
        for a in addresses:
            old = st.addresses.get(a)
            st.add(a, now, old[1] if old is not None else self._network(a))
        while st.addresses and (
            len(st.addresses) > self.max_per_key or next(iter(st.addresses.values()))[0] < now - self.window_s
        ):
            st.evict_oldest()
        st.min_ttl = min(st.min_ttl, ttl)
        n = len(st.addresses)
        if n < self.min_addresses or st.min_ttl > self.max_ttl:
            return None
        m = len(st.networks)
        if m < self.min_networks:
            return None  # a big pool inside one or two networks is a load balancer, not flux
        score = flux_score(n, m)
        if score <= 0:
            return None
        return FluxResult(
            "fast_flux",
            name,
            score,
            {"addresses": n, "networks": m, "min_ttl": st.min_ttl, "by": self._by()},
        )

    def _by(self) -> str:
        return "asn" if self._has_asn else "/16"

    def _network(self, address: str) -> str:
        asn = self.asn.lookup(address) if self._has_asn else None
        if asn is not None:
            return f"AS{asn}"
        try:
            return prefix_of(address, 16, 32)
        except ValueError:
            return address

    def _observe_wild(self, name: str, answer: str, now: float) -> FluxResult | None:
        assert self.registrable is not None
        domain = self.registrable(name)
        if not domain or domain == name:
            return None
        st: _Wild = self._bounded(self._wild, domain, _Wild)  # type: ignore[arg-type, assignment]
        seen = st.names.get(name)
        # a name already in the window keeps its label, so its entropy (the costly part) is reused
        h = seen[2] if seen is not None else entropy(name[: -len(domain) - 1].split(".")[0])
        st.add(name, now, answer, h)
        while st.names and (len(st.names) > self.max_per_key or next(iter(st.names.values()))[0] < now - self.window_s):
            st.evict_oldest()
        if now < st.flagged_until:
            return self._wild_result(domain, st)
        if len(st.names) < self.wildcard_min_names:
            return None
        result = self._wild_result(domain, st)
        if result.score <= 0:
            return None
        st.flagged_until = now + self.window_s
        return result

    def _wild_result(self, domain: str, st: _Wild) -> FluxResult:
        n = len(st.names)
        same = max(st.answers.values()) / n
        mean_entropy = st.entropy_sum / n
        ok = same >= self.wildcard_same_answer and mean_entropy >= self.wildcard_min_entropy
        score = (same - self.wildcard_same_answer + 0.01) * (mean_entropy - self.wildcard_min_entropy + 0.01)
        return FluxResult(
            "wildcard_abuse",
            domain,
            score if ok else -1.0,
            {"names": len(st.names), "same_answer": round(same, 3), "mean_label_entropy": round(mean_entropy, 3)},
        )
