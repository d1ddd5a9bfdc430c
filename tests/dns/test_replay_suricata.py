"""`tutela dns replay` on Suricata EVE JSON: queries and answers of EVE versions 1-3, hostile lines, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.dns.dga_names import random_names
from tests.dns.test_replay_cli import replay_json, write_config
from tutela.cli import main
from tutela.core.errors import ParseError
from tutela.dns.replay import detect_format, log_queries, read_records
from tutela.dns.subjects import DnsAnswer

LOGS = Path(__file__).resolve().parents[3] / "shared" / "data" / "access" / "logs"


def event(client: str, dns: dict[str, Any], event_type: str = "dns") -> str:
    return json.dumps({"timestamp": "2026-11-27T10:00:00.000000+0000", "event_type": event_type, "src_ip": client,
                       "dest_ip": "10.0.0.53", "proto": "UDP", "dns": dns})  # fmt: skip


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_queries_and_answers_of_every_eve_version(tmp_path: Path) -> None:
    log = write(tmp_path / "eve.json", [
        event("10.0.0.5", {"type": "query", "id": 1, "rrname": "WWW.Example.COM.", "rrtype": "AAAA", "tx_id": 0}),
        # version 1: one answer event per record, its fields in `dns` itself
        event("10.0.0.5", {"type": "answer", "id": 1, "rrname": "www.example.com", "rrtype": "A", "ttl": 300,
                           "rdata": "192.0.2.1", "rcode": "NOERROR"}),
        # version 2: the answers in a list
        event("10.0.0.5", {"version": 2, "type": "answer", "id": 2, "rrname": "cdn.example.net", "rrtype": "A",
                           "rcode": "NOERROR", "answers": [
                               {"rrname": "cdn.example.net", "rrtype": "CNAME", "ttl": 60, "rdata": "e1.edge.example"},
                               {"rrname": "e1.edge.example", "rrtype": "A", "ttl": "bad", "rdata": "192.0.2.7"}]}),
        event("10.0.0.6", {"version": 2, "type": "answer", "id": 3, "rrname": "nope.example.org", "rrtype": "A",
                           "rcode": "NXDOMAIN", "authorities": [{"rrname": "example.org", "rrtype": "SOA"}]}),
        # version 3 (Suricata 8): request/response with a queries list
        event("10.0.0.7", {"version": 3, "type": "request", "id": 4, "queries": [{"rrname": "v3.example.com",
                                                                                  "rrtype": "TXT"}]}),
        event("10.0.0.7", {"version": 3, "type": "response", "id": 4, "rcode": "NOERROR",
                           "queries": [{"rrname": "v3.example.com", "rrtype": "TXT"}],
                           "answers": [{"rrname": "v3.example.com", "rrtype": "TXT", "ttl": 5, "rdata": "hello"}]}),
        event("10.0.0.8", {"type": "query", "rrname": "odd.example.com", "rrtype": "WEIRD"}),  # unknown type: 0
        event("10.0.0.9", {"app_proto": "tls"}, event_type="tls"),  # not DNS: skipped
        event("10.0.0.9", {"type": "query"}),  # no name: skipped
        json.dumps(["not", "an", "object"]),
        "",
    ])  # fmt: skip
    assert detect_format(log) == "suricata"
    records = list(read_records(log))
    queries = [(r.query.name, r.query.qtype, r.query.client) for r in records if r.query is not None]
    assert queries == [("www.example.com", 28, "10.0.0.5"), ("v3.example.com", 16, "10.0.0.7"),
                       ("odd.example.com", 0, "10.0.0.8")]  # fmt: skip
    responses = [r.response for r in records if r.response is not None]
    assert [(r.query.name, r.query.client, r.rcode) for r in responses] == [
        ("www.example.com", "10.0.0.5", 0), ("cdn.example.net", "10.0.0.5", 0), ("nope.example.org", "10.0.0.6", 3),
        ("v3.example.com", "10.0.0.7", 0)]  # fmt: skip
    assert responses[0].answers == (DnsAnswer("www.example.com", 1, 300, "192.0.2.1"),)
    assert responses[1].answers == (DnsAnswer("cdn.example.net", 5, 60, "e1.edge.example"),
                                    DnsAnswer("e1.edge.example", 1, 0, "192.0.2.7"))  # fmt: skip
    assert responses[2].answers == () and responses[3].answers[0].data == "hello"
    assert all(r.query is None or r.response is None for r in records)  # a query is judged once, not per answer


def test_a_broken_line_is_a_clear_error(tmp_path: Path, tutela_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = write(tmp_path / "eve.json", [event("10.0.0.5", {"type": "query", "rrname": "a.example.com"}), "{broken"])
    with pytest.raises(ParseError, match=r"eve\.json:2: not a JSON object"):
        list(read_records(log))
    config = write_config(tutela_home, [{"id": "dns.rebinding"}])
    assert main(["--config", str(config), "dns", "replay", str(log)]) == 2
    err = capsys.readouterr().err
    assert "not a JSON object" in err and "Traceback" not in err


def test_replay_finds_rebinding_and_an_infected_client_in_eve(
    tutela_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    infected = random_names(7, seed=7)  # 6 of them DGA-like (tests/dns/test_dga_session_live.py)
    lines = [event("10.0.0.66", {"version": 2, "type": "answer", "rrname": n, "rrtype": "A", "rcode": "NXDOMAIN"})
             for n in infected]  # fmt: skip
    lines.append(event("10.0.0.67", {"version": 2, "type": "answer", "rrname": "rebind.example.com", "rrtype": "A",
                                     "rcode": "NOERROR", "answers": [{"rrname": "rebind.example.com", "rrtype": "A",
                                                                      "ttl": 5, "rdata": "10.0.0.1"}]}))  # fmt: skip
    config = write_config(tutela_home, [{"id": "dns.rebinding"}, {"id": "dns.dga_session"}])
    rc, out = replay_json(capsys, config, write(tmp_path / "eve.json", lines), "--no-store")
    categories = {(f["name"], x["category"]) for f in out["flagged"] for x in f["findings"]}
    assert ("rebind.example.com", "rebinding") in categories
    assert [c for c in categories if c[1] == "dga-session"] != []
    assert rc == 1 and out["records"] == len(lines)


@pytest.mark.skipif(not (LOGS / "suricata-eve" / "eve-2.json").is_file(), reason="the shared access logs are absent")
def test_the_shared_suricata_sample() -> None:
    records = list(read_records(LOGS / "suricata-eve" / "eve-2.json"))
    assert sum(1 for r in records if r.query is not None) == 574
    assert sum(1 for r in records if r.response is not None) == 362
    assert list(read_records(LOGS / "suricata-eve" / "eve_udp_flow.json")) == []  # flow events only
    names = log_queries([LOGS / "suricata-eve" / "eve-2.json"])
    assert ("mail.mail.com", 1) in names and len(names) == len(set(names))
