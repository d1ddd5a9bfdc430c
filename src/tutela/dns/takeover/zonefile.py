"""Zone data into `ZoneRecord`s: a zone file (bounded size) or an AXFR from a server (bounded time).

Only what the scanner checks is kept: records that point at another name (CNAME, MX, NS, SRV,
and DNAME) and addresses (A, AAAA). dnspython parses the text; nothing is ever executed, and
`$INCLUDE` is refused (a zone file must not make us read other files).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tutela.core.errors import ParseError, ResourceLimitExceeded

MAX_ZONE_BYTES = 64 << 20
MAX_RECORDS = 2_000_000
AXFR_TIMEOUT_S = 60.0
POINTER_TYPES = ("CNAME", "DNAME", "MX", "NS", "SRV")
ADDRESS_TYPES = ("A", "AAAA")


@dataclass(frozen=True, slots=True)
class ZoneRecord:
    """One record of the zone: owner name and target, lower-case, without the trailing dot."""

    name: str
    type: str
    target: str
    ttl: int = 0

    @property
    def is_pointer(self) -> bool:
        return self.type in POINTER_TYPES


def _target(rdata: object, rtype: str) -> str:
    if rtype in ADDRESS_TYPES:
        return str(rdata.address)  # type: ignore[attr-defined]
    if rtype == "MX":
        return str(rdata.exchange).lower().rstrip(".")  # type: ignore[attr-defined]
    return str(rdata.target).lower().rstrip(".")  # type: ignore[attr-defined]


def _records(zone: object) -> list[ZoneRecord]:
    import dns.rdatatype

    wanted = {dns.rdatatype.from_text(t) for t in (*POINTER_TYPES, *ADDRESS_TYPES)}
    origin = zone.origin  # type: ignore[attr-defined]
    out: list[ZoneRecord] = []
    for name, ttl, rdata in zone.iterate_rdatas():  # type: ignore[attr-defined]
        if rdata.rdtype not in wanted:
            continue
        rtype = dns.rdatatype.to_text(rdata.rdtype)
        owner = name.derelativize(origin).to_text().lower().rstrip(".")
        target = _target(rdata, rtype)
        if rtype in POINTER_TYPES and target in ("", "."):
            continue  # "MX 0 ." is RFC 7505's null MX; "SRV ... ." means no service
        out.append(ZoneRecord(owner, rtype, target, int(ttl)))
        if len(out) > MAX_RECORDS:
            raise ResourceLimitExceeded(f"zone has over {MAX_RECORDS} records to check")
    out.sort(key=lambda r: (r.name, r.type, r.target))
    return out


_GENERATE = re.compile(r"^\$GENERATE\s+(\d+)-(\d+)(?:/(\d+))?", re.IGNORECASE | re.MULTILINE)


def _check_generate(text: str, path: Path) -> None:
    """$GENERATE expands in memory before any count is possible: bound its ranges up front."""
    total = 0
    for m in _GENERATE.finditer(text):
        start, stop, step = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
        if step < 1 or stop < start:
            raise ParseError(f"zone file {path}: bad $GENERATE range {m.group(0)!r}")
        total += (stop - start) // step + 1
        if total > MAX_RECORDS:
            raise ResourceLimitExceeded(f"zone file {path}: $GENERATE would create over {MAX_RECORDS} records")


def read_zone_file(path: Path, origin: str | None = None) -> tuple[str, list[ZoneRecord]]:
    """(zone origin, records) of a master file. The origin comes from $ORIGIN/SOA unless given."""
    import dns.exception
    import dns.zone

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ParseError(f"cannot read zone file {path}: {exc.strerror or exc}") from None
    if size > MAX_ZONE_BYTES:
        raise ResourceLimitExceeded(f"zone file {path} is {size} bytes; the limit is {MAX_ZONE_BYTES}")
    text = path.read_text(encoding="utf-8", errors="replace")
    lowered = text.lower()
    if "$include" in lowered:
        raise ParseError(f"zone file {path} uses $INCLUDE, which the scanner refuses; inline the included file")
    if "$generate" in lowered:
        _check_generate(text, path)
    try:
        zone = dns.zone.from_text(
            text,
            origin=origin,
            relativize=False,
            check_origin=False,
            filename=str(path),
            allow_include=False,
        )
    except dns.exception.DNSException as exc:
        raise ParseError(f"zone file {path}: {exc}") from None
    return zone.origin.to_text().lower().rstrip("."), _records(zone)


def axfr(server: str, port: int, zone_name: str, timeout: float = AXFR_TIMEOUT_S) -> list[ZoneRecord]:
    """Transfer a zone by AXFR over TCP; bounded by record count and time (the whole transfer)."""
    import dns.exception
    import dns.query
    import dns.rdatatype

    wanted = {dns.rdatatype.from_text(t) for t in (*POINTER_TYPES, *ADDRESS_TYPES)}
    out: list[ZoneRecord] = []
    seen = 0
    try:
        for message in dns.query.xfr(server, zone_name, port=port, timeout=timeout, lifetime=timeout, relativize=False):
            for rrset in message.answer:
                seen += len(rrset)
                if seen > MAX_RECORDS:
                    raise ResourceLimitExceeded(f"AXFR of {zone_name} sends over {MAX_RECORDS} records")
                if rrset.rdtype not in wanted:
                    continue
                rtype = dns.rdatatype.to_text(rrset.rdtype)
                owner = rrset.name.to_text().lower().rstrip(".")
                for rd in rrset:
                    target = _target(rd, rtype)
                    if rtype in POINTER_TYPES and target in ("", "."):
                        continue
                    out.append(ZoneRecord(owner, rtype, target, int(rrset.ttl)))
    except (dns.exception.DNSException, OSError, EOFError) as exc:
        raise ParseError(f"AXFR of {zone_name} from {server}:{port} failed: {exc or type(exc).__name__}") from None
    out = sorted(set(out), key=lambda r: (r.name, r.type, r.target))
    return out
