"""`tutela runtime scan|score|eval`: the AI runtime detectors from the command line.

scan   for people: one text (argument, --file or stdin), a table or --json.
score  for machines: JSON lines `{"text": ..., "kind": "prompt"|"document"|"output"}` on stdin, one JSON
       object per input line on stdout, in order: `score`, `action`, `findings` (detector, category,
       rule, and for PII/secrets `entity`; `span` {start, end} in the original text).
eval   accuracy on the shared data sets -> docs/eval/runtime.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tutela.cli.context import EXIT_CLEAN, EXIT_FINDINGS, CliContext, emit_json, emit_table
from tutela.core.errors import ConfigError, ParseError
from tutela.core.findings import Severity

MAX_INPUT = 1_000_000  # characters per text

PROFILES: dict[str, tuple[tuple[str, ...], dict[str, dict[str, Any]]]] = {
    "default": (
        (
            "runtime.obfuscation",
            "runtime.injection",
            "runtime.pii",
            "runtime.secrets",
            "runtime.source_code",
            "runtime.urls",
            "runtime.sql",
        ),
        {},
    ),
    "fast": (
        ("runtime.obfuscation", "runtime.injection", "runtime.pii", "runtime.secrets", "runtime.urls"),
        {"runtime.injection": {"tier": "fast"}},
    ),
    "injection": (("runtime.obfuscation", "runtime.injection"), {}),
    "dlp": (("runtime.pii", "runtime.secrets", "runtime.source_code"), {}),
    "output": (("runtime.pii", "runtime.secrets", "runtime.urls", "runtime.sql"), {}),
}


def register(groups: Any) -> None:
    p = groups.add_parser("runtime", help="AI runtime security: scan prompts, documents and answers")
    sub = p.add_subparsers(dest="runtime_command", metavar="ACTION", required=True)

    scan = sub.add_parser("scan", help="scan one text for injection, PII, secrets, code, URLs, SQL")
    scan.add_argument("text", nargs="?", help="the text (or use --file, or pipe it on stdin)")
    scan.add_argument("--file", type=Path, help="read the text from this file")
    _common(scan)
    scan.add_argument("--json", action="store_true", help="print the verdict as JSON")
    scan.add_argument("--fail-on", default="medium", help="exit 1 on a finding at or above this severity")
    scan.set_defaults(handler=_scan)

    score = sub.add_parser("score", help="JSON lines in on stdin, one JSON result per line out, in order")
    _common(score)
    score.set_defaults(handler=_score)

    register_eval_runtime(sub, "eval")


def register_eval_runtime(sub: Any, name: str = "runtime") -> None:
    """The runtime report card, as `tutela runtime eval` and `tutela eval runtime`."""
    ev = sub.add_parser(name, help="measure the runtime detectors on the shared data sets (docs/eval/runtime.md)")
    ev.add_argument("--data", help="data directory (default $TUTELA_DATA or ../shared/data beside the checkout)")
    ev.add_argument("--out", type=Path, default=Path("docs/eval/runtime.md"), help="Markdown report to write")
    ev.add_argument("--json-out", type=Path, help="also write the figures as JSON")
    ev.add_argument("--quick", action="store_true", help="subsample the larger sets (for tests)")
    ev.add_argument("--semantic", action="store_true", help="also evaluate the semantic tier alone (slow)")
    ev.add_argument(
        "--cascade-sample",
        type=int,
        default=None,
        help="texts per set for the cascade tier (default: every text)",
    )
    ev.add_argument(
        "--only",
        choices=("pii",),
        help="evaluate one part only and replace just its sections in --out (pii: the PII sections)",
    )
    ev.set_defaults(handler=_eval)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--kind", choices=("prompt", "document", "output"), default="prompt", help="where the text comes from"
    )
    p.add_argument("--profile", choices=sorted(PROFILES), default="default", help="which detectors run")
    p.add_argument("--tier", choices=("fast", "cascade", "semantic"), help="injection tier (default: the profile's)")


def _scanner(args: argparse.Namespace, ctx: CliContext) -> Any:
    from tutela.runtime.scanner import RuntimeScanner, specs_for

    names, params = PROFILES[args.profile]
    params = {k: dict(v) for k, v in params.items()}
    if args.tier and "runtime.injection" in names:
        params.setdefault("runtime.injection", {})["tier"] = args.tier
    return RuntimeScanner(registry=ctx.detectors, specs=specs_for(names, params))


def _read_text(args: argparse.Namespace) -> str:
    if args.file is not None:
        try:
            data = args.file.read_bytes()[: MAX_INPUT * 4]
        except OSError as exc:
            raise ConfigError(f"cannot read {args.file}: {exc.strerror}") from None
        return data.decode("utf-8", "replace")[:MAX_INPUT]
    if args.text is not None:
        return str(args.text)[:MAX_INPUT]
    if sys.stdin.isatty():
        raise ConfigError("no text given", hint="pass TEXT, --file FILE, or pipe text on stdin")
    return sys.stdin.read(MAX_INPUT)


def _scan(args: argparse.Namespace, ctx: CliContext) -> int:
    fail_on = Severity.parse(args.fail_on)
    text = _read_text(args)
    scanner = _scanner(args, ctx)
    verdict = scanner.scan(text, args.kind)
    if args.json:
        emit_json(
            {
                "action": str(verdict.action),
                "score": scanner.score(verdict),
                "kind": args.kind,
                "findings": [scanner.finding_record(f) for f in verdict.findings],
                "failures": [f.to_dict() for f in verdict.failures],
            }
        )
    else:
        rows = [
            [f.detector, f.rule, f.evidence.get("entity", ""), str(f.severity), f"{f.confidence:.3f}",
             f"{f.span.start}-{f.span.end}" if f.span else "", f.message]
            for f in verdict.findings
        ]  # fmt: skip
        emit_table(
            ["detector", "rule", "entity", "severity", "conf", "span", "message"],
            rows,
            title=f"{args.kind}: {verdict.action} ({len(rows)} findings)",
        )
        for failure in verdict.failures:
            print(f"detector {failure.detector} failed: {failure.error}: {failure.message}", file=sys.stderr)
    worst = verdict.max_severity
    return EXIT_FINDINGS if worst is not None and worst >= fail_on else EXIT_CLEAN


def _score(args: argparse.Namespace, ctx: CliContext) -> int:
    scanner = _scanner(args, ctx)
    out = sys.stdout
    flagged = False
    for lineno, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
                raise ParseError('each line must be a JSON object with a string "text"')
            kind = rec.get("kind", args.kind)
            if kind not in ("prompt", "document", "output"):
                raise ParseError(f"unknown kind {kind!r}")
            verdict = scanner.scan(rec["text"][:MAX_INPUT], kind)
            result: dict[str, Any] = {
                "score": scanner.score(verdict),
                "action": str(verdict.action),
                "findings": [scanner.finding_record(f) for f in verdict.findings],
            }
            if verdict.failures:
                result["failures"] = [f.to_dict() for f in verdict.failures]
            if "id" in rec:
                result["id"] = rec["id"]
            flagged = flagged or str(verdict.action) != "allow"
        except (json.JSONDecodeError, ParseError) as exc:
            result = {"error": f"line {lineno}: {exc}", "score": None, "action": None, "findings": []}
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
        out.flush()
    return EXIT_CLEAN


def _eval(args: argparse.Namespace, ctx: CliContext) -> int:
    from tutela.runtime.evaluation import run_eval, write_report

    results = run_eval(
        args.data,
        quick=args.quick,
        semantic=args.semantic,
        registry=ctx.detectors,
        cascade_sample=args.cascade_sample,
        only=args.only,
    )
    write_report(results, args.out)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return EXIT_CLEAN
