"""The `dns` config section (registered under `tutela.settings`), and the system resolver."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_LISTEN = "127.0.0.1:5353"


class DnsSettings(BaseModel):
    """Settings of the inline sensor. Detector parameters live under `detectors.dns`, actions under
    `policy.dns` (rules by detector/category/rule glob), as for every pillar."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = DEFAULT_LISTEN
    upstreams: tuple[str, ...] = ()  # HOST:PORT, in order of preference; default: /etc/resolv.conf
    timeout_s: float = Field(1.0, gt=0, le=30)  # per upstream attempt
    max_attempts: int = Field(3, ge=1, le=8)  # upstreams tried per query before SERVFAIL
    block_response: Literal["nxdomain", "refused"] = "nxdomain"
    sinkhole_ipv4: str = "0.0.0.0"
    sinkhole_ipv6: str = "::"
    sinkhole_ttl: int = Field(60, ge=0, le=86400)
    cache_ttl_s: float = Field(300.0, ge=0)  # verdict cache; 0 disables it
    cache_size: int = Field(200_000, ge=0)
    # answer cache (upstream answers by exact query bytes, TTLs honoured and decremented); 0 turns it off
    answer_cache_size: int = Field(100_000, ge=0)
    answer_cache_max_ttl: int = Field(86_400, ge=0)
    answer_cache_max_negative_ttl: int = Field(3_600, ge=0)
    allow: tuple[str, ...] = ()  # names (and their subdomains) never judged
    allow_files: tuple[Path, ...] = ()  # domain-per-line files of the same
    passive_dns: bool = True  # count parsed answers in the store's passive_dns table (`tutela dns history`)
    gc_freeze_s: float = Field(0.25, ge=0)  # freeze survivors out of the cyclic GC's reach this often; 0: off
    gc_full_s: float = Field(600.0, ge=0)  # a full collection (frozen objects included) this often; 0: never
    store_keeper: bool = True  # DuckDB ingestion in a child process (the sensor only spools), for the p99
    log_allowed: bool = False  # also store an event for every allowed query (costly inline)
    metrics_listen: str | None = None  # HOST:PORT for Prometheus text exposition
    workers: int = Field(1, ge=1, le=64)  # processes sharing the port (SO_REUSEPORT), one event loop each
    max_pending: int = Field(30_000, ge=100, le=60_000)  # UDP queries in flight upstream
    udp_batch: bool = True  # clients' datagrams read and answered many per system call (Linux); off: one each
    tcp_max_clients: int = Field(256, ge=1)
    tcp_idle_s: float = Field(10.0, gt=0)  # RFC 7766 idle timeout for client connections
    top_interval_s: float = Field(2.0, gt=0)  # how often `tutela dns top` data is refreshed


def system_upstreams(path: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The nameservers of resolv.conf as HOST:PORT (port 53)."""
    out: list[str] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            host = fields[1].split("%", 1)[0]
            out.append(f"[{host}]:53" if ":" in host else f"{host}:53")
    return out
