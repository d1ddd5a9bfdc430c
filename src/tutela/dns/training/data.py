"""Reading the shared DNS data and splitting it reproducibly (by hash, not by random draw).

Splits are keyed on what a model judges, so no sample leaks across them: popular domains and DGA
names by registrable label (a DGA that emits one label under several TLDs stays in one split),
tunnel queries by their full name. Train / validation / test shares are 50 / 25 / 25 for popular
domains and 60 / 20 / 20 for DGA names; tunnel train.csv is cut 80 / 20 into fit / validation and
validate.csv is the test set.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tutela.core.errors import ConfigError
from tutela.dns.names import NameParts, NameSplitter

MAX_LINE = 300


def bucket(key: str) -> float:
    """A stable number in [0, 1) for a key."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()[:8], "big") / 2**64


def split_of(key: str, train: float, val: float) -> str:
    b = bucket(key)
    return "train" if b < train else ("val" if b < train + val else "test")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class DnsData:
    root: Path
    benign: dict[str, list[NameParts]] = field(default_factory=dict)  # split -> parts
    benign_rank: dict[str, int] = field(default_factory=dict)  # registrable -> Tranco rank
    dga: dict[str, dict[str, list[NameParts]]] = field(default_factory=dict)  # split -> family -> parts
    tunnel: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # split -> (label, qname)
    hashes: dict[str, str] = field(default_factory=dict)  # relative path -> sha256

    def families(self) -> list[str]:
        names: set[str] = set()
        for per_family in self.dga.values():
            names.update(per_family)
        return sorted(names)


def _lines(path: Path) -> Iterable[str]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()[:MAX_LINE]
            if line and not line.startswith("#"):
                yield line


def load(root: Path, splitter: NameSplitter | None = None) -> DnsData:
    root = Path(root)
    tranco = root / "benign" / "tranco_top_50k.csv"
    dga_dir = root / "dga"
    tunnel_dir = root / "tunneling"
    for required in (tranco, dga_dir, tunnel_dir / "train.csv", tunnel_dir / "validate.csv"):
        if not required.exists():
            raise ConfigError(f"{required} not found", hint="point --data at the shared data's dns folder")
    split = splitter or NameSplitter()
    data = DnsData(root=root)

    data.hashes["benign/tranco_top_50k.csv"] = sha256_of(tranco)
    data.benign = {"train": [], "val": [], "test": []}
    seen: set[str] = set()
    with tranco.open(encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if len(row) != 2 or not row[0].isdigit():
                continue
            parts = split(row[1])
            if not parts.label or parts.registrable in seen:
                continue
            seen.add(parts.registrable)
            data.benign_rank[parts.registrable] = int(row[0])
            data.benign[split_of("benign:" + parts.label, 0.5, 0.25)].append(parts)

    data.dga = {"train": {}, "val": {}, "test": {}}
    for path in sorted(dga_dir.glob("*.txt")):
        family = path.stem
        data.hashes[f"dga/{path.name}"] = sha256_of(path)
        family_seen: set[str] = set()
        for line in _lines(path):
            parts = split(line)
            if not parts.label or parts.registrable in family_seen:
                continue
            family_seen.add(parts.registrable)
            where = split_of(f"dga:{family}:{parts.label}", 0.6, 0.2)
            data.dga[where].setdefault(family, []).append(parts)

    data.tunnel = {"train": [], "val": [], "test": []}
    for name, target in (("train.csv", None), ("validate.csv", "test")):
        path = tunnel_dir / name
        data.hashes[f"tunneling/{name}"] = sha256_of(path)
        with path.open(encoding="utf-8", errors="replace") as fh:
            for row in csv.reader(fh):
                if len(row) != 2 or row[0] not in ("0", "1"):
                    continue
                qname = row[1].strip().rstrip(".").lower()[:MAX_LINE]
                where = target or split_of("tunnel:" + qname, 0.8, 0.2)
                data.tunnel[where].append((int(row[0]), qname))
    return data
