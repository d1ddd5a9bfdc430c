"""A minimal DNS wire codec for the scanner's hot path: build a query, read an answer's rcode and
its A/AAAA/CNAME/NS/DNAME records.

dnspython spends ~1 ms of CPU per query and answer on a loaded 2-core machine building and
parsing full messages; the scanner needs a few fields. This codec reads only those, bounds every
loop (compression pointers, name length, record counts), and raises `WireError` on anything it
does not understand, upon which the caller falls back to dnspython.
"""

from __future__ import annotations

import socket
import struct

TYPE_CODES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33, "DNAME": 39}
TYPE_NAMES = {v: k for k, v in TYPE_CODES.items()}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
_NAME_TYPES = (2, 5, 39)
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*")
MAX_RECORDS = 256
MAX_POINTERS = 32


class WireError(ValueError):
    """The message is not one this codec reads; use the full parser."""


def encode_name(name: str) -> bytes:
    out = bytearray()
    if name and name != ".":
        for label in name.rstrip(".").split("."):
            raw = label.encode("ascii")  # zone names are ASCII (IDNs are punycode); else UnicodeError
            if not 0 < len(raw) < 64 or not set(raw) <= _SAFE:
                raise WireError(f"label {label!r} needs the full encoder")
            out.append(len(raw))
            out += raw
    out.append(0)
    if len(out) > 255:
        raise WireError("name too long")
    return bytes(out)


def build_query(qid: int, name: str, qtype: int, *, rd: bool = True, payload: int = 1232) -> bytes:
    header = struct.pack("!HHHHHH", qid, 0x0100 if rd else 0, 1, 0, 0, 1)
    opt = b"\x00" + struct.pack("!HHIH", 41, payload, 0, 0)
    return header + encode_name(name) + struct.pack("!HH", qtype, 1) + opt


def _name(data: bytes, offset: int) -> tuple[str, int]:
    """(lower-case name without the trailing dot, offset after it in the record)."""
    labels: list[str] = []
    end = -1
    jumps = 0
    length = 0
    while True:
        if offset >= len(data):
            raise WireError("name runs past the message")
        n = data[offset]
        if n & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise WireError("truncated pointer")
            if end < 0:
                end = offset + 2
            jumps += 1
            if jumps > MAX_POINTERS:
                raise WireError("compression loop")
            offset = ((n & 0x3F) << 8) | data[offset + 1]
            continue
        if n & 0xC0:
            raise WireError("unknown label type")
        offset += 1
        if n == 0:
            break
        label = data[offset : offset + n]
        if len(label) != n or not set(label) <= _SAFE:
            raise WireError("label needs the full parser")
        length += n + 1
        if length > 255:
            raise WireError("name too long")
        labels.append(label.decode("ascii").lower())
        offset += n
    return ".".join(labels), (end if end >= 0 else offset)


def parse_answer(
    data: bytes, qid: int, qname: str, qtype: int
) -> tuple[str, bool, tuple[tuple[str, str, str], ...]] | None:
    """(rcode, truncated, answers) of a response to (qid, qname, qtype); None if it answers
    another question (ignore it). Raises WireError for what this codec does not read."""
    if len(data) < 12:
        raise WireError("short message")
    rid, flags, qd, an, _ns, _ar = struct.unpack_from("!HHHHHH", data)
    if rid != qid or not flags & 0x8000:
        return None
    if qd != 1 or an > MAX_RECORDS:
        raise WireError("unusual section counts")
    name, offset = _name(data, 12)
    if offset + 4 > len(data):
        raise WireError("truncated question")
    rtype, rclass = struct.unpack_from("!HH", data, offset)
    if name != qname.rstrip(".").lower() or rtype != qtype or rclass != 1:
        return None
    offset += 4
    rcode = RCODES.get(flags & 0x0F, f"RCODE{flags & 0x0F}")
    answers = []
    for _ in range(an):
        owner, offset = _name(data, offset)
        if offset + 10 > len(data):
            raise WireError("truncated record")
        t, _c, _ttl, rdlen = struct.unpack_from("!HHIH", data, offset)
        offset += 10
        rdata_end = offset + rdlen
        if rdata_end > len(data):
            raise WireError("truncated rdata")
        if t == 1 and rdlen == 4:
            answers.append((owner, "A", socket.inet_ntop(socket.AF_INET, data[offset:rdata_end])))
        elif t == 28 and rdlen == 16:
            answers.append((owner, "AAAA", socket.inet_ntop(socket.AF_INET6, data[offset:rdata_end])))
        elif t in _NAME_TYPES:
            target, _ = _name(data, offset)
            answers.append((owner, TYPE_NAMES[t], target))
        offset = rdata_end
    return rcode, bool(flags & 0x0200), tuple(answers)
