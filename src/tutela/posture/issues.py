"""What the format scanners report before a detector turns it into a core `Finding`."""

from __future__ import annotations

from dataclasses import dataclass

from tutela.core.findings import Finding, Severity, Span


@dataclass(frozen=True, slots=True)
class Issue:
    rule: str  # "pickle.dangerous-global": stable, public
    severity: Severity
    category: str  # code-execution | suspicious-import | file-access | malformed | resource-limit | integrity
    message: str
    member: str = ""  # path inside the file ("archive/data.pkl"), "" for the file itself
    offset: int | None = None  # byte offset inside the member
    global_: str | None = None  # the imported name, for pickle findings
    confidence: float = 1.0


def to_finding(issue: Issue, *, detector: str, version: str, path: str) -> Finding:
    evidence: dict[str, object] = {"member": issue.member, "offset": issue.offset}
    if issue.global_ is not None:
        evidence["global"] = issue.global_
    span = Span(issue.offset, issue.offset + 1) if issue.offset is not None and issue.offset >= 0 else None
    return Finding.of(
        match=f"{issue.member}\x1f{issue.global_ or ''}\x1f{issue.message if issue.global_ is None else ''}",
        detector=detector,
        detector_version=version,
        rule=issue.rule,
        category=issue.category,
        severity=issue.severity,
        confidence=issue.confidence,
        message=issue.message,
        span=span,
        location=path,
        evidence=evidence,
    )


def unparsable(what: str, exc: BaseException | str, member: str = "", offset: int | None = None) -> Issue:
    """Fail closed: a file that cannot be parsed is itself a blocking finding."""
    reason = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return Issue(
        "scan.unparsable",
        Severity.HIGH,
        "malformed",
        f"{what} could not be parsed ({str(reason)[:300]}); treated as unsafe",
        member,
        offset,
    )


def limit_exceeded(exc: BaseException | str, member: str = "") -> Issue:
    return Issue("scan.limit", Severity.HIGH, "resource-limit", f"scan stopped: {exc}; treated as unsafe", member)
