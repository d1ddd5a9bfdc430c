"""The `dns_takeover` config section (registered under `tutela.settings`): scanner defaults.

The hijack guard's own parameters (protected zones, pins) are detector parameters under
`detectors.dns` (id `dns.hijack`), like every detector's.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class TakeoverSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    resolver: str | None = None  # HOST:PORT the scanner asks when --resolver is not given
    released_addresses: tuple[str, ...] = ()  # addresses/prefixes given back (elastic IPs, old ranges)
    fingerprints_file: Path | None = None  # extra or overriding fingerprint services (same JSON shape)
    timeout_s: float = Field(1.0, gt=0, le=30)
    attempts: int = Field(3, ge=1, le=8)


def parse_hostport(text: str, default_port: int = 53) -> tuple[str, int]:
    """ "127.0.0.1:5300", "[::1]:53", "::1", "ns.example" -> (host, port)."""
    from tutela.core.errors import ConfigError

    text = text.strip()
    host, port = text, default_port
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ConfigError(f"bad HOST:PORT {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"bad HOST:PORT {text!r}")
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, p = text.split(":")
        port = _port(p, text)
    if not host:
        raise ConfigError(f"bad HOST:PORT {text!r}: no host")
    return host, port


def _port(value: str, text: str) -> int:
    from tutela.core.errors import ConfigError

    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"bad port in {text!r}")
    return int(value)
