"""The scanner's minimal wire codec: parity with dnspython, and hostile input only ever raises WireError."""

from __future__ import annotations

import contextlib
import struct

import dns.message
import dns.rcode
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tutela.dns.takeover import wire
from tutela.dns.takeover.client import to_answer


def _response(qname: str, qtype: str, rcode: int, *rrsets: tuple[str, str, list[str]]) -> dns.message.Message:
    q = dns.message.make_query(qname, qtype, use_edns=0)
    q.id = 4242
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    for name, rtype, datas in rrsets:
        r.answer.append(dns.rrset.from_text_list(name, 60, "IN", rtype, datas))
    return r


def test_query_is_what_dnspython_reads() -> None:
    m = dns.message.from_wire(wire.build_query(7, "Sub.Example.COM", 28))
    assert m.id == 7 and str(m.question[0].name) == "Sub.Example.COM." and m.question[0].rdtype == 28
    assert m.edns == 0 and m.payload == 1232 and m.flags & dns.flags.RD
    with pytest.raises(wire.WireError):
        wire.build_query(1, "a" * 64 + ".com", 1)
    with pytest.raises(wire.WireError):
        wire.build_query(1, "we ird.com", 1)


@pytest.mark.parametrize(
    "rrsets, rcode",
    [
        ((("www.example.com.", "A", ["192.0.2.1", "192.0.2.2"]),), 0),
        ((("www.example.com.", "AAAA", ["2001:db8::1"]),), 0),
        (
            (
                ("www.example.com.", "CNAME", ["Edge.CDN.net."]),
                ("edge.cdn.net.", "CNAME", ["e1.cdn.net."]),
                ("e1.cdn.net.", "A", ["203.0.113.9"]),
            ),
            0,
        ),
        ((), 3),
        ((("www.example.com.", "TXT", ['"hello"']),), 0),
    ],
)
def test_parity_with_dnspython(rrsets: tuple, rcode: int) -> None:  # type: ignore[type-arg]
    msg = _response("www.example.com", "A", rcode, *rrsets)
    data = msg.to_wire()  # with name compression
    rc, tc, answers = wire.parse_answer(data, 4242, "www.example.com", 1)  # type: ignore[misc]
    full = to_answer(dns.message.from_wire(data))
    assert rc == full.rcode and not tc
    assert answers == tuple(a for a in full.answers if a[1] in ("A", "AAAA", "CNAME"))


def test_answers_to_other_questions_are_ignored() -> None:
    data = _response("www.example.com", "A", 0, ("www.example.com.", "A", ["192.0.2.1"])).to_wire()
    assert wire.parse_answer(data, 1, "www.example.com", 1) is None  # another id
    assert wire.parse_answer(data, 4242, "other.example.com", 1) is None  # another name
    assert wire.parse_answer(data, 4242, "www.example.com", 28) is None  # another type


def test_compression_loop_and_truncation_raise_wire_error() -> None:
    header = struct.pack("!HHHHHH", 9, 0x8180, 1, 1, 0, 0)
    question = wire.encode_name("a.example") + struct.pack("!HH", 1, 1)
    loop = b"\xc0" + bytes([12 + len(question)])  # a pointer to itself
    with pytest.raises(wire.WireError):
        wire.parse_answer(
            header + question + loop + struct.pack("!HHIH", 1, 1, 0, 4) + b"\x01\x02\x03\x04", 9, "a.example", 1
        )
    good = _response("www.example.com", "A", 0, ("www.example.com.", "A", ["192.0.2.1"])).to_wire()
    for cut in (5, 20, len(good) - 12):  # the last 11 bytes are the OPT record, which is not read
        with pytest.raises(wire.WireError):
            wire.parse_answer(good[:cut], 4242, "www.example.com", 1)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_crash(data: bytes) -> None:
    with contextlib.suppress(wire.WireError):
        wire.parse_answer(data, int.from_bytes(data[:2] or b"\0\0", "big"), "www.example.com", 1)
