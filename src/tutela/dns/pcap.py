"""A small pure-Python reader of pcap and pcapng files: the UDP datagrams they hold.

Link types: Ethernet (with 802.1Q tags), BSD loopback, raw IP, Linux cooked (SLL and SLL2).
IPv4 and IPv6 (no extension headers), UDP only. Bounded: records larger than MAX_RECORD are
skipped, and a truncated or corrupt file ends the iteration with a ParseError.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from tutela.core.errors import ParseError

MAX_RECORD = 262_144
PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


class Datagram(NamedTuple):
    ts: float
    src: str
    dst: str
    sport: int
    dport: int
    payload: bytes


def is_pcap(head: bytes) -> bool:
    return head[:4] in PCAP_MAGICS or head[:4] == PCAPNG_MAGIC


def _ip_udp(packet: bytes, ts: float) -> Datagram | None:
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 4:
        if len(packet) < 20:
            return None
        ihl = (packet[0] & 0x0F) * 4
        if packet[9] != 17 or len(packet) < ihl + 8:
            return None
        if struct.unpack_from("!H", packet, 6)[0] & 0x1FFF:  # a later fragment
            return None
        src = str(ipaddress.IPv4Address(packet[12:16]))
        dst = str(ipaddress.IPv4Address(packet[16:20]))
        udp = packet[ihl:]
    elif version == 6:
        if len(packet) < 48 or packet[6] != 17:
            return None
        src = str(ipaddress.IPv6Address(packet[8:24]))
        dst = str(ipaddress.IPv6Address(packet[24:40]))
        udp = packet[40:]
    else:
        return None
    sport, dport, length = struct.unpack_from("!HHH", udp)
    return Datagram(ts, src, dst, sport, dport, udp[8 : max(8, min(length, len(udp)))])


def _link(linktype: int, frame: bytes, ts: float) -> Datagram | None:
    if linktype == 1:  # Ethernet
        if len(frame) < 14:
            return None
        off = 12
        ethertype = struct.unpack_from("!H", frame, off)[0]
        while ethertype in (0x8100, 0x88A8) and len(frame) >= off + 6:
            off += 4
            ethertype = struct.unpack_from("!H", frame, off)[0]
        if ethertype not in (0x0800, 0x86DD):
            return None
        return _ip_udp(frame[off + 2 :], ts)
    if linktype == 0 or linktype == 108:  # BSD loopback: 4-byte address family
        return _ip_udp(frame[4:], ts)
    if linktype in (101, 12, 14, 228, 229):  # raw IP
        return _ip_udp(frame, ts)
    if linktype == 113:  # Linux cooked v1
        return _ip_udp(frame[16:], ts)
    if linktype == 276:  # Linux cooked v2
        return _ip_udp(frame[20:], ts)
    return None


def _read(fh: BinaryIO, n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise ParseError("pcap file is truncated")
    return data


def _classic(fh: BinaryIO, head: bytes) -> Iterator[Datagram]:
    endian = PCAP_MAGICS[head[:4]]
    nano = head[:4] in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    rest = _read(fh, 20)
    linktype = struct.unpack(endian + "I", rest[16:20])[0] & 0xFFFF
    rec = struct.Struct(endian + "IIII")
    while True:
        hdr = fh.read(16)
        if not hdr:
            return
        if len(hdr) < 16:
            raise ParseError("pcap record header is truncated")
        sec, frac, caplen, _ = rec.unpack(hdr)
        if caplen > MAX_RECORD:
            raise ParseError(f"pcap record of {caplen} bytes exceeds {MAX_RECORD}")
        frame = _read(fh, caplen)
        dgram = _link(linktype, frame, sec + frac / (1e9 if nano else 1e6))
        if dgram is not None:
            yield dgram


def _pcapng(fh: BinaryIO) -> Iterator[Datagram]:
    endian = "<"
    links: list[tuple[int, float]] = []
    first = True
    while True:
        hdr = fh.read(8)
        if not hdr:
            return
        if len(hdr) < 8:
            raise ParseError("pcapng block header is truncated")
        if first:
            magic = _read(fh, 4)
            endian = "<" if magic == b"\x4d\x3c\x2b\x1a" else ">"
            btype, blen = struct.unpack(endian + "II", hdr)
            body = magic + _read(fh, blen - 12) if blen >= 12 else b""
            first = False
        else:
            btype, blen = struct.unpack(endian + "II", hdr)
            if blen < 12 or blen > MAX_RECORD + 64:
                raise ParseError(f"pcapng block length {blen} is invalid")
            body = _read(fh, blen - 8)
        if btype == 0x0A0D0D0A:
            links = []
        elif btype == 1:  # interface description
            linktype = struct.unpack_from(endian + "H", body, 0)[0]
            links.append((linktype, 1e6))
        elif btype == 6 and len(body) >= 24:  # enhanced packet
            iface, ts_hi, ts_lo, caplen = struct.unpack_from(endian + "IIII", body, 0)
            if iface < len(links):
                linktype, res = links[iface]
                dgram = _link(linktype, body[20 : 20 + caplen], ((ts_hi << 32) | ts_lo) / res)
                if dgram is not None:
                    yield dgram
        elif btype == 3 and links:  # simple packet
            dgram = _link(links[0][0], body[4:-4], 0.0)
            if dgram is not None:
                yield dgram


def read_datagrams(path: Path) -> Iterator[Datagram]:
    with Path(path).open("rb") as fh:
        head = fh.read(4)
        if head in PCAP_MAGICS:
            yield from _classic(fh, head)
        elif head == PCAPNG_MAGIC:
            fh.seek(0)
            yield from _pcapng(fh)
        else:
            raise ParseError(f"{path} is not a pcap or pcapng file")


def write_pcap(path: Path, datagrams: list[tuple[str, str, int, int, bytes]]) -> None:
    """A classic pcap (raw IPv4 link type) of UDP datagrams: for tests and samples."""
    with Path(path).open("wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
        for i, (src, dst, sport, dport, payload) in enumerate(datagrams):
            udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
            ip = struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0,
                ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed,
            )  # fmt: skip
            frame = ip + udp
            fh.write(struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)) + frame)
