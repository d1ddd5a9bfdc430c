"""The fast-path parser and the answers the sensor builds, checked against dnspython."""

from __future__ import annotations

import contextlib
import struct

import dns.edns
import dns.message
import dns.name
import dns.rcode
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tutela.dns import wire


def query(name: str, rdtype: str = "A", **kw: object) -> bytes:
    return dns.message.make_query(name, rdtype, **kw).to_wire()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "rdtype", "expected"),
    [
        ("www.Example.COM", "A", "www.example.com"),
        ("_dmarc.example.org", "TXT", "_dmarc.example.org"),
        (".", "NS", ""),
        ("xn--pypal-4ve.com", "AAAA", "xn--pypal-4ve.com"),
        ("a" * 63 + ".b", "MX", "a" * 63 + ".b"),
    ],
)
def test_parse_matches_dnspython(name: str, rdtype: str, expected: str) -> None:
    data = query(name, rdtype, use_edns=0, payload=1400)
    q = wire.parse_query(data)
    msg = dns.message.from_wire(data)
    assert q.name == expected
    assert q.qtype == msg.question[0].rdtype and q.qclass == 1 and q.id == msg.id
    assert q.end == len(data) - 11  # the OPT record follows the question
    assert wire.edns_udp_size(data, q) == 1400


def test_odd_bytes_in_labels_are_escaped() -> None:
    name = dns.name.Name([b"a.b", b"c d", b"\xff", b"ex", b""])
    data = dns.message.make_query(name, "A").to_wire()
    assert wire.parse_query(data).name == "a\\046b.c\\032d.\\255.ex"


@pytest.mark.parametrize(
    ("packet", "why"),
    [
        (b"\x00" * 11, "short"),
        (struct.pack("!HHHHHH", 1, 0, 2, 0, 0, 0) + b"\x00\x00\x01\x00\x01", "qdcount"),
        (struct.pack("!HHHHHH", 1, 0, 0, 0, 0, 0), "qdcount"),
        (struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01", "pointer loop"),
        (struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x20\x00\x01\x00\x01", "forward pointer"),
        (struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x03abc", "runs past end"),
        (struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x03abc\x00\x00", "type truncated"),
        (struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x80abc\x00\x00\x01\x00\x01", "label type"),
        (struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + (b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01", "long"),
    ],
)
def test_malformed_raises_wire_error(packet: bytes, why: str) -> None:
    with pytest.raises(wire.WireError):
        wire.parse_query(packet)


def test_error_and_sinkhole_answers_parse() -> None:
    data = query("bad.example.com", "A", use_edns=0)
    q = wire.parse_query(data)
    nx = dns.message.from_wire(wire.make_error(data, q, wire.NXDOMAIN, ede=wire.EDE_BLOCKED))
    assert nx.rcode() == dns.rcode.NXDOMAIN and nx.id == q.id
    assert nx.options[0].code == dns.edns.EDE and nx.options[0].code == 15  # type: ignore[attr-defined]
    assert str(nx.question[0].name) == "bad.example.com."
    sink = dns.message.from_wire(wire.make_sinkhole(data, q, "192.0.2.1", "2001:db8::1", 42))
    assert sink.answer[0].ttl == 42 and sink.answer[0][0].address == "192.0.2.1"
    data6 = query("bad.example.com", "AAAA")
    q6 = wire.parse_query(data6)
    sink6 = dns.message.from_wire(wire.make_sinkhole(data6, q6, "192.0.2.1", "2001:db8::1", 42))
    assert sink6.answer[0][0].address == "2001:db8::1" and sink6.edns < 0
    garbage = b"\x12\x34\x01\x00" + b"\xff" * 20
    formerr = wire.make_error(garbage, None, wire.FORMERR)
    assert formerr[:2] == b"\x12\x34" and formerr[3] & 0x0F == 1 and len(formerr) == 12


def test_parse_answers_with_compression() -> None:
    q = dns.message.make_query("www.example.com", "A")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("www.example.com.", 60, "IN", "CNAME", "edge.example.net."))
    r.answer.append(dns.rrset.from_text("edge.example.net.", 30, "IN", "A", "10.1.2.3", "192.0.2.7"))
    data = r.to_wire()
    pq = wire.parse_query(data)
    rcode, rrs = wire.parse_answers(data, pq)
    assert rcode == 0
    assert rrs[0] == ("www.example.com", 5, 60, "edge.example.net")
    assert sorted((x.name, x.rtype, x.ttl, x.data) for x in rrs[1:]) == [
        ("edge.example.net", 1, 30, "10.1.2.3"),
        ("edge.example.net", 1, 30, "192.0.2.7"),
    ]


LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=20)


@settings(max_examples=300, deadline=None)
@given(labels=st.lists(LABEL, min_size=1, max_size=6), rdtype=st.sampled_from(["A", "AAAA", "TXT", "MX", "HTTPS"]))
def test_fuzz_valid_queries_agree_with_dnspython(labels: list[str], rdtype: str) -> None:
    data = query(".".join(labels), rdtype)
    q = wire.parse_query(data)
    msg = dns.message.from_wire(data)
    assert q.name == msg.question[0].name.to_text(omit_final_dot=True).lower()
    assert q.qtype == msg.question[0].rdtype


@settings(max_examples=1500, deadline=None)
@given(data=st.binary(max_size=300))
def test_fuzz_random_bytes_only_wire_errors(data: bytes) -> None:
    try:
        q = wire.parse_query(data)
    except wire.WireError:
        return
    assert 12 < q.end <= len(data)
    wire.edns_udp_size(data, q)
    with contextlib.suppress(wire.WireError):
        wire.parse_answers(data, q)
    wire.make_error(data, q, wire.FORMERR)


@settings(max_examples=1500, deadline=None)
@given(
    name=st.lists(LABEL, min_size=1, max_size=4),
    flips=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.integers(0, 90),
)
def test_fuzz_mutated_queries(name: list[str], flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(query(".".join(name), "A", use_edns=0))
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    packet = bytes(data[: max(cut, 1)] if cut < len(data) else data)
    try:
        q = wire.parse_query(packet)
    except wire.WireError:
        return
    wire.make_error(packet, q, wire.SERVFAIL)
    wire.make_sinkhole(packet, q, "0.0.0.0", "::", 1)
