"""The hijack guard's judgement: does this answer leave the name's expected set?

`HijackGuard.check(response)` returns the changes (empty almost always). Names under protected
zones are judged at high severity (the default policy blocks them), names under watched zones or
pinned elsewhere at medium (alert). Everything else returns at once.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tutela.core.detector import DetectorConfig
from tutela.core.findings import Severity
from tutela.dns.subjects import DnsResponse
from tutela.dns.takeover.baseline import MAX_DOMAINS, MAX_PREFIXES, MAX_RECENT, AsnTable, BaselineStore, Expected
from tutela.dns.takeover.names import icann_registrable, in_zones, normalise

A, NS, CNAME, MX, AAAA = 1, 2, 5, 15, 28
TYPE_NAMES = {A: "A", NS: "NS", CNAME: "CNAME", MX: "MX", AAAA: "AAAA"}
DIRECT = "(no CNAME)"  # the chain "domain" of answers that carry no CNAME
EVIDENCE_ITEMS = 8


class Pin(BaseModel):
    """What a name may answer, fixed in config. An aspect left empty is learned on first use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefixes: tuple[str, ...] = ()  # "198.51.100.0/24", "2001:db8::/32"
    asns: tuple[int, ...] = ()
    cname_domains: tuple[str, ...] = ()  # registrable domains CNAME targets may be in
    ns: tuple[str, ...] = ()  # NS host names
    mx: tuple[str, ...] = ()  # MX host names
    ttl_max: int | None = Field(None, ge=0)


class GuardConfig(DetectorConfig):
    """The parameters of `dns.hijack` (under `detectors.dns`, id dns.hijack, params: ...)."""

    protect_zones: tuple[str, ...] = ()  # changes here are high severity (blocked by default)
    watch_zones: tuple[str, ...] = ()  # changes here are medium severity (alerted)
    pins: dict[str, Pin] = Field(default_factory=dict)  # exact names
    learn: bool = True  # trust on first use for aspects not pinned
    learn_answers: int = Field(5, ge=1, le=1000)  # observations of an aspect before it is enforced
    prefix_v4: int = Field(24, ge=8, le=32)  # learned address prefixes of names answered directly
    prefix_v6: int = Field(48, ge=16, le=128)
    cdn_prefix_v4: int = Field(16, ge=8, le=32)  # ... and of names whose unchanged CNAME leads to a CDN
    cdn_prefix_v6: int = Field(32, ge=16, le=128)
    asn_prefixes: dict[int, tuple[str, ...]] = Field(default_factory=dict)  # ASN -> its prefixes
    asn_table: Path | None = None  # operator-supplied "PREFIX ASN" lines or iptoasn.com TSV
    ttl_factor: float = Field(4.0, ge=1.0)  # a TTL above factor x learned max is reported (low)
    max_names: int = Field(50_000, ge=10)
    state_file: Path | None = None  # default: <TUTELA_HOME>/dns/hijack-baseline.json
    seed_from_history: bool = True  # learn protected names from passive DNS at start (background)
    store_path: Path | None = None  # the event store holding passive_dns; default <TUTELA_HOME>/events.duckdb
    save_interval_s: float = Field(60.0, gt=0)


@dataclass(frozen=True, slots=True)
class Change:
    rule: str
    name: str
    rtype: str
    severity: Severity
    message: str
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)


@dataclass
class _PinSets:
    nets: list[Any]
    asns: set[int]
    cname_domains: set[str]
    ns: set[str]
    mx: set[str]
    ttl_max: int | None


def _host(data: str) -> str:
    return normalise(data.split()[-1]) if data.strip() else ""


@lru_cache(maxsize=65536)
def _ipv(address: str) -> Any:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


class HijackGuard:
    def __init__(
        self,
        config: GuardConfig,
        state_path: Path | None,
        *,
        registrable: Callable[[str], str | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.protected = tuple(normalise(z) for z in config.protect_zones)
        self.watched = tuple(normalise(z) for z in config.watch_zones)
        self.store = BaselineStore(state_path, max_names=config.max_names)
        self.registrable = registrable or icann_registrable()
        self.clock = clock
        self._pins: dict[str, _PinSets] = {}
        for name, pin in config.pins.items():
            self._pins[normalise(name)] = _PinSets(
                nets=[ipaddress.ip_network(p, strict=False) for p in pin.prefixes],
                asns=set(pin.asns),
                cname_domains={normalise(d) for d in pin.cname_domains},
                ns={normalise(h) for h in pin.ns},
                mx={normalise(h) for h in pin.mx},
                ttl_max=pin.ttl_max,
            )
        self._asn: AsnTable | None = None

    @property
    def active(self) -> bool:
        return bool(self.protected or self.watched or self._pins)

    def asn_table(self) -> AsnTable:
        if self._asn is None:
            if self.config.asn_table is not None:
                self._asn = AsnTable.from_file(self.config.asn_table, self.config.asn_prefixes)
            else:
                self._asn = AsnTable.from_prefixes(self.config.asn_prefixes)
        return self._asn

    def severity_for(self, name: str) -> Severity | None:
        if in_zones(name, self.protected):
            return Severity.HIGH
        if in_zones(name, self.watched) or name in self._pins:
            return Severity.MEDIUM
        return None

    def check(self, response: DnsResponse) -> list[Change]:
        if response.rcode != 0 or not response.answers:
            return []
        name = normalise(response.query.name)
        severity = self.severity_for(name)
        if severity is None:
            return []
        qtype = response.query.qtype
        if qtype not in TYPE_NAMES:
            return []
        self.store.load()
        pin = self._pins.get(name)
        create = (
            (lambda: Expected(pinned=pin is not None, first_seen=self.clock()))
            if (self.config.learn or pin is not None)
            else None
        )
        entry = self.store.get(name, create)
        if entry is None:
            return []
        view = _View.of(response, name, self.registrable, self.asn_table())
        changes: list[Change] = []
        learning: list[str] = []
        for aspect in view.aspects(qtype):
            if self._learning(entry, pin, aspect):
                learning.append(aspect)
                continue
            changes.extend(self._compare(aspect, entry, pin, view, name, severity))
        if not changes:
            self._absorb(entry, view, learning)
            entry.last_seen = self.clock()
            self.store.dirty = True
        return changes

    def _learning(self, entry: Expected, pin: _PinSets | None, aspect: str) -> bool:
        if pin is not None and _pinned(pin, aspect):
            return False
        if not self.config.learn:
            return False  # a pinned name's unpinned aspects are not enforced without learning
        return entry.seen.get(aspect, 0) < self.config.learn_answers

    def _compare(
        self, aspect: str, e: Expected, pin: _PinSets | None, v: _View, name: str, severity: Severity
    ) -> list[Change]:
        if (pin is None or not _pinned(pin, aspect)) and not self.config.learn:
            return []
        if aspect == "addr":
            return self._compare_addresses(e, pin, v, name, severity)
        if aspect == "chain":
            allowed = set(e.cname_domains) | (pin.cname_domains if pin else set())
            new = sorted(v.chain_domains - allowed)
            if not new:
                return []
            return [
                Change(
                    "cname_domain_changed",
                    name,
                    v.rtype,
                    severity,
                    f"{name} now points into {', '.join(new)} (CNAME), outside the expected "
                    f"{', '.join(sorted(allowed)[:EVIDENCE_ITEMS]) or 'none'}",
                    before={"cname_domains": sorted(allowed)[:EVIDENCE_ITEMS]},
                    after={"cname_domains": new, "cname_targets": v.cnames[:EVIDENCE_ITEMS]},
                )
            ]
        hosts, domains, pinned_hosts = (
            (e.ns_hosts, e.ns_domains, pin.ns if pin else set())
            if aspect == "ns"
            else (e.mx_hosts, e.mx_domains, pin.mx if pin else set())
        )
        current = v.ns if aspect == "ns" else v.mx
        if pin is not None and pinned_hosts:
            new = sorted(h for h in current if h not in pinned_hosts)
        else:
            new = sorted(h for h in current if h not in hosts and self.registrable(h) not in domains)
        if not new:
            return []
        label = aspect.upper()
        expected = sorted(pinned_hosts or hosts)[:EVIDENCE_ITEMS]
        return [
            Change(
                f"{aspect}_changed",
                name,
                label,
                severity,
                f"{name} {label} set changed: {', '.join(new)} not in the expected {', '.join(expected)}",
                before={"hosts": expected},
                after={"hosts": sorted(current)[:EVIDENCE_ITEMS], "new": new[:EVIDENCE_ITEMS]},
            )
        ]

    def _compare_addresses(
        self, e: Expected, pin: _PinSets | None, v: _View, name: str, severity: Severity
    ) -> list[Change]:
        out: list[Change] = []
        pinned = pin is not None and _pinned(pin, "addr")
        bad: list[str] = []
        for address, asn in zip(v.addresses, v.asns, strict=True):
            ip = _ipv(address)
            if ip is None:
                continue
            if pin is not None and any(ip.version == n.version and ip in n for n in pin.nets):
                continue
            if asn is not None and (asn in e.asns or (pin is not None and asn in pin.asns)):
                continue
            if not pinned and self._prefix(address) in e.prefixes:
                continue
            if not pinned and v.third_party and self._wide(address) in self._wide_set(e):
                continue
            bad.append(address)
        if bad:
            expected_prefixes = sorted(e.prefixes | {str(n) for n in (pin.nets if pin else [])})
            asns = sorted(e.asns | (pin.asns if pin else set()))
            out.append(
                Change(
                    "address_outside_expected",
                    name,
                    v.rtype,
                    severity,
                    f"{name} {v.rtype} answer {', '.join(bad[:4])} is outside the expected set "
                    f"({', '.join(expected_prefixes[:4])}{', AS' + ', AS'.join(map(str, asns[:4])) if asns else ''})",
                    before={
                        "prefixes": expected_prefixes[:EVIDENCE_ITEMS],
                        "asns": asns[:EVIDENCE_ITEMS],
                        "recent": e.recent[-EVIDENCE_ITEMS:],
                    },
                    after={
                        "addresses": v.addresses[:EVIDENCE_ITEMS],
                        "outside": bad[:EVIDENCE_ITEMS],
                        "asns": [a for a in v.asns if a is not None][:EVIDENCE_ITEMS],
                    },
                )
            )
        ttl_cap = pin.ttl_max if pin is not None and pin.ttl_max is not None else None
        if ttl_cap is None and e.ttl_max is not None:
            ttl_cap = int(e.ttl_max * self.config.ttl_factor)
        if ttl_cap is not None and v.ttl is not None and v.ttl > ttl_cap:
            out.append(
                Change(
                    "ttl_out_of_range",
                    name,
                    v.rtype,
                    Severity.LOW,
                    f"{name} answered with TTL {v.ttl}, above the expected maximum {ttl_cap}",
                    before={"ttl_min": e.ttl_min, "ttl_max": e.ttl_max, "ttl_cap": ttl_cap},
                    after={"ttl": v.ttl},
                )
            )
        return out

    def _prefix(self, address: str) -> str:
        from tutela.dns.takeover.baseline import prefix_of

        return prefix_of(address, self.config.prefix_v4, self.config.prefix_v6)

    def _wide(self, address: str) -> str:
        from tutela.dns.takeover.baseline import prefix_of

        return prefix_of(address, self.config.cdn_prefix_v4, self.config.cdn_prefix_v6)

    def _wide_set(self, e: Expected) -> set[str]:
        out = set()
        for p in e.prefixes:
            net = ipaddress.ip_network(p)
            bits = self.config.cdn_prefix_v4 if net.version == 4 else self.config.cdn_prefix_v6
            out.add(str(net.supernet(new_prefix=bits)) if net.prefixlen > bits else str(net))
        return out

    def seed(self, rows: Sequence[tuple[str, str, str, int]]) -> int:
        """Learn from passive DNS rows (name, type, answer, count): every name under a protected or
        watched zone whose aspects are still learning takes the answers history saw for it (through
        its CNAME chain), as if observed `count` times. Returns the number of names seeded."""
        by_name: dict[str, dict[str, list[tuple[str, int]]]] = {}
        for name, rtype, answer, count in rows:
            by_name.setdefault(normalise(name), {}).setdefault(rtype, []).append((answer, int(count)))
        if not self.config.learn:
            return 0
        self.store.load()
        seeded = 0
        for name, types in by_name.items():
            if self.severity_for(name) is None:
                continue
            chain, addresses, count = [], [], 0
            current, seen_names = name, {name}
            for _ in range(8):  # follow CNAMEs to the names that hold the addresses
                node = by_name.get(current, {})
                targets = [normalise(t) for t, _ in node.get("CNAME", [])]
                if not targets or targets[0] in seen_names:
                    addresses = [a for t in ("A", "AAAA") for a, _ in node.get(t, [])]
                    count = sum(n for t in ("A", "AAAA") for _, n in node.get(t, []))
                    break
                chain.append(targets[0])
                seen_names.add(targets[0])
                current = targets[0]
            e = self.store.get(name, lambda: Expected(first_seen=self.clock()))
            assert e is not None
            own = self.registrable(name)
            domains = {self.registrable(c) or c for c in chain}
            view = _View(
                rtype="A",
                addresses=addresses[:MAX_PREFIXES],
                asns=[self.asn_table().lookup(a) for a in addresses[:MAX_PREFIXES]],
                cnames=chain,
                chain_domains=domains or {DIRECT},
                ns=[normalise(h) for h, _ in types.get("NS", [])],
                mx=[_host(h) for h, _ in types.get("MX", [])],
                ttl=None,
                third_party=bool(domains - {own}),
            )
            counts = {
                "addr": count if addresses else 0,
                "chain": count if addresses else sum(n for _, n in types.get("CNAME", [])),
                "ns": sum(n for _, n in types.get("NS", [])),
                "mx": sum(n for _, n in types.get("MX", [])),
            }
            learning = [a for a, n in counts.items() if n > 0 and e.seen.get(a, 0) < self.config.learn_answers]
            if not learning:
                continue
            self._absorb(e, view, learning)
            for aspect in learning:
                e.seen[aspect] = min(self.config.learn_answers, e.seen.get(aspect, 0) - 1 + counts[aspect])
            seeded += 1
            self.store.dirty = True
        return seeded

    def _absorb(self, e: Expected, v: _View, learning: Sequence[str]) -> None:
        """Remember this (accepted) answer; aspects still learning widen the expected set."""
        if v.addresses:
            e.recent = (e.recent + [a for a in v.addresses if a not in e.recent])[-MAX_RECENT:]
        for aspect in learning:
            e.seen[aspect] = e.seen.get(aspect, 0) + 1
            if aspect == "addr":
                for address, asn in zip(v.addresses, v.asns, strict=True):
                    if len(e.prefixes) < MAX_PREFIXES and _ipv(address) is not None:
                        e.prefixes.add(self._prefix(address))
                    if asn is not None and len(e.asns) < MAX_DOMAINS:
                        e.asns.add(asn)
                if v.ttl is not None:
                    e.ttl_min = v.ttl if e.ttl_min is None else min(e.ttl_min, v.ttl)
                    e.ttl_max = v.ttl if e.ttl_max is None else max(e.ttl_max, v.ttl)
            elif aspect == "chain":
                e.cname_domains |= set(sorted(v.chain_domains)[: MAX_DOMAINS - len(e.cname_domains)])
            elif aspect in ("ns", "mx"):
                hosts, domains = (e.ns_hosts, e.ns_domains) if aspect == "ns" else (e.mx_hosts, e.mx_domains)
                for h in v.ns if aspect == "ns" else v.mx:
                    if len(hosts) < MAX_DOMAINS:
                        hosts.add(h)
                        domains.add(self.registrable(h) or h)


def _pinned(pin: _PinSets, aspect: str) -> bool:
    if aspect == "addr":
        return bool(pin.nets or pin.asns)
    if aspect == "chain":
        return bool(pin.cname_domains)
    return bool(pin.ns if aspect == "ns" else pin.mx)


@dataclass
class _View:
    """The parts of one response the guard compares."""

    rtype: str
    addresses: list[str]
    asns: list[int | None]
    cnames: list[str]
    chain_domains: set[str]
    ns: list[str]
    mx: list[str]
    ttl: int | None
    third_party: bool  # the CNAME chain leads out of the name's own registrable domain (a CDN)

    @classmethod
    def of(cls, r: DnsResponse, name: str, registrable: Callable[[str], str | None], asn: AsnTable) -> _View:
        addresses = [a.data for a in r.answers if a.rtype in (A, AAAA)]
        cnames = [normalise(a.data) for a in r.answers if a.rtype == CNAME]
        owned = [a for a in r.answers if normalise(a.name) == name]
        ttl = min((a.ttl for a in owned), default=None)
        own = registrable(name)
        chain_domains = {registrable(c) or c for c in cnames}
        return cls(
            rtype=TYPE_NAMES.get(r.query.qtype, str(r.query.qtype)),
            addresses=addresses,
            asns=[asn.lookup(a) for a in addresses] if len(asn) else [None] * len(addresses),
            cnames=cnames,
            chain_domains=chain_domains or {DIRECT},
            ns=[normalise(a.data) for a in owned if a.rtype == NS],
            mx=[_host(a.data) for a in owned if a.rtype == MX],
            ttl=ttl,
            third_party=bool(chain_domains - {own}),
        )

    def aspects(self, qtype: int) -> list[str]:
        out = []
        if qtype in (A, AAAA, CNAME):
            if self.addresses:
                out.append("addr")
            out.append("chain")
        if self.ns:
            out.append("ns")
        if self.mx:
            out.append("mx")
        return out


def evidence(change: Change) -> Mapping[str, Any]:
    return {"name": change.name, "type": change.rtype, "before": change.before, "after": change.after}
