"""The takeover detectors, registered under `tutela.detectors`:

- `dns.hijack` (response side): answers for protected or watched names that leave their
  expected set (see `guard`), with before/after evidence.
- `dns.fastflux` (response side): fast-flux and wildcard-abuse scores (see `fastflux`).
- `dns.dangling` (request side): lookups of records and targets the scanner found dangling and
  saved (`tutela dns dangling --save`), category "dangling domain".

Constructors do no I/O; state loads on first use and is saved by `close()` (the sensor calls it
at shutdown) and at most every `save_interval_s` from a background thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from tutela.core.detector import DetectorConfig, ScanContext
from tutela.core.findings import Finding, Severity
from tutela.core.models import ModelCache
from tutela.dns.subjects import DnsQuery, DnsResponse
from tutela.dns.takeover.guard import GuardConfig, HijackGuard, evidence

ALIAS_TYPES = ("CNAME", "DNAME", "A", "AAAA")


def _home() -> Path:
    from tutela.core.config import default_home

    return default_home()


class HijackDetector:
    id: ClassVar[str] = "dns.hijack"
    version: ClassVar[str] = "1"
    pillar: ClassVar[str] = "dns"
    side: ClassVar[str] = "response"
    cacheable: ClassVar[bool] = False
    categories: ClassVar[tuple[str, ...]] = ("dns hijack",)
    description: ClassVar[str] = (
        "answers for protected names that leave the pinned or learned expected set (addresses, ASNs, "
        "CNAME domains, NS, MX, TTL)"
    )

    class Config(GuardConfig):
        pass

    def __init__(self, config: Config, models: ModelCache) -> None:
        self.config = config
        self._guard: HijackGuard | None = None
        self._lock = threading.Lock()
        self._last_save = time.monotonic()
        self.seeded = threading.Event()  # set once the passive-DNS seeding is over (or skipped)
        self.seeded_names = 0
        self.seed_error: str | None = None

    @property
    def active(self) -> bool:
        """Without protected or watched zones or pins there is nothing to guard: the sensor then
        leaves this detector out, and answers are not parsed for it."""
        return bool(self.config.protect_zones or self.config.watch_zones or self.config.pins)

    @property
    def guard(self) -> HijackGuard:
        if self._guard is None:
            with self._lock:
                if self._guard is None:
                    path = self.config.state_file or _home() / "dns" / "hijack-baseline.json"
                    self._guard = HijackGuard(self.config, path)
                    if self.config.seed_from_history and self.config.learn:
                        threading.Thread(target=self._seed, name="tutela-hijack-seed", daemon=True).start()
                    else:
                        self.seeded.set()
        return self._guard

    def _seed(self) -> None:
        """Background: learn protected names from passive DNS, so a restart with no baseline file
        (or a name first seen now) is judged against history rather than trusted on first use."""
        from tutela.dns.takeover.passive import rows_for_zones

        try:
            home = _home()
            rows = rows_for_zones(
                self.config.store_path or home / "events.duckdb",
                home,
                (*self.config.protect_zones, *self.config.watch_zones),
            )
            with self._lock:
                assert self._guard is not None
                self.seeded_names = self._guard.seed(rows)
        except Exception as exc:  # history is an aid: without it the guard learns on first use
            self.seed_error = f"{type(exc).__name__}: {exc}"
        finally:
            self.seeded.set()

    def detect(self, subject: DnsResponse, ctx: ScanContext) -> Iterable[Finding]:
        if not isinstance(subject, DnsResponse) or not (
            self.config.protect_zones or self.config.watch_zones or self.config.pins
        ):
            return []
        guard = self.guard
        with self._lock:
            changes = guard.check(subject)
        self._maybe_save()
        return [
            Finding.of(
                match=f"{c.name}|{c.rule}|{sorted(map(str, c.after.get('outside', c.after.get('new', []))))}",
                detector=self.id,
                detector_version=self.version,
                rule=c.rule,
                category="dns hijack",
                severity=c.severity,
                confidence=0.9 if c.rule != "ttl_out_of_range" else 0.5,
                message=c.message,
                location=c.name,
                evidence=evidence(c),
            )
            for c in changes
        ]

    def _maybe_save(self) -> None:
        guard = self._guard
        if guard is None or not guard.store.dirty:
            return
        if time.monotonic() - self._last_save < self.config.save_interval_s:
            return
        self._last_save = time.monotonic()
        threading.Thread(target=self._save_quietly, name="tutela-hijack-save", daemon=True).start()

    def _save_quietly(self) -> None:
        with contextlib.suppress(OSError):  # the next interval or close() retries
            self.save()

    def save(self) -> None:
        if self._guard is not None:
            with self._lock:  # entries are mutated under this lock by detect()
                snapshot = self._guard.store.snapshot()
            self._guard.store.save(snapshot)

    def close(self) -> None:
        self.save()


class FastFluxDetector:
    id: ClassVar[str] = "dns.fastflux"
    version: ClassVar[str] = "1"
    pillar: ClassVar[str] = "dns"
    side: ClassVar[str] = "response"
    cacheable: ClassVar[bool] = False
    categories: ClassVar[tuple[str, ...]] = ("fast flux", "wildcard abuse")
    description: ClassVar[str] = (
        "fast flux (many addresses over many networks with low TTLs, Holz et al. score) and wildcard "
        "abuse (many random subdomains that all resolve alike)"
    )

    class Config(DetectorConfig):
        window_s: float = Field(3600.0, gt=0)
        max_ttl: int = Field(300, ge=0)  # flux only counts answers with TTLs at or below this
        min_addresses: int = Field(10, ge=2)
        min_networks: int = Field(3, ge=1)
        wildcard: bool = True
        wildcard_min_names: int = Field(50, ge=5)
        wildcard_same_answer: float = Field(0.8, gt=0, le=1)
        wildcard_min_entropy: float = Field(2.5, ge=0)
        asn_prefixes: dict[int, tuple[str, ...]] = Field(default_factory=dict)
        asn_table: Path | None = None
        max_keys: int = Field(100_000, ge=100)
        # identical answers (name, TTL, addresses) within this many seconds are scored once (0: never)
        coalesce_s: float = Field(1.0, ge=0, le=60)

    def __init__(self, config: Config, models: ModelCache) -> None:
        self.config = config
        self._tracker: Any = None
        self._lock = threading.Lock()

    def _make(self) -> Any:
        from tutela.dns.takeover.baseline import AsnTable
        from tutela.dns.takeover.fastflux import FluxTracker
        from tutela.dns.takeover.names import icann_registrable

        c = self.config
        asn = AsnTable.from_file(c.asn_table, c.asn_prefixes) if c.asn_table else AsnTable.from_prefixes(c.asn_prefixes)
        return FluxTracker(
            window_s=c.window_s,
            max_ttl=c.max_ttl,
            min_addresses=c.min_addresses,
            min_networks=c.min_networks,
            wildcard_min_names=c.wildcard_min_names,
            wildcard_same_answer=c.wildcard_same_answer,
            wildcard_min_entropy=c.wildcard_min_entropy,
            max_keys=c.max_keys,
            coalesce_s=c.coalesce_s,
            asn=asn,
            registrable=icann_registrable() if c.wildcard else None,
        )

    def detect(self, subject: DnsResponse, ctx: ScanContext) -> Iterable[Finding]:
        if not isinstance(subject, DnsResponse):
            return []
        with self._lock:
            if self._tracker is None:
                self._tracker = self._make()
            results = self._tracker.observe(subject)
        out = []
        for r in results:
            flux = r.kind == "fast_flux"
            out.append(
                Finding.of(
                    match=r.key,
                    detector=self.id,
                    detector_version=self.version,
                    rule=r.kind,
                    category="fast flux" if flux else "wildcard abuse",
                    severity=Severity.MEDIUM,
                    confidence=min(1.0, 0.5 + r.score / 200) if flux else min(1.0, 0.6 + r.score),
                    message=(
                        f"{r.key} looks fast-flux: {r.detail['addresses']} addresses over "
                        f"{r.detail['networks']} networks ({r.detail['by']}), TTL {r.detail['min_ttl']}"
                        if flux
                        else f"{r.key}: {r.detail['names']} random subdomains resolve alike (wildcard abuse)"
                    ),
                    location=r.key,
                    evidence={**r.detail, "score": round(r.score, 2)},
                )
            )
        return out


class DanglingDetector:
    id: ClassVar[str] = "dns.dangling"
    version: ClassVar[str] = "1"
    pillar: ClassVar[str] = "dns"
    side: ClassVar[str] = "request"
    cacheable: ClassVar[bool] = False  # the saved findings change when a zone is rescanned
    categories: ClassVar[tuple[str, ...]] = ("dangling domain",)
    description: ClassVar[str] = (
        "lookups of records the dangling-DNS scanner found pointing at unclaimed resources, and of their targets"
    )

    class Config(DetectorConfig):
        home: Path | None = None  # where `tutela dns dangling --save` wrote; default TUTELA_HOME
        reload_interval_s: float = Field(5.0, ge=0)
        block_nxdomain: bool = False  # also act on plain-NXDOMAIN targets (not claimable by anyone)

    def __init__(self, config: Config, models: ModelCache) -> None:
        self.config = config
        self._index: dict[str, tuple[str, Any]] = {}
        self._domains: dict[str, Any] = {}  # unregistered registrable domains: every name under them
        self._mtime: float | None = None
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.config.reload_interval_s:
            return
        with self._lock:
            self._checked = now
            from tutela.dns.takeover.report import load_saved, saved_path

            home = self.config.home or _home()
            try:
                mtime = saved_path(home).stat().st_mtime
            except OSError:
                mtime = None
            if mtime == self._mtime:
                return
            self._mtime = mtime  # a malformed file fails this query once, then the old index stays
            index: dict[str, tuple[str, Any]] = {}
            domains: dict[str, Any] = {}
            for findings in (load_saved(home) if mtime is not None else {}).values():
                for f in findings:
                    if f.reason == "nxdomain" and not self.config.block_nxdomain:
                        continue
                    if f.type in ALIAS_TYPES:  # the owner of an MX/NS/SRV record is not the alias
                        index.setdefault(f.name, ("dangling_record", f))
                    for target in (f.target, *f.chain):
                        index.setdefault(target, ("dangling_target", f))
                    if f.reason == "unregistered_domain" and f.detail:
                        domains[f.detail] = f
            self._index, self._domains = index, domains

    def detect(self, subject: DnsQuery, ctx: ScanContext) -> Iterable[Finding]:
        if not isinstance(subject, DnsQuery):
            return []
        self._refresh()
        if not self._index and not self._domains:
            return []  # nothing saved by the scanner (the usual case): every query passes here
        name = subject.name.rstrip(".").lower()
        hit = self._index.get(name)
        if hit is None and self._domains:
            labels = name.split(".")
            for i in range(len(labels) - 1):
                f = self._domains.get(".".join(labels[i:]))
                if f is not None:
                    hit = ("unregistered_domain", f)
                    break
        if hit is None:
            return []
        rule, f = hit
        what = {
            "dangling_record": f"{name} is a dangling {f.type} record ({f.reason}: {f.target})",
            "dangling_target": f"{name} is the target of dangling record {f.name} {f.type} ({f.reason})",
            "unregistered_domain": f"{name} is under {f.detail}, an unregistered domain dangling records point to",
        }[rule]
        return [
            Finding.of(
                match=name,
                detector=self.id,
                detector_version=self.version,
                rule=rule,
                category="dangling domain",
                severity=max(f.severity, Severity.HIGH) if f.reason != "nxdomain" else f.severity,
                confidence=0.95,
                message=what,
                location=name,
                evidence={"record": f"{f.name} {f.type} {f.target}", "reason": f.reason, "zone": f.zone},
            )
        ]
