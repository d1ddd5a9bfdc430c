"""The fingerprint table of cloud services whose unclaimed resources can be taken over.

Data, not code: `fingerprints.json` (shipped in the package) lists, per service, the name
patterns a record points at, the address ranges of its shared front ends, whether NXDOMAIN alone
proves the resource unclaimed (`nxdomain_claimable`), and the HTTP signs of an unclaimed resource
(checked only when the user asks for HTTP checks). A user may add or override services with a
JSON file of the same shape.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tutela.core.errors import ConfigError

MAX_TABLE_BYTES = 1 << 20


class HttpSigns(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: tuple[int, ...] = ()
    body: tuple[str, ...] = Field(min_length=1)


class Service(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    service: str
    cname: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    nxdomain_claimable: bool = False
    http: HttpSigns | None = None
    status: str = "vulnerable"


class _Table(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    version: int = 1
    services: tuple[Service, ...]


@dataclass(frozen=True, slots=True)
class Match:
    service: Service
    via: str  # the name or address that matched


class Fingerprints:
    """Matches names (a record's CNAME chain) and addresses against the table."""

    def __init__(self, services: Sequence[Service]) -> None:
        self.services = tuple(services)
        # One regex per service over all its patterns; exact names are kept apart for speed.
        self._patterns: list[tuple[re.Pattern[str], Service]] = []
        self._nets: list[tuple[Any, Service]] = []
        for s in self.services:
            if s.cname:
                rx = "|".join(fnmatch.translate(p.lower().rstrip(".")) for p in s.cname)
                self._patterns.append((re.compile(rx), s))
            for prefix in s.addresses:
                self._nets.append((ipaddress.ip_network(prefix, strict=False), s))

    @classmethod
    def load(cls, extra: Path | None = None) -> Fingerprints:
        text = resources.files("tutela.dns.takeover").joinpath("fingerprints.json").read_text("utf-8")
        services = {s.id: s for s in _parse(text, "the bundled fingerprints.json").services}
        if extra is not None:
            try:
                if extra.stat().st_size > MAX_TABLE_BYTES:
                    raise ConfigError(f"{extra}: fingerprint file over {MAX_TABLE_BYTES} bytes")
                data = extra.read_text("utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read fingerprint file {extra}: {exc.strerror or exc}") from None
            services.update({s.id: s for s in _parse(data, str(extra)).services})
        return cls(list(services.values()))

    def match_names(self, names: Iterable[str]) -> Match | None:
        for name in names:
            name = name.lower().rstrip(".")
            for rx, service in self._patterns:
                if rx.match(name):
                    return Match(service, name)
        return None

    def match_addresses(self, addresses: Iterable[str]) -> Match | None:
        for text in addresses:
            try:
                addr = ipaddress.ip_address(text)
            except ValueError:
                continue
            for net, service in self._nets:
                if addr.version == net.version and addr in net:
                    return Match(service, text)
        return None


def _parse(text: str, where: str) -> _Table:
    try:
        return _Table.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{where}: {loc}: {err['msg']}") from None


def http_unclaimed(service: Service, status: int, body: str) -> bool:
    """Whether an HTTP answer shows the resource unclaimed, by the service's signs."""
    if service.http is None:
        return False
    if service.http.status and status not in service.http.status:
        return False
    return any(sign in body for sign in service.http.body)
