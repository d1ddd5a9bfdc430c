"""Newly observed domains: the first query for a registrable domain in this deployment.

What has been seen is persisted under TUTELA_HOME (`dns/observed-domains.tsv`, one
`domain<TAB>first_seen_epoch` per line, appended) so restarts do not re-flag everything. The
file loads on the first query; new domains are appended in batches and at `close()`. With a
quarantine window, a domain keeps being flagged (rule `quarantine`) until it is that old.
Only public names count (a TLD on the Public Suffix List); "nas.lan" is never "new".
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from tutela.core.config import default_home
from tutela.core.detector import DetectorConfig, ScanContext
from tutela.core.findings import Finding, Severity
from tutela.core.models import ModelCache
from tutela.dns.psl import Registrable, is_public_name
from tutela.dns.subjects import DnsQuery

_LOCAL = -1.0  # marks a non-public domain in the table: never flagged, never persisted


class NewDomainConfig(DetectorConfig):
    path: Path | None = None  # default: $TUTELA_HOME/dns/observed-domains.tsv
    quarantine_s: float = Field(0.0, ge=0.0)  # keep flagging a new domain for this long
    severity: Severity = Severity.LOW
    quarantine_severity: Severity = Severity.MEDIUM
    max_domains: int = Field(5_000_000, ge=1_000)  # beyond this, stop learning (memory bound)
    flush_interval_s: float = Field(2.0, gt=0)


class NewDomainDetector:
    id: ClassVar[str] = "dns.newly_observed"
    version: ClassVar[str] = "1"
    pillar: ClassVar[str] = "dns"
    side: ClassVar[str] = "request"
    cacheable: ClassVar[bool] = False
    categories: ClassVar[tuple[str, ...]] = ("newly-observed",)
    description: ClassVar[str] = "first query for a registrable domain in this deployment (persisted)"
    Config: ClassVar[type[DetectorConfig]] = NewDomainConfig

    def __init__(self, config: NewDomainConfig, models: ModelCache, psl: Registrable | None = None) -> None:
        self.config = config
        # A repeated name is not new; with a quarantine window repeats are flagged too, so run on every query.
        self.run_on_cache_hit = config.quarantine_s > 0
        self._psl = psl or Registrable()
        self._seen: dict[str, float] | None = None
        self._pending: list[str] = []
        self._last_flush = time.monotonic()

    @property
    def path(self) -> Path:
        return self.config.path or default_home() / "dns" / "observed-domains.tsv"

    def _load(self) -> dict[str, float]:
        seen: dict[str, float] = {}
        try:
            with self.path.open("r", encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    domain, _, ts = line.rstrip("\n").partition("\t")
                    if domain and len(seen) < self.config.max_domains:
                        try:
                            seen.setdefault(domain, float(ts))
                        except ValueError:
                            continue
        except FileNotFoundError:
            pass
        self._seen = seen
        return seen

    def warmup(self) -> None:
        if self._seen is None:
            self._load()
        self._psl("example.com")

    def detect(self, subject: DnsQuery, ctx: ScanContext) -> Iterator[Finding]:
        seen = self._seen if self._seen is not None else self._load()
        domain = self._psl(subject.name)
        first = seen.get(domain)
        if first is None:
            if len(seen) >= self.config.max_domains:
                return
            now = time.time()
            if not is_public_name(domain, self._psl):
                seen[domain] = _LOCAL
                return
            seen[domain] = now
            self._pending.append(f"{domain}\t{now:.0f}\n")
            if time.monotonic() - self._last_flush >= self.config.flush_interval_s:
                self.flush()
            yield self._finding(subject, domain, "first-seen", self.config.severity, 0.0)
        elif first != _LOCAL and self.config.quarantine_s:
            age = time.time() - first
            if age < self.config.quarantine_s:
                yield self._finding(subject, domain, "quarantine", self.config.quarantine_severity, age)

    def _finding(self, subject: DnsQuery, domain: str, rule: str, severity: Severity, age: float) -> Finding:
        return Finding.of(
            match=domain,
            detector=self.id,
            detector_version=self.version,
            rule=rule,
            category="newly-observed",
            severity=severity,
            confidence=1.0,
            message=f"{domain} was first seen in this deployment {age:.0f} s ago",
            location=domain,
            evidence={"domain": domain, "age_s": round(age, 1)},
        )

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        lines, self._pending = self._pending, []
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, "".join(lines).encode("utf-8"))
        finally:
            os.close(fd)

    def close(self) -> None:
        self.flush()
