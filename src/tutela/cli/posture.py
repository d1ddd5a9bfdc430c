"""`tutela posture scan-models PATH...`: scan model files without loading them.

Exit codes: 0 clean, 1 a finding at or above --fail-on (default high), 2 usage error.
Every scanned file is also written to the event store as a posture event: spooled as JSON lines
(no pyarrow or DuckDB on this path, which must start in well under 0.5 s) and ingested by the
next reader of the store (`tutela events`, the API, a running service).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tutela.cli.context import EXIT_CLEAN, EXIT_FINDINGS, CliContext, emit_json, emit_table
from tutela.core.errors import ConfigError

_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}


def register(groups: Any) -> None:
    p = groups.add_parser("posture", help="AI posture: scan model files for code that runs on load")
    sub = p.add_subparsers(dest="posture_command", metavar="ACTION", required=True)
    scan = sub.add_parser(
        "scan-models",
        help="scan model files (pickle, PyTorch, joblib, NumPy, Keras, TensorFlow, ONNX, GGUF, safetensors)",
    )
    scan.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    scan.add_argument("--format", choices=["table", "json", "sarif"], default="table")
    scan.add_argument("--fail-on", default="high", help="exit 1 at or above this severity (default: high)")
    scan.add_argument("--no-events", action="store_true", help="do not write events to the store")
    scan.add_argument("--max-seconds", type=float, help="time budget per file (default 120)")
    scan.set_defaults(handler=_scan_models)


def _rows(result: Any) -> list[dict[str, Any]]:
    rows = []
    for f in result.verdict.findings:
        ev = f.evidence
        rows.append(
            {
                "path": result.path,
                "member": ev.get("member") or "",
                "offset": ev.get("offset"),
                "severity": str(f.severity),
                "rule": f.rule,
                "global": ev.get("global"),
                "message": f.message,
            }
        )
    for failure in result.verdict.failures:
        rows.append(
            {
                "path": result.path,
                "member": "",
                "offset": None,
                "severity": "high",
                "rule": "scan.detector-failure",
                "global": None,
                "message": f"{failure.detector} failed ({failure.error}: {failure.message}); treated as unsafe",
            }
        )
    return rows


def _scan_models(args: argparse.Namespace, ctx: CliContext) -> int:
    import os

    from tutela.core.findings import Severity
    from tutela.core.policy import Policy
    from tutela.posture.limits import ScanLimits
    from tutela.posture.scanner import ModelScanner

    try:
        fail_on = Severity.parse(args.fail_on)
    except ValueError as exc:
        raise ConfigError(f"--fail-on: {exc}") from None
    for p in args.paths:
        if not os.path.exists(p):
            raise ConfigError(f"no such file or folder: {p}")
    limits = ScanLimits(max_seconds=args.max_seconds) if args.max_seconds else ScanLimits()
    if ctx.configured:  # a config file or TUTELA_ overrides: the configured posture pipeline and policy
        settings = ctx.settings
        from tutela.core.models import ModelCache
        from tutela.core.pipeline import DetectorSpec, build_detector

        models = ModelCache()
        names = [n for n in ctx.detectors.names() if n.startswith("posture.")]  # no other pillar is imported
        specs = settings.detectors.get("posture") or [DetectorSpec(id=n) for n in names]
        detectors = [build_detector(ctx.detectors, s, models) for s in specs if s.enabled] or None
        policy = Policy(settings.policy_for("posture"))
        home, store_path = settings.home, settings.store_path
    else:  # the defaults, without reading settings (no YAML or pydantic on this path: start-up <= 0.5 s)
        detectors, policy = None, Policy(on_error="closed")
        home = ctx.home
        store_path = home / "events.duckdb"
    scanner = ModelScanner(detectors=detectors, policy=policy, limits=limits)
    writer = None
    if not args.no_events:
        from tutela.core.store import EventWriter

        writer = EventWriter(home, store_path, ingest_interval=None, segment_format="jsonl")
    rows: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    try:
        for result in scanner.scan_paths(args.paths):
            found = _rows(result)
            rows.extend(found)
            files.append(
                {
                    "path": result.path,
                    "action": str(result.verdict.action),
                    "bytes": result.size,
                    "seconds": round(result.seconds, 4),
                }
            )
            if writer is not None:
                writer.append(
                    "posture",
                    result.verdict,
                    source="scan-models",
                    subject=result.path,
                    attrs={"bytes": result.size, "seconds": round(result.seconds, 4), "findings": len(found)},
                )
    finally:
        if writer is not None:
            writer.flush()  # one segment, written now; the store ingests it when next read
    worst = max((Severity.parse(r["severity"]) for r in rows), default=None)
    if args.format == "json":
        emit_json({"findings": rows, "files": files})
    elif args.format == "sarif":
        emit_json(_sarif(rows))
    else:
        _table(rows, files)
    return EXIT_FINDINGS if worst is not None and worst >= fail_on else EXIT_CLEAN


def _table(rows: list[dict[str, Any]], files: list[dict[str, Any]]) -> None:
    if rows:
        emit_table(
            ["severity", "rule", "path", "member", "offset", "global", "message"],
            (
                [r["severity"], r["rule"], r["path"], r["member"], r["offset"], r["global"], r["message"]]
                for r in sorted(rows, key=lambda r: -_rank(r["severity"]))
            ),
            title=f"{len(rows)} findings in {len(files)} files",
        )
    else:
        sys.stdout.write(f"no findings in {len(files)} files\n")


def _rank(severity: str) -> int:
    return ["info", "low", "medium", "high", "critical"].index(severity)


def _sarif(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from tutela import __version__

    rules: dict[str, dict[str, Any]] = {}
    results = []
    for r in rows:
        rules.setdefault(r["rule"], {"id": r["rule"], "shortDescription": {"text": r["rule"]}})
        location: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": r["path"]}}}
        if not r["member"] and isinstance(r["offset"], int):
            location["physicalLocation"]["region"] = {"byteOffset": r["offset"], "byteLength": 1}
        if r["member"]:
            location["logicalLocations"] = [{"fullyQualifiedName": r["member"], "kind": "member"}]
        props = {"severity": r["severity"], "member": r["member"], "offset": r["offset"]}
        if r["global"]:
            props["global"] = r["global"]
        results.append(
            {
                "ruleId": r["rule"],
                "level": _LEVEL[r["severity"]],
                "message": {"text": r["message"]},
                "locations": [location],
                "properties": props,
            }
        )
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "tutela",
                        "version": __version__,
                        "informationUri": "https://github.com/tutela/tutela",
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
            }
        ],
    }
