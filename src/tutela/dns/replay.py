"""Retro-hunting: the inline detectors over a pcap, a Zeek dns.log (TSV or JSON), Suricata EVE JSON or a list of names.

Each record becomes the same `DnsQuery` (and, where the source has the answer, `DnsResponse`)
the forwarder builds, judged by the same `DnsEngine`, so verdicts match inline ones. Behavioural
detectors count in wall-clock windows, so a replayed capture is judged as if it arrived now, at
replay speed (a burst stays a burst; slow activity may look faster than it was).
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tutela.core.errors import ParseError
from tutela.core.findings import Action, Verdict
from tutela.dns import pcap, wire
from tutela.dns.engine import DnsEngine
from tutela.dns.subjects import DnsAnswer, DnsQuery, DnsResponse

MAX_LINE = 65536
_TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33, "ANY": 255,
          "HTTPS": 65, "SVCB": 64, "NULL": 10, "CAA": 257, "DNSKEY": 48, "DS": 43}  # fmt: skip
_RCODES = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5}


def qtype_of(text: str) -> int:
    text = text.strip().upper()
    if text.isdigit():
        return int(text)
    if text.startswith("TYPE") and text[4:].isdigit():
        return int(text[4:])
    if text in _TYPES:
        return _TYPES[text]
    raise ParseError(f"unknown query type {text!r}")


@dataclass(frozen=True, slots=True)
class Record:
    query: DnsQuery | None = None  # judged by request-side detectors
    response: DnsResponse | None = None  # judged by response-side detectors


def detect_format(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(4096)
    if pcap.is_pcap(head):
        return "pcap"
    text = head.decode("utf-8", "replace").lstrip()
    if text.startswith("#separator") or text.startswith("#fields"):
        return "zeek"
    if text.startswith("{") and '"event_type"' in text:
        return "suricata"
    if text.startswith("{") and '"query"' in text:
        return "zeek-json"
    return "names"


def _lines(path: Path) -> Iterator[str]:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if len(line) <= MAX_LINE:
                yield line.rstrip("\n")


def read_names(path: Path) -> Iterator[Record]:
    """One name per line, optionally followed by a query type: `www.example.com AAAA`."""
    for line in _lines(path):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        name = fields[0].rstrip(".").lower()
        qtype = qtype_of(fields[1]) if len(fields) > 1 else wire.A
        yield Record(query=DnsQuery(name, qtype, "replay", "file"))


def _zeek_answers(answers: list[str], ttls: list[str]) -> tuple[DnsAnswer, ...]:
    out = []
    for i, text in enumerate(answers[: wire.MAX_ANSWERS]):
        try:
            rtype = wire.A if ipaddress.ip_address(text).version == 4 else wire.AAAA
        except ValueError:
            rtype = 0
        ttl = ttls[i] if i < len(ttls) else "0"
        try:
            ttl_i = int(float(ttl))
        except ValueError:
            ttl_i = 0
        out.append(DnsAnswer("", rtype, ttl_i, text))
    return tuple(out)


def _zeek_record(row: dict[str, Any]) -> Record | None:
    name = str(row.get("query") or "").rstrip(".").lower()
    if not name or name == "-":
        return None
    qtype_raw = row.get("qtype")
    qtype = int(str(qtype_raw)) if str(qtype_raw).isdigit() else wire.A
    client = str(row.get("id.orig_h") or "")
    query = DnsQuery(name, qtype, client, str(row.get("proto") or "udp"))
    rcode_raw = row.get("rcode")
    if rcode_raw in (None, "-", ""):
        return Record(query=query)
    rcode = int(rcode_raw) if str(rcode_raw).isdigit() else _RCODES.get(str(row.get("rcode_name")), 0)
    answers = row.get("answers") or []
    ttls = row.get("TTLs") or []
    if isinstance(answers, str):
        answers = [] if answers == "-" else answers.split(",")
    if isinstance(ttls, str):
        ttls = [] if ttls == "-" else ttls.split(",")
    response = DnsResponse(query, rcode, _zeek_answers([str(a) for a in answers], [str(t) for t in ttls]))
    return Record(query=query, response=response)


def read_zeek(path: Path) -> Iterator[Record]:
    fields: list[str] = []
    sep = "\t"
    for line in _lines(path):
        if line.startswith("#separator"):
            sep = line.split(" ", 1)[1].encode().decode("unicode_escape") if " " in line else "\t"
            continue
        if line.startswith("#fields"):
            fields = line.split(sep)[1:]
            continue
        if line.startswith("#") or not line:
            continue
        if not fields:
            raise ParseError(f"{path}: Zeek log without a #fields header")
        row = dict(zip(fields, line.split(sep), strict=False))
        rec = _zeek_record(row)
        if rec is not None:
            yield rec


def _json_records(path: Path, record: Callable[[dict[str, Any]], Record | None]) -> Iterator[Record]:
    """JSON lines: one object per line, each turned into a Record (or skipped: None); a broken line stops with
    its line number."""
    for n, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise ParseError(f"{path}:{n}: not a JSON object") from None
        if isinstance(row, dict):
            rec = record(row)
            if rec is not None:
                yield rec


def read_zeek_json(path: Path) -> Iterator[Record]:
    return _json_records(path, _zeek_record)


def _eve_qtype(text: Any) -> int:
    try:
        return qtype_of(str(text))
    except ParseError:
        return 0  # a type this reader does not name: judged on the name alone


def _eve_record(row: dict[str, Any]) -> Record | None:
    """One Suricata DNS event: a query (`query`; `request` in EVE version 3) or an answer (`answer`;
    `response` in version 3) with its rcode and answers. The client is the flow's source (`src_ip`, which
    Suricata keeps for both directions)."""
    d = row.get("dns")
    if row.get("event_type") != "dns" or not isinstance(d, dict):
        return None
    queries = d.get("queries")
    first = queries[0] if isinstance(queries, list) and queries and isinstance(queries[0], dict) else d
    name = str(first.get("rrname") or "").rstrip(".").lower()
    if not name:
        return None
    query = DnsQuery(name, _eve_qtype(first.get("rrtype", "A")), str(row.get("src_ip") or ""),
                     str(row.get("proto") or "udp").lower())  # fmt: skip
    kind = d.get("type")
    if kind in ("query", "request"):
        return Record(query=query)
    if kind not in ("answer", "response"):
        return None
    rows = d.get("answers")
    if not isinstance(rows, list):  # version 1: one event per answer record, its fields in `dns` itself
        rows = [d] if "rdata" in d else []
    answers = []
    for a in rows[: wire.MAX_ANSWERS]:
        if isinstance(a, dict) and "rdata" in a:
            try:
                ttl = int(a.get("ttl") or 0)
            except (TypeError, ValueError):
                ttl = 0
            rdata = a["rdata"]
            answers.append(DnsAnswer(str(a.get("rrname") or name).rstrip(".").lower(), _eve_qtype(a.get("rrtype", "")),
                                     ttl, rdata if isinstance(rdata, str) else json.dumps(rdata)))  # fmt: skip
    rcode = _RCODES.get(str(d.get("rcode") or "NOERROR").upper(), 0)
    return Record(response=DnsResponse(query, rcode, tuple(answers)))


def read_suricata(path: Path) -> Iterator[Record]:
    """Suricata EVE JSON (one event per line; only `dns` events are read; versions 1 to 3)."""
    return _json_records(path, _eve_record)


def read_pcap(path: Path) -> Iterator[Record]:
    for d in pcap.read_datagrams(path):
        if d.sport != 53 and d.dport != 53 and d.sport != 5353 and d.dport != 5353:
            continue
        try:
            q = wire.parse_query(d.payload)
        except wire.WireError:
            continue
        if q.flags & 0x8000:
            query = DnsQuery(q.name, q.qtype, d.dst, "udp")
            try:
                rcode, records = wire.parse_answers(d.payload, q)
            except wire.WireError:
                continue
            answers = tuple(DnsAnswer(r.name, r.rtype, r.ttl, r.data) for r in records)
            yield Record(response=DnsResponse(query, rcode, answers))
        else:
            yield Record(query=DnsQuery(q.name, q.qtype, d.src, "udp"))


READERS = {
    "names": read_names,
    "zeek": read_zeek,
    "zeek-json": read_zeek_json,
    "suricata": read_suricata,
    "pcap": read_pcap,
}


def read_records(path: Path, fmt: str = "auto") -> Iterator[Record]:
    path = Path(path)
    if not path.is_file():
        raise ParseError(f"{path}: no such file")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt not in READERS:
        raise ParseError(f"unknown replay format {fmt!r}; use one of auto, {', '.join(READERS)}")
    return READERS[fmt](path)


def log_queries(paths: list[Path]) -> list[tuple[str, int]]:
    """The distinct (name, query type) asked in these logs (any format above), in first-seen order."""
    seen: dict[tuple[str, int], None] = {}
    for path in paths:
        for rec in read_records(path):
            if rec.query is not None:
                seen[(rec.query.name, rec.query.qtype)] = None
    return list(seen)


@dataclass
class ReplayResult:
    records: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    flagged: list[tuple[str, str, Verdict]] = field(default_factory=list)  # (name, stage, verdict)


def replay(engine: DnsEngine, records: Iterator[Record], *, keep: int = 10_000) -> ReplayResult:
    result = ReplayResult()
    for rec in records:
        result.records += 1
        for stage, subject in (("request", rec.query), ("response", rec.response)):
            if subject is None:
                continue
            if isinstance(subject, DnsResponse):
                verdict = engine.judge_response(subject)
                query = subject.query
            else:
                verdict = engine.judge_query(subject)
                query = subject
            result.actions[verdict.action.value] += 1
            if verdict.action is not Action.ALLOW or verdict.failures:
                engine.record(query, verdict, stage)
                if len(result.flagged) < keep:
                    result.flagged.append((query.name, stage, verdict))
    return result
