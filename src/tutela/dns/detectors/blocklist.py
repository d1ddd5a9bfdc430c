"""Blocklists: deny names, hosts-format and domain-list files, and RPZ zones.

Lists load on the first query (constructors do no I/O) into one dict of names; a lookup walks
the query's suffixes, so it costs O(labels). A name matches an entry equal to it or, for
domain-list, hosts-style wildcard and RPZ `*.` triggers, any name under it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from tutela.core.detector import DetectorConfig, ScanContext
from tutela.core.findings import Finding, Severity
from tutela.core.models import ModelCache
from tutela.dns.lists import ListEntry, load_lists
from tutela.dns.subjects import DnsQuery


def _lookup(entries: dict[str, ListEntry], name: str) -> tuple[str, ListEntry] | None:
    """The most specific entry covering `name`: itself (if the entry covers its apex), else the
    nearest parent whose entry covers subdomains. O(labels)."""
    hit = entries.get(name)
    if hit is not None and hit.apex:
        return name, hit
    dot = name.find(".")
    while dot >= 0:
        suffix = name[dot + 1 :]
        hit = entries.get(suffix)
        if hit is not None and hit.subdomains:
            return suffix, hit
        dot = name.find(".", dot + 1)
    return None


class BlocklistConfig(DetectorConfig):
    deny: tuple[str, ...] = ()  # names; each also blocks its subdomains
    hosts_files: tuple[Path, ...] = ()  # "0.0.0.0 name" lines (Pi-hole, StevenBlack)
    domain_files: tuple[Path, ...] = ()  # one domain per line (AdGuard/uBlock "||name^" too)
    rpz_files: tuple[Path, ...] = ()  # RPZ zones (RFC draft-vixie-dnsop-dns-rpz), QNAME triggers
    severity: Severity = Severity.HIGH
    max_entries: int = Field(5_000_000, ge=1)


class BlocklistDetector:
    id: ClassVar[str] = "dns.blocklist"
    version: ClassVar[str] = "1"
    pillar: ClassVar[str] = "dns"
    side: ClassVar[str] = "request"
    cacheable: ClassVar[bool] = True
    categories: ClassVar[tuple[str, ...]] = ("blocklist",)
    description: ClassVar[str] = "names on configured deny lists, hosts-format blocklists and RPZ zones"
    Config: ClassVar[type[DetectorConfig]] = BlocklistConfig

    def __init__(self, config: BlocklistConfig, models: ModelCache) -> None:
        self.config = config
        self._entries: dict[str, ListEntry] | None = None
        self._passthru: dict[str, ListEntry] = {}

    @property
    def entries(self) -> dict[str, ListEntry]:
        if self._entries is None:
            self._entries = load_lists(
                deny=self.config.deny,
                hosts_files=self.config.hosts_files,
                domain_files=self.config.domain_files,
                rpz_files=self.config.rpz_files,
                max_entries=self.config.max_entries,
                passthru=self._passthru,
            )
        return self._entries

    def warmup(self) -> None:
        self.entries  # noqa: B018 - loads the lists

    def match(self, name: str) -> tuple[str, ListEntry] | None:
        """The entry that decides `name`: an RPZ PASSTHRU first (an exception wins over any list),
        then the most specific blocking entry."""
        entries = self.entries
        if self._passthru:
            found = _lookup(self._passthru, name)
            if found is not None:
                return found
        return _lookup(entries, name) if entries else None

    def detect(self, subject: DnsQuery, ctx: ScanContext) -> Iterator[Finding]:
        found = self.match(subject.name)
        if found is None or found[1].action == "passthru":
            return
        entry_name, entry = found
        evidence: dict[str, str] = {"list": entry.source, "entry": entry_name}
        if entry.sinkhole:
            evidence["sinkhole"] = entry.sinkhole
        yield Finding.of(
            match=subject.name,
            detector=self.id,
            detector_version=self.version,
            rule=f"rpz.{entry.action}" if entry.source.startswith("rpz:") else "list",
            category="blocklist",
            severity=self.config.severity,
            confidence=1.0,
            message=f"{subject.name} is on blocklist {entry.source} (entry {entry_name})",
            location=subject.name,
            evidence=evidence,
        )
