"""bench/dns_tunnel_tally.py, the pure parts of bench/dns_tunnel_tools.py: levels read from an event's findings,
the per-query tally, and which events belong to the tunnel and to each ordinary set. No live tools here (the
live tests cover them)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.dns_tunnel_tally import QueryRecord, markdown, split_records, tally, tunnel_levels  # noqa: E402


def finding(rule: str, detector: str = "dns.tunnel") -> dict[str, str]:
    return {"detector": detector, "rule": rule}


def test_levels_take_the_highest_of_each_kind_and_only_dns_tunnel() -> None:
    assert tunnel_levels([]) == (None, None)
    found = [finding("tunnel.query.low"), finding("tunnel.session.medium"), finding("tunnel.query.high"),
             finding("dga.high", "dns.dga"), finding("tunnel.session.low")]  # fmt: skip
    assert tunnel_levels(found) == ("high", "medium")
    # another detector's rule that looks the same, or a level that is not one, counts for nothing
    assert tunnel_levels([finding("tunnel.query.high", "dns.other"), finding("tunnel.query.critical")]) == (None, None)
    assert tunnel_levels([{"rule": "tunnel.session.high"}]) == (None, None)


def rec(query: str | None, session: str | None = None, name: str = "abc.t.test", action: str = "alert") -> QueryRecord:
    return QueryRecord(name=name, qtype=16, action=action, query_level=query, session_level=session)


def test_tally_counts_at_or_above_each_level_and_finds_the_first_queries() -> None:
    records = [
        rec(None, name="a.t.test", action="allow"),
        rec("low", name="bb.t.test", action="allow"),
        rec("medium"),
        rec("high", "low"),
        rec(None, "medium"),
        rec("high", "high"),
        rec("medium", "high"),
        rec(None, None),
    ]
    t = tally(records)
    assert t["queries"] == 8
    assert t["query_share"] == {"low": 5 / 8, "medium": 4 / 8, "high": 2 / 8}
    assert t["first_query"] == {"low": 2, "medium": 3, "high": 4}
    assert t["first_session"] == {"low": 4, "medium": 5, "high": 6}
    assert t["session_high_share"] == 2 / 8
    assert t["actions"] == {"alert": 6, "allow": 2}
    assert t["name_chars"] == len("a.t.test") + len("bb.t.test") + 6 * len("abc.t.test")


def test_tally_of_nothing_and_of_a_clean_stream() -> None:
    empty = tally([])
    assert empty["queries"] == 0 and empty["query_share"]["high"] is None and empty["first_query"]["low"] is None
    clean = tally([rec(None, action="allow")] * 3)
    assert clean["query_share"] == {"low": 0.0, "medium": 0.0, "high": 0.0}
    assert clean["first_session"]["high"] is None and clean["session_high_share"] == 0.0


def test_events_are_split_into_the_tunnel_and_the_ordinary_sets_in_order() -> None:
    events = [
        ("x1.tunnel.test", 16, "alert", [finding("tunnel.query.high")]),
        ("www.example.com", 1, "allow", []),
        ("tunnel.test", 2, "allow", []),
        ("nottunnel.test", 1, "allow", []),  # a different domain that merely ends the same way
        ("mail.example.org", 28, "alert", [finding("tunnel.query.medium")]),
        ("x2.tunnel.test", 16, "alert", [finding("tunnel.session.high")]),
    ]
    ordinary = {"logs": {"www.example.com"}, "synthetic": {"mail.example.org", "www.example.com"}}
    tunnel, sets = split_records(events, "tunnel.test", ordinary)
    assert [(r.name, r.query_level, r.session_level) for r in tunnel] == [
        ("x1.tunnel.test", "high", None),
        ("tunnel.test", None, None),
        ("x2.tunnel.test", None, "high"),
    ]
    assert [r.name for r in sets["logs"]] == ["www.example.com"]  # each event counts in one set only
    assert [(r.name, r.qtype, r.query_level) for r in sets["synthetic"]] == [("mail.example.org", 28, "medium")]


def test_markdown_shows_the_median_and_range_of_the_runs_and_why_a_tool_was_skipped() -> None:
    one = tally([rec("high", "high")])
    two = tally([rec("medium"), rec("high", "high"), rec("high", "high"), rec("high", "high")])
    table = markdown({
        "dns2tcp": [{"tally": one, "sent": 65536, "echoed": 65536, "seconds": 3.2}],
        "iodine": [{"tally": one, "echoed": 100, "seconds": 1.0}, {"tally": two, "echoed": 300, "seconds": 2.0},
                   {"tally": two, "echoed": 200, "seconds": 4.0}],
        "ordinary": [{"tally": tally([rec(None)])}, {"tally": tally([rec("high"), rec("high")])}],
        "tuns": "not packaged",
    })  # fmt: skip
    lines = table.splitlines()
    assert len(lines) == 6
    assert lines[2] == "| dns2tcp | 1 | 1 | 100.00% | 100.00% | 100.00% | 1 | 1 | 100.00% | 65,536 | 3.2 |"
    assert lines[3] == (
        "| iodine | 3 | 4 (1–4) | 100.00% | 100.00% | 75.00% (75.00%–100.00%) | 2 (1–2) | 2 (1–2) "
        "| 75.00% (75.00%–100.00%) | 200 (100–300) | 2.0 (1.0–4.0) |"
    )
    # a run without any HIGH query has no first HIGH: said, not averaged away
    assert lines[4] == (
        "| ordinary | 2 | 1.5 (1–2) | 50.00% (0.00%–100.00%) | 50.00% (0.00%–100.00%) | 50.00% (0.00%–100.00%) "
        "| - in 1 of 2 runs | - | 0.00% | n/a | - |"
    )
    assert lines[5].startswith("| tuns | skipped: not packaged |")
