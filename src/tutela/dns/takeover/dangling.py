"""The dangling-DNS scanner: records that point at something nobody controls any more.

For every CNAME, DNAME, MX, NS and SRV record of a zone the scanner follows the target's CNAME
chain at the given resolver and decides, in this order:

1. `unclaimed_cloud_resource`: the chain ends in NXDOMAIN inside a cloud service whose names anyone
   can claim (the fingerprint table's `nxdomain_claimable`), e.g. a deleted Azure App Service.
2. `unregistered_domain`: the chain ends in NXDOMAIN and the target's registrable domain (ICANN
   part of the Public Suffix List) has no NS at all: anyone can register it.
3. `nxdomain`: the chain ends in NXDOMAIN otherwise.
4. `released_address`: the target resolves to an address the organisation has released (config).
5. `unclaimed_cloud_resource_http`: only with HTTP checks on: the target resolves to a shared
   front end (GitHub Pages, S3, Heroku...) whose answer shows the signs of an unclaimed resource.

A, AAAA records are checked against the released addresses (and the HTTP signs when asked).
An answer that is neither NOERROR nor NXDOMAIN (SERVFAIL, REFUSED, timeout) is inconclusive:
counted, never a finding. One finding per dangling record.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tutela.core.findings import Severity
from tutela.dns.takeover.client import Answer, StubClient
from tutela.dns.takeover.fingerprints import Fingerprints, Match, http_unclaimed
from tutela.dns.takeover.names import icann_registrable
from tutela.dns.takeover.zonefile import ZoneRecord

MAX_CHAIN = 8
WORKERS = 256

REASONS: dict[str, tuple[Severity, str]] = {
    "unclaimed_cloud_resource": (Severity.HIGH, "points at an unclaimed cloud resource that anyone can create"),
    "unregistered_domain": (Severity.CRITICAL, "points into a domain that is not registered: anyone can register it"),
    "nxdomain": (Severity.MEDIUM, "points at a name that does not exist (NXDOMAIN)"),
    "released_address": (Severity.HIGH, "points at an address the organisation has released"),
    "unclaimed_cloud_resource_http": (Severity.HIGH, "the cloud service answers that the resource is unclaimed"),
}


@dataclass(frozen=True, slots=True)
class DanglingFinding:
    name: str
    type: str
    target: str
    reason: str
    severity: Severity
    message: str
    chain: tuple[str, ...] = ()
    service: str | None = None
    service_id: str | None = None
    zone: str = ""
    ttl: int = 0
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "target": self.target,
            "reason": self.reason,
            "severity": str(self.severity),
            "message": self.message,
            "zone": self.zone,
            "ttl": self.ttl,
        }
        if self.chain:
            out["chain"] = list(self.chain)
        if self.service:
            out["service"] = self.service
            out["service_id"] = self.service_id
        if self.detail:
            out["detail"] = self.detail
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DanglingFinding:
        return cls(
            name=str(d["name"]),
            type=str(d["type"]),
            target=str(d["target"]),
            reason=str(d["reason"]),
            severity=Severity.parse(d.get("severity", "medium")),
            message=str(d.get("message", "")),
            chain=tuple(d.get("chain") or ()),
            service=d.get("service"),
            service_id=d.get("service_id"),
            zone=str(d.get("zone", "")),
            ttl=int(d.get("ttl", 0)),
            detail=str(d.get("detail", "")),
        )


@dataclass
class ScanStats:
    records: int = 0
    checked: int = 0
    inconclusive: int = 0
    queries: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        rate = self.checked / self.seconds * 60 if self.seconds > 0 else 0.0
        return {
            "records": self.records,
            "checked": self.checked,
            "inconclusive": self.inconclusive,
            "queries": self.queries,
            "seconds": round(self.seconds, 3),
            "records_per_minute": round(rate),
        }


@dataclass(frozen=True, slots=True)
class _Resolution:
    status: str  # "resolves", "nxdomain", "inconclusive"
    chain: tuple[str, ...]  # the target, then each CNAME target
    addresses: tuple[str, ...] = ()
    rcode: str = "NOERROR"


HttpProbe = Callable[[str, Sequence[str]], tuple[int, str] | None]


@dataclass
class ScanOptions:
    released: Sequence[str] = ()  # addresses or prefixes the organisation gave back
    http: bool = False  # probe HTTP signs of shared front ends (leaves the machine!)
    http_probe: HttpProbe | None = None  # (host, addresses) -> (status, body); default: plain HTTP/1.1
    workers: int = WORKERS
    registrable: Callable[[str], str | None] | None = None  # name -> ICANN registrable domain
    nets: list[Any] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        for text in self.released:
            try:
                self.nets.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                from tutela.core.errors import ConfigError

                raise ConfigError(f"released address {text!r} is neither an address nor a prefix") from None

    def is_released(self, address: str) -> bool:
        try:
            addr = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(addr.version == n.version and addr in n for n in self.nets)


class DanglingScanner:
    """`await DanglingScanner(client, fingerprints, options).scan(zone, records)`."""

    def __init__(self, client: StubClient, fingerprints: Fingerprints, options: ScanOptions | None = None) -> None:
        self.client = client
        self.fingerprints = fingerprints
        self.options = options or ScanOptions()
        self.registrable = self.options.registrable or icann_registrable()
        self.stats = ScanStats()
        self._chains: dict[str, asyncio.Task[_Resolution]] = {}
        self._registered: dict[str, asyncio.Task[bool | None]] = {}

    async def scan(self, zone: str, records: Iterable[ZoneRecord]) -> list[DanglingFinding]:
        records = list(records)
        self.stats.records = len(records)
        start = time.perf_counter()
        sent0 = self.client.sent
        queue = iter(records)
        findings: list[DanglingFinding] = []

        async def worker() -> None:
            for record in queue:  # a shared iterator: each record goes to exactly one worker
                finding = await self.check(zone, record)
                self.stats.checked += 1
                if finding is not None:
                    findings.append(finding)

        await asyncio.gather(*(worker() for _ in range(max(1, min(self.options.workers, len(records))))))
        self.stats.seconds = time.perf_counter() - start
        self.stats.queries = self.client.sent - sent0
        findings.sort(key=lambda f: (f.name, f.type, f.target))
        return findings

    async def check(self, zone: str, record: ZoneRecord) -> DanglingFinding | None:
        if record.type in ("A", "AAAA"):
            return await self._check_address(zone, record)
        resolution = await self._resolve(record.target)
        if resolution.status == "inconclusive":
            self.stats.inconclusive += 1
            return None
        if resolution.status == "nxdomain":
            return await self._nxdomain(zone, record, resolution)
        released = [a for a in resolution.addresses if self.options.is_released(a)]
        if released:
            return self._finding(zone, record, "released_address", resolution.chain, detail=", ".join(released))
        if self.options.http:
            match = self.fingerprints.match_names(resolution.chain) or self.fingerprints.match_addresses(
                resolution.addresses
            )
            if match is not None:
                return await self._http(zone, record, match, resolution.chain, resolution.addresses)
        return None

    async def _check_address(self, zone: str, record: ZoneRecord) -> DanglingFinding | None:
        if self.options.is_released(record.target):
            return self._finding(zone, record, "released_address", (), detail=record.target)
        if self.options.http:
            match = self.fingerprints.match_addresses([record.target])
            if match is not None:
                return await self._http(zone, record, match, (), (record.target,))
        return None

    async def _nxdomain(self, zone: str, record: ZoneRecord, res: _Resolution) -> DanglingFinding:
        match = self.fingerprints.match_names(res.chain)
        if match is not None and match.service.nxdomain_claimable:
            return self._finding(zone, record, "unclaimed_cloud_resource", res.chain, match=match)
        last = res.chain[-1]
        domain = self.registrable(last)
        in_zone = last == zone or last.endswith("." + zone)
        if domain and not in_zone and not (zone == domain or zone.endswith("." + domain)):
            registered = await self._is_registered(domain)
            if registered is False:
                return self._finding(zone, record, "unregistered_domain", res.chain, detail=domain, match=match)
        return self._finding(zone, record, "nxdomain", res.chain, detail=last, match=match)

    def _finding(
        self,
        zone: str,
        record: ZoneRecord,
        reason: str,
        chain: tuple[str, ...],
        *,
        detail: str = "",
        match: Match | None = None,
    ) -> DanglingFinding:
        severity, text = REASONS[reason]
        if record.type == "NS" and severity < Severity.CRITICAL:
            severity = Severity(severity + 1)  # a dangling delegation hands over a whole zone
        service = match.service if match is not None else None
        message = f"{record.name} {record.type} {record.target}: {text}"
        if service is not None:
            message += f" ({service.service})"
        if detail and detail != record.target:
            message += f" [{detail}]"
        return DanglingFinding(
            name=record.name,
            type=record.type,
            target=record.target,
            reason=reason,
            severity=severity,
            message=message,
            chain=chain,
            service=service.service if service else None,
            service_id=service.id if service else None,
            zone=zone,
            ttl=record.ttl,
            detail=detail,
        )

    async def _resolve(self, target: str) -> _Resolution:
        task = self._chains.get(target)
        if task is None:
            task = asyncio.ensure_future(self._follow(target))
            self._chains[target] = task
        return await asyncio.shield(task)

    async def _follow(self, target: str) -> _Resolution:
        """Follow the CNAME chain from `target`; works with recursive and authoritative servers."""
        chain = [target]
        name = target
        for _ in range(MAX_CHAIN):
            answer = await self.client.query(name, "A")
            if not answer.conclusive:
                return _Resolution("inconclusive", tuple(chain), rcode=answer.rcode)
            last, addresses = _walk(answer, name, chain)
            if addresses:
                return _Resolution("resolves", tuple(chain), tuple(addresses))
            if answer.rcode == "NXDOMAIN":
                return _Resolution("nxdomain", tuple(chain), rcode="NXDOMAIN")
            if last == name:
                # NOERROR without addresses: the name exists (NODATA) or is delegated (a referral).
                return _Resolution("resolves", tuple(chain))
            # The answer stopped at a CNAME target the server did not chase (an authoritative
            # server answering for another zone): ask for that target next.
            name = last
        return _Resolution("inconclusive", tuple(chain), rcode="CHAIN_TOO_LONG")

    async def _is_registered(self, domain: str) -> bool | None:
        task = self._registered.get(domain)
        if task is None:
            task = asyncio.ensure_future(self._ns_lookup(domain))
            self._registered[domain] = task
        return await asyncio.shield(task)

    async def _ns_lookup(self, domain: str) -> bool | None:
        answer: Answer = await self.client.query(domain, "NS")
        if answer.rcode == "NXDOMAIN":
            return False
        if not answer.conclusive:
            return None
        # An answer, or a referral (authority NS owned by the domain), or a SOA: it exists.
        return True

    async def _http(
        self, zone: str, record: ZoneRecord, match: Match, chain: tuple[str, ...], addresses: Sequence[str]
    ) -> DanglingFinding | None:
        if match.service.http is None or not addresses:
            return None
        probe = self.options.http_probe or http_get
        result = await asyncio.to_thread(probe, record.name, addresses)
        if result is None:
            return None
        status, body = result
        if http_unclaimed(match.service, status, body):
            return self._finding(
                zone, record, "unclaimed_cloud_resource_http", chain, detail=f"HTTP {status}", match=match
            )
        return None


def _walk(answer: Answer, name: str, chain: list[str]) -> tuple[str, list[str]]:
    """Follow CNAMEs inside one answer from `name`; return the last name and its addresses."""
    cnames = {o: d for o, t, d in answer.answers if t == "CNAME"}
    seen = set(chain)
    while name in cnames:
        name = cnames[name]
        if name in seen:
            break  # a CNAME loop: the last name answers nothing
        chain.append(name)
        seen.add(name)
    addresses = [d for o, t, d in answer.answers if t in ("A", "AAAA") and o == name]
    return name, addresses


MAX_HTTP_BODY = 64 << 10


def http_get(host: str, addresses: Sequence[str], timeout: float = 5.0) -> tuple[int, str] | None:
    """GET http://host/ from the first address that answers; at most 64 KiB of the body is read."""
    import http.client

    for address in addresses[:2]:
        conn = http.client.HTTPConnection(address, 80, timeout=timeout)
        try:
            conn.request("GET", "/", headers={"Host": host, "User-Agent": "tutela-dangling-scanner"})
            response = conn.getresponse()
            body = response.read(MAX_HTTP_BODY).decode("utf-8", "replace")
            return response.status, body
        except (OSError, http.client.HTTPException):
            continue
        finally:
            conn.close()
    return None


def scan_records(
    zone: str,
    records: Sequence[ZoneRecord],
    resolver: tuple[str, int],
    *,
    fingerprints: Fingerprints | None = None,
    options: ScanOptions | None = None,
    timeout: float = 1.0,
    attempts: int = 3,
) -> tuple[list[DanglingFinding], ScanStats]:
    """Scan a zone's records against `resolver` (host, port); the synchronous entry point."""
    fingerprints = fingerprints or Fingerprints.load()

    async def run() -> tuple[list[DanglingFinding], ScanStats]:
        async with StubClient(resolver[0], resolver[1], timeout=timeout, attempts=attempts) as client:
            scanner = DanglingScanner(client, fingerprints, options)
            findings = await scanner.scan(zone, records)
            return findings, scanner.stats

    try:
        import uvloop

        return uvloop.run(run())
    except ImportError:
        return asyncio.run(run())
