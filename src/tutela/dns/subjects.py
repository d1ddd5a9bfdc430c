"""The DNS pillar's subjects: what request-side and response-side detectors judge."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class DnsQuery:
    """One question. `name` is lower-case without the trailing dot ("www.example.com")."""

    name: str
    qtype: int = 1  # A
    client: str = ""
    transport: str = "udp"


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """One resource record of an answer section, in text form."""

    name: str
    rtype: int
    ttl: int
    data: str  # presentation form: "192.0.2.1", "target.example.net", ...


@dataclass(frozen=True, slots=True)
class DnsResponse:
    """A response as response-side detectors see it: the query, the rcode and the answers."""

    query: DnsQuery
    rcode: int = 0
    answers: tuple[DnsAnswer, ...] = field(default_factory=tuple)
