"""Scanner output (JSON, SARIF 2.1.0, table rows) and the saved findings the sensor reads.

Saved findings live in `<TUTELA_HOME>/dns/dangling.json`, one entry per scanned zone, replaced
whole by each new scan of that zone (so a fixed record stops being blocked after a rescan).
The `dns.dangling` detector reads this file.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tutela import __version__
from tutela.core.errors import ParseError
from tutela.core.findings import Severity, digest
from tutela.dns.takeover.dangling import REASONS, DanglingFinding, ScanStats

SAVED_NAME = "dangling.json"
MAX_SAVED_BYTES = 32 << 20
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {
    Severity.INFO: "note",
    Severity.LOW: "note",
    Severity.MEDIUM: "warning",
    Severity.HIGH: "error",
    Severity.CRITICAL: "error",
}


def to_json(
    findings: Sequence[DanglingFinding],
    stats: ScanStats | None = None,
    zone: str = "",
    seen: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The report; with `seen` (passive DNS: name -> last seen), when each target last answered."""
    rows = []
    for f in findings:
        row = f.to_dict()
        if seen is not None:
            row["target_last_seen"] = max((seen[n] for n in (f.target, *f.chain) if n in seen), default=None)
        rows.append(row)
    out: dict[str, Any] = {"zone": zone, "findings": rows}
    if stats is not None:
        out["stats"] = stats.to_dict()
    return out


def fingerprint(f: DanglingFinding) -> str:
    return digest("\x1f".join((f.zone, f.name, f.type, f.target, f.reason)))[:32]


def to_sarif(findings: Sequence[DanglingFinding], source: str) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one rule per reason, one result per dangling record."""
    rules = [
        {
            "id": f"dns.dangling/{reason}",
            "name": reason,
            "shortDescription": {"text": text},
            "defaultConfiguration": {"level": _SARIF_LEVEL[severity]},
            "properties": {"security-severity": str(2.0 + 2.0 * int(severity)), "tags": ["security", "dns"]},
        }
        for reason, (severity, text) in REASONS.items()
    ]
    index = {r["id"]: i for i, r in enumerate(rules)}
    results = []
    for f in findings:
        rule_id = f"dns.dangling/{f.reason}"
        results.append(
            {
                "ruleId": rule_id,
                "ruleIndex": index[rule_id],
                "level": _SARIF_LEVEL[f.severity],
                "message": {"text": f.message},
                "locations": [
                    {
                        "physicalLocation": {"artifactLocation": {"uri": source}},
                        "logicalLocations": [
                            {"name": f.name, "fullyQualifiedName": f"{f.name} {f.type} {f.target}", "kind": "record"}
                        ],
                    }
                ],
                "partialFingerprints": {"danglingRecord/v1": fingerprint(f)},
                "properties": {k: v for k, v in f.to_dict().items() if k not in ("message",)},
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "tutela dns dangling",
                        "version": __version__,
                        "informationUri": "https://github.com/tutela/tutela/blob/main/docs/dns-takeover.md",
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }


def table_rows(findings: Sequence[DanglingFinding]) -> list[list[str]]:
    return [[f.name, f.type, f.target, f.reason, str(f.severity), f.service or ""] for f in findings]


TABLE_COLUMNS = ["name", "type", "target", "reason", "severity", "service"]


def saved_path(home: Path) -> Path:
    return home / "dns" / SAVED_NAME


def load_saved(home: Path) -> dict[str, list[DanglingFinding]]:
    """zone -> findings of the last scan of that zone; empty when nothing was saved."""
    path = saved_path(home)
    try:
        if path.stat().st_size > MAX_SAVED_BYTES:
            raise ParseError(f"{path} is over {MAX_SAVED_BYTES} bytes")
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ParseError(f"cannot read saved dangling findings {path}: {exc}") from None
    zones = data.get("zones") if isinstance(data, dict) else None
    if not isinstance(zones, dict):
        raise ParseError(f"{path}: not a saved dangling-findings file (no 'zones' mapping)")
    out: dict[str, list[DanglingFinding]] = {}
    for zone, entry in zones.items():
        try:
            out[zone] = [DanglingFinding.from_dict(d) for d in entry.get("findings", [])]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ParseError(f"{path}: zone {zone}: malformed finding ({exc})") from None
    return out


def save(home: Path, zone: str, findings: Sequence[DanglingFinding]) -> Path:
    """Replace this zone's saved findings, atomically (temporary file, then rename)."""
    path = saved_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    zones: dict[str, Any] = {}
    try:
        load_saved(home)  # validates the file; a broken one is replaced rather than blocking every scan
        zones = json.loads(path.read_text("utf-8"))["zones"]
    except (ParseError, OSError, ValueError, KeyError):
        zones = {}
    zones[zone] = {
        "scanned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "findings": [f.to_dict() for f in findings],
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"version": 1, "zones": zones}, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path
