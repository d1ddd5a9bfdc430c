"""A zip reader that reads archives the way PyTorch's loader (miniz) does, not the way zipfile does.

torch finds records through the central directory and reads each one at its local header,
skipping that header by *its own* name and extra lengths; it does not insist that the local
name equals the central one, ignores most flag bits (an "encrypted" bit included) and does
not stop at a bad CRC. zipfile refuses all three, which is how scanners built on zipfile were
bypassed (picklescan CVE-2025-1944, -1945, -10156). This reader takes the central directory
as torch does, also walks the local headers from the start (members a central directory
hides are still read), and reports every inconsistency as a note instead of failing.
Stored members are zero-copy windows; deflated ones are inflated under the caller's limits.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

_EOCD = b"PK\x05\x06"
_EOCD64_LOC = b"PK\x06\x07"
_CDH = b"PK\x01\x02"
_LFH = b"PK\x03\x04"
_LFH_S = struct.Struct("<4sHHHHHIIIHH")
_CDH_S = struct.Struct("<4sHHHHHHIIIHHHHHII")
_EOCD_S = struct.Struct("<4sHHHHIIH")


class ZipError(Exception):
    """The archive cannot be read at all."""


@dataclass(slots=True)
class ZipMember:
    name: str
    method: int
    flags: int
    compressed_size: int
    size: int
    crc: int
    header_offset: int
    data_offset: int = -1
    local_name: str | None = None
    source: str = "central"  # "central" | "local"


@dataclass(slots=True)
class ZipListing:
    members: list[ZipMember] = field(default_factory=list)
    notes: list[tuple[int, str]] = field(default_factory=list)  # (offset, what is inconsistent)
    prefix: int = 0  # bytes before the first local header (polyglot files)


def _zip64_extra(extra: bytes, size: int, csize: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, ln = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + ln]
        if tag == 0x0001:
            vals = list(struct.unpack_from(f"<{len(body) // 8}Q", body)) if len(body) >= 8 else []
            if size == 0xFFFFFFFF and vals:
                size = vals.pop(0)
            if csize == 0xFFFFFFFF and vals:
                csize = vals.pop(0)
            if offset == 0xFFFFFFFF and vals:
                offset = vals.pop(0)
            break
        pos += 4 + ln
    return size, csize, offset


def _find_eocd(buf: Any, start: int, end: int) -> int:
    lo = max(start, end - 22 - 0xFFFF)
    return int(buf.rfind(_EOCD, lo, end))


def list_members(buf: Any, start: int = 0, end: int | None = None, *, max_members: int = 100_000) -> ZipListing:
    end = len(buf) if end is None else end
    out = ZipListing()
    by_offset: dict[int, ZipMember] = {}
    eocd = _find_eocd(buf, start, end)
    if eocd >= 0 and eocd + 22 <= end:
        _, _, _, _, total, cd_size, cd_off, _ = _EOCD_S.unpack_from(buf, eocd)
        cd_end = eocd
        loc = eocd - 20
        if loc >= start and bytes(buf[loc : loc + 4]) == _EOCD64_LOC:
            eocd64 = struct.unpack_from("<Q", buf, loc + 8)[0] + start
            if start <= eocd64 and eocd64 + 56 <= end and bytes(buf[eocd64 : eocd64 + 4]) == b"PK\x06\x06":
                total, cd_size, cd_off = struct.unpack_from("<QQQ", buf, eocd64 + 32)
                cd_end = eocd64
        # Archives with data in front (self-extracting, polyglots): offsets are relative to the
        # central directory's real position, as miniz and zipfile both compute.
        shift = cd_end - cd_size - cd_off - start
        if shift < 0:
            shift = 0
        out.prefix = shift
        pos = start + cd_off + shift
        for _ in range(min(total, max_members + 1)):
            if pos + 46 > end or bytes(buf[pos : pos + 4]) != _CDH:
                out.notes.append((pos - start, "central directory entry missing or truncated"))
                break
            f = _CDH_S.unpack_from(buf, pos)
            flags, method, crc, csize, size, nlen, elen, clen, hoff = (
                f[3],
                f[4],
                f[7],
                f[8],
                f[9],
                f[10],
                f[11],
                f[12],
                f[16],
            )
            name_b = bytes(buf[pos + 46 : pos + 46 + nlen])
            extra = bytes(buf[pos + 46 + nlen : pos + 46 + nlen + elen])
            size, csize, hoff = _zip64_extra(extra, size, csize, hoff)
            m = ZipMember(name_b.decode("utf-8", "replace"), method, flags, csize, size, crc, start + hoff + shift)
            out.members.append(m)
            by_offset[m.header_offset] = m
            pos += 46 + nlen + elen + clen
        if len(out.members) > max_members:
            raise ZipError(f"more than {max_members} members")
    # Local headers, as torch finds data and as a broken central directory cannot hide them.
    pos = buf.find(_LFH, start, end)
    if pos > start and eocd < 0:
        out.prefix = pos - start
    count = 0
    while pos >= 0 and pos + 30 <= end:
        count += 1
        if count > max_members:
            raise ZipError(f"more than {max_members} local headers")
        _, _, flags, method, _, _, crc, csize, size, nlen, elen = _LFH_S.unpack_from(buf, pos)
        name_b = bytes(buf[pos + 30 : pos + 30 + nlen])
        extra = bytes(buf[pos + 30 + nlen : pos + 30 + nlen + elen])
        size, csize, _ = _zip64_extra(extra, size, csize, 0)
        data_off = pos + 30 + nlen + elen
        local_name = name_b.decode("utf-8", "replace")
        known = by_offset.get(pos)
        if known is not None:
            m = known
            m.data_offset = data_off
            m.local_name = local_name
            if local_name != m.name:
                out.notes.append((pos - start, f"local name {local_name!r} differs from central name {m.name!r}"))
            csize = m.compressed_size
        else:
            if flags & 0x08 and csize == 0:
                csize = _scan_data_descriptor(buf, data_off, end)
            m = ZipMember(local_name, method, flags, csize, size, crc, pos, data_off, local_name, "local")
            out.members.append(m)
            if eocd >= 0:
                out.notes.append((pos - start, f"member {local_name!r} is missing from the central directory"))
        if m.flags & 0x01:
            out.notes.append((pos - start, f"member {m.name!r} has the encrypted flag set (torch ignores it)"))
        nxt = data_off + max(csize, 0)
        if nxt <= pos:
            break
        pos = buf.find(_LFH, nxt, end) if bytes(buf[nxt : nxt + 4]) != _LFH else nxt
    for m in out.members:
        if m.data_offset < 0:
            out.notes.append((m.header_offset - start, f"no local header for {m.name!r}"))
    if not out.members and eocd < 0:
        raise ZipError("no zip headers found")
    return out


def _scan_data_descriptor(buf: Any, data_off: int, end: int) -> int:
    """Compressed size of a member written with a trailing data descriptor (size unknown up front)."""
    nxt = int(buf.find(b"PK\x07\x08", data_off, end))
    if nxt >= 0:
        return nxt - data_off
    nxt = buf.find(_LFH, data_off, end)
    if nxt < 0:
        nxt = buf.find(_CDH, data_off, end)
    return int(nxt if nxt >= 0 else end) - data_off


def read_member(buf: Any, m: ZipMember, end: int, *, max_out: int) -> tuple[Any, int, int, str | None]:
    """(buffer, start, end, note) of one member's bytes. Stored members are windows over `buf`."""
    if m.data_offset < 0:
        raise ZipError(f"member {m.name!r} has no readable local header")
    s = m.data_offset
    e = s + m.compressed_size
    note = None
    if e > end:
        note = f"member {m.name!r} runs past the end of the archive"
        e = end
    if m.method == 0:
        return buf, s, e, note
    if m.method == 8:
        d = zlib.decompressobj(-15)
        out = d.decompress(memoryview(buf)[s:e], max_out + 1)
        if len(out) > max_out:
            raise ZipError(f"member {m.name!r} inflates past {max_out} bytes")
        if not d.eof:
            note = f"member {m.name!r} has a truncated deflate stream"
        return out, 0, len(out), note
    if m.method == 12:
        import bz2

        bd = bz2.BZ2Decompressor()
        out = bd.decompress(bytes(memoryview(buf)[s:e]), max_out + 1)
        if len(out) > max_out:
            raise ZipError(f"member {m.name!r} inflates past {max_out} bytes")
        return out, 0, len(out), note
    if m.method == 14:
        raise ZipError(f"member {m.name!r} uses LZMA compression, which this reader does not open")
    raise ZipError(f"member {m.name!r} uses unsupported compression method {m.method}")
