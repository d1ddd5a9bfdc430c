"""The pure part of bench/dns_tunnel_tools.py: dns.tunnel's levels read from the sensor's events, and the
per-query tally of a stream of queries (tested in tests/dns_models/test_tunnel_tools_tally.py)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

LEVELS = ("low", "medium", "high")


@dataclass(frozen=True, slots=True)
class QueryRecord:
    """One query the sensor saw, with dns.tunnel's levels on it (None: no finding of that kind)."""

    name: str
    qtype: int
    action: str
    query_level: str | None
    session_level: str | None


def _rank(level: str | None) -> int:
    return LEVELS.index(level) + 1 if level in LEVELS else 0


def tunnel_levels(findings: Iterable[dict[str, Any]]) -> tuple[str | None, str | None]:
    """The highest per-query and per-session level among an event's dns.tunnel findings."""
    query: str | None = None
    session: str | None = None
    for f in findings:
        if f.get("detector") != "dns.tunnel":
            continue
        kind, _, level = str(f.get("rule", "")).removeprefix("tunnel.").partition(".")
        if level not in LEVELS:
            continue
        if kind == "query" and _rank(level) > _rank(query):
            query = level
        elif kind == "session" and _rank(level) > _rank(session):
            session = level
    return query, session


def tally(records: Sequence[QueryRecord]) -> dict[str, Any]:
    """Queries, share flagged per query at LOW/MEDIUM/HIGH (at that level or above), the first query (1-based)
    at each per-query and per-session level, the share of queries at session HIGH, and the characters of the
    names (presentation form: a byte outside printable ASCII counts as its 4-character escape)."""
    n = len(records)
    out: dict[str, Any] = {"queries": n, "name_chars": sum(len(r.name) for r in records)}
    out["query_share"] = {
        lvl: (sum(1 for r in records if _rank(r.query_level) >= _rank(lvl)) / n if n else None) for lvl in LEVELS
    }
    out["first_query"] = {lvl: _first([r.query_level for r in records], lvl) for lvl in LEVELS}
    out["first_session"] = {lvl: _first([r.session_level for r in records], lvl) for lvl in LEVELS}
    out["session_high_share"] = sum(1 for r in records if r.session_level == "high") / n if n else None
    out["actions"] = {a: sum(1 for r in records if r.action == a) for a in sorted({r.action for r in records})}
    return out


def _first(levels: Sequence[str | None], level: str) -> int | None:
    """The 1-based position of the first level at or above `level`, or None."""
    return next((i + 1 for i, lv in enumerate(levels) if _rank(lv) >= _rank(level)), None)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _count(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def _cell(values: Sequence[float | int | None], fmt: Any = _count) -> str:
    """The median of the runs' values, with their range when they differ; "-" where a run has none (a first
    query that never came counts as its absence, not as a number)."""
    if not values or any(v is None for v in values):
        present = [v for v in values if v is not None]
        return "-" if not present else f"- in {len(values) - len(present)} of {len(values)} runs"
    nums = sorted(float(v) for v in values if v is not None)
    text = fmt(statistics.median(nums))
    return text if nums[0] == nums[-1] else f"{text} ({fmt(nums[0])}–{fmt(nums[-1])})"


def markdown(rows: dict[str, list[dict[str, Any]] | str]) -> str:
    """One line per traffic: a str is why it was skipped; a list holds one result per run ({"tally": ...,
    optionally "sent", "echoed", "seconds"}), shown as the median with the range over the runs."""
    head = ("| traffic | runs | queries | per query ≥ LOW | ≥ MEDIUM | HIGH | first HIGH, per query "
            "| first HIGH, session | queries at session HIGH | bytes echoed each way | seconds |")  # fmt: skip
    lines = [head, "|" + "---|" * 11]
    for label, runs in rows.items():
        if isinstance(runs, str):
            lines.append(f"| {label} | skipped: {runs} |" + " |" * 9)
            continue
        ts = [r["tally"] for r in runs]
        share = {lvl: _cell([t["query_share"][lvl] for t in ts], _pct) for lvl in LEVELS}
        moved = _cell([r["echoed"] for r in runs]) if all("echoed" in r for r in runs) else "n/a"
        secs = _cell([r["seconds"] for r in runs], "{:.1f}".format) if all("seconds" in r for r in runs) else "-"
        first_query, first_session = (_cell([t[k]["high"] for t in ts]) for k in ("first_query", "first_session"))
        lines.append(
            f"| {label} | {len(runs)} | {_cell([t['queries'] for t in ts])} | {share['low']} | {share['medium']} "
            f"| {share['high']} | {first_query} | {first_session} "
            f"| {_cell([t['session_high_share'] for t in ts], _pct)} | {moved} | {secs} |"
        )
    return "\n".join(lines)


def split_records(
    events: Sequence[tuple[str, int, str, list[dict[str, Any]]]], domain: str, ordinary: dict[str, set[str]]
) -> tuple[list[QueryRecord], dict[str, list[QueryRecord]]]:
    """The tool's queries (names under domain) and each ordinary set's, in the order the sensor saw them."""
    tunnel: list[QueryRecord] = []
    sets: dict[str, list[QueryRecord]] = {k: [] for k in ordinary}
    for name, qtype, action, findings in events:
        rec = QueryRecord(name, qtype, action, *tunnel_levels(findings))
        if name == domain or name.endswith("." + domain):
            tunnel.append(rec)
            continue
        for key, names in ordinary.items():
            if name in names:
                sets[key].append(rec)
                break
    return tunnel, sets
