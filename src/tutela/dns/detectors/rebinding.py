"""DNS rebinding protection: a public name answered with a private, loopback or link-local address.

A response-side detector. The address ranges are those dnsmasq's `--stop-dns-rebind` and Pi-hole
refuse (RFC 1918, loopback, link-local, CGNAT, unspecified, IPv6 ULA/link-local/loopback and
IPv4-mapped forms of them). A name counts as public when its TLD is on the Public Suffix List and
is not a home/special-use TLD; names under `allow_suffixes` (split-horizon internal zones) pass.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import ClassVar

from tutela.core.detector import DetectorConfig, ScanContext
from tutela.core.findings import Finding, Severity
from tutela.core.models import ModelCache
from tutela.dns.psl import Registrable, is_public_name
from tutela.dns.subjects import DnsResponse

_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
)
_V4 = tuple(n for n in _NETWORKS if n.version == 4)
_V6 = tuple(n for n in _NETWORKS if n.version == 6)


def _internal_v4(text: str) -> str | None:
    a, _, rest = text.partition(".")
    b = rest.partition(".")[0]
    if not (a.isdigit() and b.isdigit()):
        return None
    first, second = int(a), int(b)
    if first == 10:
        return "10.0.0.0/8"
    if first == 127:
        return "127.0.0.0/8"
    if first == 0:
        return "0.0.0.0/8"
    if first == 192 and second == 168:
        return "192.168.0.0/16"
    if first == 172 and 16 <= second <= 31:
        return "172.16.0.0/12"
    if first == 169 and second == 254:
        return "169.254.0.0/16"
    if first == 100 and 64 <= second <= 127:
        return "100.64.0.0/10"
    return None


def internal_address(text: str) -> str | None:
    """The range an address falls in, if it is one rebinding protection refuses."""
    if "." in text and ":" not in text:
        return _internal_v4(text)
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for net in _V4 if addr.version == 4 else _V6:
        if addr in net:
            return str(net)
    return None


class RebindingConfig(DetectorConfig):
    allow_suffixes: tuple[str, ...] = ("fritz.box",)  # internal zones allowed to resolve inward
    severity: Severity = Severity.HIGH


class RebindingDetector:
    id: ClassVar[str] = "dns.rebinding"
    version: ClassVar[str] = "1"
    pillar: ClassVar[str] = "dns"
    side: ClassVar[str] = "response"
    cacheable: ClassVar[bool] = True  # a function of the name and the answers only
    categories: ClassVar[tuple[str, ...]] = ("rebinding",)
    description: ClassVar[str] = "public names answered with private, loopback or link-local addresses"
    Config: ClassVar[type[DetectorConfig]] = RebindingConfig

    def __init__(self, config: RebindingConfig, models: ModelCache) -> None:
        self.config = config
        self._suffixes = tuple(s.strip(".").lower() for s in config.allow_suffixes)
        self._psl = Registrable()

    def warmup(self) -> None:
        self._psl("example.com")

    def detect(self, subject: DnsResponse, ctx: ScanContext) -> Iterator[Finding]:
        for rr in subject.answers:
            if rr.rtype not in (1, 28):
                continue
            network = internal_address(rr.data)
            if network is None:
                continue
            name = subject.query.name
            if any(name == s or name.endswith("." + s) for s in self._suffixes):
                return
            if not is_public_name(name, self._psl):
                return
            yield Finding.of(
                match=f"{name} {rr.data}",
                detector=self.id,
                detector_version=self.version,
                rule="private-answer",
                category="rebinding",
                severity=self.config.severity,
                confidence=1.0,
                message=f"public name {name} answered with internal address {rr.data} ({network})",
                location=name,
                evidence={"address": rr.data, "network": network, "record": rr.name},
            )
            return
