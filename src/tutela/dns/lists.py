"""Allow and deny lists: hosts-format files, domain lists and RPZ zones, loaded into one dict.

Formats:
- hosts: `0.0.0.0 ads.example.com tracker.example.net` (Pi-hole, StevenBlack); exact names.
- domains: one domain per line; `*.example.com`, `||example.com^` (AdGuard) and plain
  `example.com` all cover the domain and everything under it.
- RPZ zones: QNAME triggers only (`bad.example.com CNAME .`, `*.bad.example.com CNAME .`), with
  the RPZ actions NXDOMAIN (`CNAME .`), NODATA (`CNAME *.`), PASSTHRU (`CNAME rpz-passthru.`),
  DROP (`CNAME rpz-drop.`) and local data (`A`/`AAAA` address: a sinkhole). Other triggers
  (rpz-ip, rpz-nsdname, rpz-client-ip, rpz-nsip) are skipped.

Files are read with a line-length and entry limit; bad lines are skipped, never fatal.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from tutela.core.errors import ConfigError

MAX_LINE = 4096
_HOSTS_SKIP = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "0.0.0.0",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
    }
)
_RPZ_SKIP = ("rpz-ip", "rpz-nsdname", "rpz-client-ip", "rpz-nsip")


@dataclass(frozen=True, slots=True)
class ListEntry:
    source: str  # "deny", "hosts:<file>", "domains:<file>", "rpz:<file>"
    action: str = "block"  # block | nxdomain | nodata | drop | passthru | sinkhole
    apex: bool = True  # the name itself matches
    subdomains: bool = True  # names under it match
    sinkhole: str = ""  # address for RPZ local data


def normalise(name: str) -> str:
    name = name.strip().rstrip(".").lower()
    if not name or len(name) > 253:
        return ""
    if name.isascii():
        return "" if " " in name or "\t" in name else name
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return ""


def _lines(path: Path) -> Iterable[str]:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if len(line) <= MAX_LINE:
                    yield line
    except OSError as exc:
        raise ConfigError(f"cannot read list {path}: {exc.strerror or exc}") from None


def _add(out: dict[str, ListEntry], name: str, entry: ListEntry, limit: int) -> None:
    if not name:
        return
    old = out.get(name)
    if old is None:
        if len(out) >= limit:
            raise ConfigError(f"lists hold more than {limit} entries", hint="raise max_entries")
        out[name] = entry
    elif old.source == entry.source and old.action == entry.action:
        out[name] = replace(old, apex=old.apex or entry.apex, subdomains=old.subdomains or entry.subdomains)


def parse_hosts(path: Path, out: dict[str, ListEntry], limit: int) -> None:
    entry = ListEntry(source=f"hosts:{path.name}", subdomains=False)
    for line in _lines(path):
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        for name in fields[1:]:
            name = normalise(name)
            if name not in _HOSTS_SKIP:
                _add(out, name, entry, limit)


def parse_domains(path: Path, out: dict[str, ListEntry], limit: int) -> None:
    entry = ListEntry(source=f"domains:{path.name}")
    for line in _lines(path):
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("!"):
            continue
        if text.startswith("||"):
            text = text[2:].split("^", 1)[0]
        text = text.removeprefix("*.")
        _add(out, normalise(text), entry, limit)


def parse_rpz(path: Path, out: dict[str, ListEntry], limit: int, passthru: dict[str, ListEntry] | None = None) -> None:
    """QNAME triggers into `out`; PASSTHRU ones into `passthru` when given (they take precedence)."""
    source = f"rpz:{path.name}"
    origin = ""
    last_owner = ""
    for raw in _lines(path):
        line = raw.split(";", 1)[0].rstrip()
        if not line.strip():
            continue
        if line.startswith("$ORIGIN"):
            parts = line.split()
            origin = parts[1].rstrip(".").lower() if len(parts) > 1 else ""
            continue
        if line.startswith("$"):
            continue
        fields = line.split()
        if line[0].isspace():
            owner = last_owner
        else:
            owner = fields.pop(0).lower()
            last_owner = owner
        # skip optional TTL and class
        while fields and (fields[0].isdigit() or fields[0].upper() in ("IN", "CH", "HS")):
            fields.pop(0)
        if len(fields) < 2:
            continue
        rtype, rdata = fields[0].upper(), fields[1].lower()
        if owner == "@" or rtype in ("SOA", "NS"):
            continue
        if owner.endswith("."):
            owner = owner.rstrip(".")
            if origin and owner.endswith("." + origin):
                owner = owner[: -len(origin) - 1]
            elif origin and owner == origin:
                continue
        if any(owner == s or owner.endswith("." + s) for s in _RPZ_SKIP):
            continue
        wildcard = owner.startswith("*.")
        name = normalise(owner[2:] if wildcard else owner)
        sinkhole = ""
        if rtype == "CNAME":
            action = {".": "nxdomain", "*.": "nodata", "rpz-passthru.": "passthru", "rpz-drop.": "drop"}.get(
                rdata, "block"
            )
        elif rtype in ("A", "AAAA"):
            try:
                sinkhole = str(ipaddress.ip_address(rdata))
            except ValueError:
                continue
            action = "sinkhole"
        else:
            continue
        target = passthru if action == "passthru" and passthru is not None else out
        _add(target, name, ListEntry(source, action, not wildcard, wildcard, sinkhole), limit)


def load_lists(
    *,
    deny: Iterable[str] = (),
    hosts_files: Iterable[Path] = (),
    domain_files: Iterable[Path] = (),
    rpz_files: Iterable[Path] = (),
    max_entries: int = 5_000_000,
    passthru: dict[str, ListEntry] | None = None,
) -> dict[str, ListEntry]:
    """Blocking entries by name; RPZ PASSTHRU entries go to `passthru` when it is given."""
    out: dict[str, ListEntry] = {}
    for name in deny:
        _add(out, normalise(name.removeprefix("*.")), ListEntry(source="deny"), max_entries)
    for path in hosts_files:
        parse_hosts(Path(path), out, max_entries)
    for path in domain_files:
        parse_domains(Path(path), out, max_entries)
    for path in rpz_files:
        parse_rpz(Path(path), out, max_entries, passthru)
    return out


class NameSet:
    """A set of domains, each covering its subdomains: the allow list. O(labels) per lookup."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._names = {n for n in (normalise(x.removeprefix("*.")) for x in names) if n}

    def add_file(self, path: Path) -> None:
        tmp: dict[str, ListEntry] = {}
        parse_domains(path, tmp, 10_000_000)
        self._names.update(tmp)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        if not self._names or not isinstance(name, str):
            return False
        names = self._names
        if name in names:
            return True
        dot = name.find(".")
        while dot >= 0:
            if name[dot + 1 :] in names:
                return True
            dot = name.find(".", dot + 1)
        return False
