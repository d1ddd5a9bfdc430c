"""DNS wire format, the fast path: header and question read straight from bytes.

Every inline packet goes through `parse_query`, so it is written for speed: no dnspython, no
objects beyond one small tuple. It bounds everything it reads (name length, label count,
compression pointers) and raises `WireError` on anything malformed, never another exception.
Answers the sensor makes itself (FORMERR, SERVFAIL, NXDOMAIN, REFUSED, sinkhole) are built here
too, as real DNS messages: the header and question are copied from the query, an OPT record is
added when the query had one (RFC 6891), with an Extended DNS Error (RFC 8914) on blocks.
Response answers (A, AAAA, CNAME, ...) are read by `parse_answers` for response-side detectors.
"""

from __future__ import annotations

import itertools
import socket
import struct
from typing import NamedTuple

MAX_MESSAGE = 65535
MAX_NAME = 255
MAX_POINTERS = 32
MAX_ANSWERS = 64

# rcodes
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
# types
A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT, HTTPS = 1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 65
# Extended DNS Error info codes (RFC 8914)
EDE_BLOCKED, EDE_FILTERED = 15, 17

_HEADER = struct.Struct("!HHHHHH")
_U16 = struct.Struct("!H")
_RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength


class WireError(ValueError):
    """A malformed DNS message."""


class Question(NamedTuple):
    """What the fast path reads from a query. `end` is the offset just past the question."""

    id: int
    flags: int
    name: str  # lower-case, no trailing dot, "" for the root; non-ASCII bytes escaped as \\DDD
    qtype: int
    qclass: int
    end: int
    qdcount: int
    ancount: int
    nscount: int
    arcount: int


_new_question = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path


def _escape_label(label: bytes) -> str:
    out = []
    for b in label:
        if b in (0x2E, 0x5C) or b <= 0x20 or b >= 0x7F:
            out.append(f"\\{b:03d}")
        else:
            out.append(chr(b))
    return "".join(out)


def read_name(data: bytes, offset: int) -> tuple[str, int]:
    """A (possibly compressed) name at `offset`: (lower-case text, offset after it in the message).

    Pointers must point backwards and are followed at most MAX_POINTERS times, so a compression
    loop is a WireError rather than a hang.
    """
    labels: list[str] = []
    length = 0
    end = -1
    jumps = 0
    size = len(data)
    pos = offset
    while True:
        if pos >= size:
            raise WireError("name runs past the end of the message")
        n = data[pos]
        if n == 0:
            pos += 1
            break
        kind = n & 0xC0
        if kind == 0xC0:
            if pos + 1 >= size:
                raise WireError("truncated compression pointer")
            target = ((n & 0x3F) << 8) | data[pos + 1]
            if end < 0:
                end = pos + 2
            if target >= pos:
                raise WireError("compression pointer does not point backwards")
            jumps += 1
            if jumps > MAX_POINTERS:
                raise WireError("too many compression pointers")
            pos = target
            continue
        if kind:
            raise WireError("unknown label type")
        label = data[pos + 1 : pos + 1 + n]
        if len(label) != n:
            raise WireError("label runs past the end of the message")
        length += n + 1
        if length > MAX_NAME:
            raise WireError("name longer than 255 octets")
        text = _label_text(label)
        labels.append(text)
        pos += n + 1
    return ".".join(labels).lower(), (end if end >= 0 else pos)


def parse_query(data: bytes) -> Question:
    """Header and the one question of a message. Raises WireError if malformed."""
    if len(data) < 12:
        raise WireError("message shorter than a DNS header")
    if len(data) > MAX_MESSAGE:
        raise WireError("message longer than 65535 octets")
    qid, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
    if qd != 1:
        raise WireError(f"qdcount is {qd}, expected 1")
    # Fast path for the common uncompressed question; read_name handles the rest.
    pos = 12
    size = len(data)
    parts: list[bytes] = []
    total = 0
    while True:
        if pos >= size:
            raise WireError("question runs past the end of the message")
        n = data[pos]
        if n == 0:
            pos += 1
            name = _name_text(parts)
            break
        if n & 0xC0:
            name, pos = read_name(data, 12)
            break
        total += n + 1
        if total > MAX_NAME:
            raise WireError("name longer than 255 octets")
        end = pos + 1 + n
        if end > size:
            raise WireError("label runs past the end of the message")
        parts.append(data[pos + 1 : end])
        pos = end
    if pos + 4 > size:
        raise WireError("question type/class truncated")
    qtype = (data[pos] << 8) | data[pos + 1]
    qclass = (data[pos + 2] << 8) | data[pos + 3]
    return _new_question(Question, (qid, flags, name, qtype, qclass, pos + 4, qd, an, ns, ar))


_PLAIN = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*"


def _name_text(parts: list[bytes]) -> str:
    raw = b".".join(parts)
    if not raw.translate(None, _PLAIN + b".") and raw.count(b".") == len(parts) - 1:
        return raw.decode("ascii").lower()
    return ".".join(_label_text(p) for p in parts).lower()


def _label_text(label: bytes) -> str:
    if not label.translate(None, _PLAIN):
        return label.decode("ascii")
    return _escape_label(label)


class QuestionMemo:
    """`parse_query` memoised by the raw question bytes, for the hot path.

    Most queries repeat a name asked moments ago, so decoding its labels again is waste. The key is
    the bytes from offset 12 through the first zero byte plus type and class. A parse is only
    remembered when that first zero byte really ends the name (no compression, no zero byte inside
    a label), so equal keys are equal questions: the memo returns what `parse_query` would, with
    the id, flags and counts read from this message's header. Bounded: when full, the oldest
    sixty-fourth is dropped.
    """

    __slots__ = ("_memo", "hits", "max_size")

    def __init__(self, max_size: int = 50_000) -> None:
        self._memo: dict[bytes, tuple[str, int, int, int]] = {}  # key -> (name, qtype, qclass, end)
        self.max_size = max_size
        self.hits = 0

    def parse(self, data: bytes) -> Question:
        zero = data.find(0, 12)
        end = zero + 5
        if zero < 0 or end > len(data) or len(data) > MAX_MESSAGE or data[4:6] != b"\x00\x01":
            return parse_query(data)  # odd or malformed: the full parser decides (and raises)
        key = data[12:end]
        known = self._memo.get(key)
        if known is None:
            q = parse_query(data)
            if q.end == end and self.max_size:
                memo = self._memo
                if len(memo) >= self.max_size:  # drop the oldest sixty-fourth: a short, bounded pause
                    for old in list(itertools.islice(memo, max(1, self.max_size // 64))):
                        del memo[old]
                memo[key] = (q.name, q.qtype, q.qclass, end)
            return q
        self.hits += 1
        qid, flags, qd, an, ns, ar = _HEADER.unpack_from(data)
        return _new_question(Question, (qid, flags, known[0], known[1], known[2], end, qd, an, ns, ar))


def edns_udp_size(data: bytes, q: Question) -> int | None:
    """The requester's UDP payload size from its OPT record, or None without EDNS. Tolerant: a
    malformed additional section means "no EDNS" (the upstream will judge the message)."""
    if not q.arcount or q.ancount or q.nscount:
        return None
    pos = q.end
    # The usual case, one OPT record owned by the root right after the question, read in place.
    if data[pos : pos + 3] == b"\x00\x00\x29" and len(data) >= pos + 11:
        return max(512, (data[pos + 3] << 8) | data[pos + 4])
    try:
        for _ in range(min(q.arcount, 8)):
            _, pos = read_name(data, pos)
            rtype, rclass, _ttl, rdlen = _RR_FIXED.unpack_from(data, pos)
            if rtype == OPT:
                return max(512, int(rclass))
            pos += 10 + rdlen
    except (WireError, struct.error):
        return None
    return None


def _opt_record(ede: int | None, udp_size: int = 1232) -> bytes:
    rdata = b""
    if ede is not None:
        rdata = struct.pack("!HHH", 15, 2, ede)
    return b"\x00" + struct.pack("!HHIH", OPT, udp_size, 0, len(rdata)) + rdata


def make_error(data: bytes, q: Question | None, rcode: int, *, ede: int | None = None) -> bytes:
    """A response with `rcode` and no records. With a parsed question it echoes the question
    (and answers EDNS with EDNS); without one (FORMERR for garbage) it is a bare header."""
    if q is None:
        qid = _U16.unpack_from(data)[0] if len(data) >= 2 else 0
        opcode_rd = (_U16.unpack_from(data, 2)[0] & 0x7900) if len(data) >= 4 else 0
        return _HEADER.pack(qid, 0x8000 | opcode_rd | 0x0080 | rcode, 0, 0, 0, 0)
    edns = edns_udp_size(data, q) is not None
    flags = 0x8000 | (q.flags & 0x7910) | 0x0080 | rcode  # QR, opcode, RD, CD kept; RA set
    head = _HEADER.pack(q.id, flags, 1, 0, 0, 1 if edns else 0)
    return head + data[12 : q.end] + (_opt_record(ede) if edns else b"")


def make_sinkhole(data: bytes, q: Question, ipv4: str, ipv6: str, ttl: int) -> bytes:
    """An authoritative-looking answer pointing the name at the sinkhole: A for A, AAAA for
    AAAA, NOERROR with no records (NODATA) for other types."""
    edns = edns_udp_size(data, q) is not None
    if q.qtype == A:
        rdata = socket.inet_pton(socket.AF_INET, ipv4)
    elif q.qtype == AAAA:
        rdata = socket.inet_pton(socket.AF_INET6, ipv6)
    else:
        rdata = b""
    flags = 0x8000 | (q.flags & 0x7910) | 0x0080
    head = _HEADER.pack(q.id, flags, 1, 1 if rdata else 0, 0, 1 if edns else 0)
    answer = b""
    if rdata:
        answer = b"\xc0\x0c" + struct.pack("!HHIH", q.qtype, 1, ttl, len(rdata)) + rdata
    return head + data[12 : q.end] + answer + (_opt_record(None) if edns else b"")


def truncate(response: bytes, q: Question) -> bytes:
    """A TC response with the question only, for a UDP client whose buffer is too small."""
    flags = _U16.unpack_from(response, 2)[0] | 0x0200
    return _HEADER.pack(q.id, flags, 1, 0, 0, 0) + response[12 : q.end]


def with_id(data: bytes, qid: int) -> bytes:
    return _U16.pack(qid) + data[2:]


def response_id_and_question(data: bytes) -> tuple[int, int, bytes]:
    """(id, flags, raw question bytes) of an upstream response, to match it to a pending query."""
    q = parse_query(data)
    return q.id, q.flags, data[12 : q.end]


class RR(NamedTuple):
    name: str
    rtype: int
    ttl: int
    data: str


def parse_answers(data: bytes, q: Question, limit: int = MAX_ANSWERS) -> tuple[int, list[RR]]:
    """(rcode, answer records) of a response whose question is `q` (parsed from the response or from
    the query it answers: the question bytes are the same). Rcode and counts are read from `data`.
    A and AAAA in address form, names for CNAME/NS/PTR/DNAME, "" for other types."""
    if len(data) < 12:
        raise WireError("message shorter than a DNS header")
    rcode = data[3] & 0x0F
    ancount = (data[6] << 8) | data[7]
    out: list[RR] = []
    pos = q.end
    size = len(data)
    for _ in range(min(ancount, limit)):
        if data[pos : pos + 2] == b"\xc0\x0c":  # the usual pointer to the question's name
            name = q.name
            pos += 2
        else:
            name, pos = read_name(data, pos)
        if pos + 10 > size:
            raise WireError("record header truncated")
        rtype, _rclass, ttl, rdlen = _RR_FIXED.unpack_from(data, pos)
        pos += 10
        if pos + rdlen > size:
            raise WireError("record data truncated")
        rdata = data[pos : pos + rdlen]
        if rtype == A and rdlen == 4:
            text = socket.inet_ntop(socket.AF_INET, rdata)
        elif rtype == AAAA and rdlen == 16:
            text = socket.inet_ntop(socket.AF_INET6, rdata)
        elif rtype in (CNAME, NS, PTR, 39):
            text = read_name(data, pos)[0]
        else:
            text = ""
        out.append(RR(name, rtype, ttl, text))
        pos += rdlen
    return rcode, out


def build_query(name: str, qtype: int = A, qid: int = 0, *, rd: bool = True) -> bytes:
    """A plain query (used by tests, the benchmark and replay); names must be ASCII."""
    labels = [lab.encode("ascii") for lab in name.rstrip(".").split(".") if lab]
    qname = b"".join(bytes([len(lab)]) + lab for lab in labels) + b"\x00"
    return _HEADER.pack(qid, 0x0100 if rd else 0, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, 1)
