"""Judges pickle streams: runs the symbolic machine, applies the imports policy, follows nested payloads."""

from __future__ import annotations

import re

from tutela.core.findings import Severity
from tutela.posture.artifact import Artifact
from tutela.posture.imports_policy import judge_global
from tutela.posture.issues import Issue
from tutela.posture.limits import Budget
from tutela.posture.pickle_machine import scan_stream
from tutela.posture.pickle_values import PickleReport

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_SNIFF_RULES = frozenset({"pickle.dangerous-global", "pickle.risky-global", "pickle.unlisted-stdlib-global"})
_CATEGORY = {
    "pickle.dangerous-global": "code-execution",
    "pickle.risky-global": "file-access",
    "pickle.unlisted-stdlib-global": "suspicious-import",
    "pickle.unknown-global": "suspicious-import",
    "pickle.malformed-global": "malformed",
}
MAX_NESTED_DEPTH = 4


def scan_pickle(a: Artifact, budget: Budget, *, strict: bool = True, nested_depth: int = 0) -> list[Issue]:
    reports = scan_stream(a.data, a.start, a.end, deadline=budget.deadline, max_stack=budget.limits.max_stack)
    issues: list[Issue] = []
    real = strict or any(r.stopped and r.opcodes > 1 for r in reports)
    for rep in reports:
        issues.extend(_judge(rep, a, strict=real))
        for n in rep.nested:
            if nested_depth >= MAX_NESTED_DEPTH:
                issues.append(
                    Issue(
                        "pickle.nested-too-deep",
                        Severity.HIGH,
                        "resource-limit",
                        "pickles nested deeper than 4 levels; treated as unsafe",
                        a.member,
                        n.offset - a.start,
                    )
                )
                continue
            label = f"<{n.how} @{n.offset - a.start}>"
            child = a.child(label, n.data, 0, -1) if n.data is not None else a.child(label, None, n.start, n.end)
            issues.extend(_scan_nested(child, budget, strict=n.strict and real, nested_depth=nested_depth + 1))
    last = reports[-1] if reports else None
    if last is not None and last.stopped and last.end < a.end and real:
        # Bytes after the last stream: pickle.load called again would read them (torch legacy
        # files keep raw storages there). Judge them only by what is unmistakably dangerous.
        tail = a.child(f"<after stream @{last.end - a.start}>", None, last.end, a.end)
        if tail.head(1) not in (b"",) and tail.size < a.size:
            issues.extend(
                i
                for i in scan_pickle(tail, budget, strict=False, nested_depth=nested_depth + 1)
                if i.severity >= Severity.HIGH
            )
    return _dedupe(issues)


def _scan_nested(a: Artifact, budget: Budget, *, strict: bool, nested_depth: int) -> list[Issue]:
    """A payload that would be deserialised again: a pickle, or (torch.storage._load_from_bytes) a
    whole torch file, which is opened like any other file."""
    from tutela.posture.sniff import identify

    if identify(a) in ("pickle", "pickle?"):
        return scan_pickle(a, budget, strict=strict, nested_depth=nested_depth)
    from tutela.posture.containers import expand

    exp = expand(a, budget)
    issues = list(exp.issues)
    for leaf in exp.of_kind("pickle", "pickle?"):
        issues.extend(scan_pickle(leaf.artifact, budget, strict=strict and leaf.strict, nested_depth=nested_depth))
    if strict and not exp.leaves and not exp.issues:
        issues.append(
            Issue(
                "pickle.malformed",
                Severity.HIGH,
                "malformed",
                "nested payload is neither a pickle nor an archive",
                a.member,
            )
        )
    return issues


def _judge(rep: PickleReport, a: Artifact, *, strict: bool) -> list[Issue]:
    out: list[Issue] = []
    seen: set[tuple[str, str]] = set()
    # Content that merely looks like a pickle counts only for imports that are then called (or a clean stream).
    called = {id(e.ref) for e in rep.events if e.kind in ("call", "build") and e.ref is not None}
    for ev in rep.events:
        off = ev.offset - a.start
        if ev.kind == "import" and ev.ref is not None:
            ref = ev.ref
            key = (ref.module, ref.name)
            if key in seen:
                continue
            seen.add(key)
            j = judge_global(ref.module, ref.name, ref.mapped)
            if j.severity is None:
                continue
            if not strict and (
                j.rule not in _SNIFF_RULES or not _IDENT.match(ref.dotted) or not (rep.stopped or id(ref) in called)
            ):
                continue
            shown = ref.dotted if not ref.mapped else f"{ref.dotted} (Python 3: {'.'.join(ref.mapped)})"
            out.append(
                Issue(j.rule, j.severity, _CATEGORY.get(j.rule, "suspicious-import"), j.reason, a.member, off, shown)
            )
        elif not strict:
            continue
        elif ev.kind == "indirect-call":
            out.append(
                Issue(
                    "pickle.indirect-call",
                    Severity.HIGH,
                    "code-execution",
                    f"pickle calls a computed callable: {ev.detail}",
                    a.member,
                    off,
                )
            )
        elif ev.kind == "dynamic-global":
            out.append(
                Issue(
                    "pickle.dynamic-global",
                    Severity.HIGH,
                    "code-execution",
                    "import whose name is computed at load time",
                    a.member,
                    off,
                )
            )
        elif ev.kind == "build-global" and ev.ref is not None:
            out.append(
                Issue(
                    "pickle.global-mutation",
                    Severity.HIGH,
                    "code-execution",
                    f"{ev.detail}: {ev.ref.dotted}",
                    a.member,
                    off,
                    ev.ref.dotted,
                )
            )
        elif ev.kind == "extension":
            out.append(
                Issue(
                    "pickle.extension",
                    Severity.HIGH,
                    "suspicious-import",
                    f"{ev.detail}: resolved through the copyreg registry at load time",
                    a.member,
                    off,
                )
            )
    if rep.error is not None and strict:
        ran = sum(1 for e in rep.events if e.kind in ("call", "build"))
        out.append(
            Issue(
                "pickle.malformed",
                Severity.HIGH,
                "malformed",
                f"pickle stream breaks at offset {rep.end - 1 - a.start}: {rep.error}; "
                f"{ran} call(s) would already have run; treated as unsafe",
                a.member,
                rep.end - 1 - a.start,
            )
        )
    return out


def _dedupe(issues: list[Issue]) -> list[Issue]:
    seen: set[tuple[str, str, str | None]] = set()
    out = []
    for i in issues:
        key = (i.rule, i.member, i.global_ if i.global_ is not None else f"{i.offset}")
        if key not in seen:
            seen.add(key)
            out.append(i)
    return out
