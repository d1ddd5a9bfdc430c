"""Opens containers into the leaves the format scanners judge, under depth, size and ratio limits.

PyTorch zips (read as torch reads them, see `zipread`), legacy torch tars, TorchScript, .keras,
.npz and any zip; tar; 7z (py7zr); gzip, bz2, xz/lzma, zlib (joblib's compressors) and lz4 when
installed; .npy object arrays, whose data is a pickle. Members are recognised by content, never
by name alone, so a pickle hidden under any name is still a pickle (picklescan CVE-2025-1889).
"""

from __future__ import annotations

import ast
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from tutela.core.errors import ResourceLimitExceeded
from tutela.core.findings import Severity
from tutela.posture import zipread
from tutela.posture.artifact import Artifact
from tutela.posture.issues import Issue, limit_exceeded, unparsable
from tutela.posture.limits import Budget
from tutela.posture.sniff import PICKLE_FIRST, PICKLE_SUFFIXES, identify

CONTAINERS = frozenset({"zip", "tar", "7z", "gzip", "bz2", "xz", "zlib", "lzma", "lz4"})
_TENSOR_DATA = re.compile(r"(^|/)(data/\d+|\.data/.*|version|byteorder|\.format_version|\.storage_alignment)$")


@dataclass(slots=True)
class Leaf:
    artifact: Artifact
    kind: str
    strict: bool = True  # False: only report what is clearly dangerous (content merely looks like a pickle)


@dataclass(slots=True)
class Expansion:
    leaves: list[Leaf] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    def of_kind(self, *kinds: str) -> list[Leaf]:
        return [leaf for leaf in self.leaves if leaf.kind in kinds]


def expand(a: Artifact, budget: Budget) -> Expansion:
    out = Expansion()
    try:
        _expand(a, budget, out, identify(a))
    except ResourceLimitExceeded as exc:
        out.issues.append(limit_exceeded(exc, a.member))
    return out


def _cap(budget: Budget, compressed: int) -> int:
    lim = budget.limits
    return min(budget.room(), max(lim.ratio_floor_bytes, int(lim.max_ratio * max(compressed, 1))))


def _bomb(a: Artifact, cap: int) -> Issue:
    return Issue(
        "archive.bomb",
        Severity.HIGH,
        "resource-limit",
        f"decompresses past {cap} bytes from {a.size} (ratio or size limit); treated as unsafe",
        a.member,
    )


def _expand(a: Artifact, budget: Budget, out: Expansion, kind: str) -> None:
    budget.deadline.check()
    if kind in CONTAINERS and a.depth >= budget.limits.max_depth:
        out.issues.append(
            Issue(
                "archive.too-deep",
                Severity.HIGH,
                "resource-limit",
                f"{kind} nested deeper than {budget.limits.max_depth} levels is not opened; treated as unsafe",
                a.member,
            )
        )
        return
    try:
        if kind == "zip":
            _zip(a, budget, out)
        elif kind == "tar":
            _tar(a, budget, out)
        elif kind == "7z":
            _sevenzip(a, budget, out)
        elif kind in ("gzip", "bz2", "xz", "zlib", "lzma", "lz4"):
            _stream(a, budget, out, kind)
        elif kind == "npy":
            _npy(a, out)
        else:
            out.leaves.append(Leaf(a, kind, strict=kind != "pickle?"))
            if kind in ("pickle", "pickle?", "unknown") and a.size > 22 and b"PK\x05\x06" in a.tail(0xFFFF + 22):
                _polyglot(a, budget, out)
    except ResourceLimitExceeded:
        raise
    except Exception as exc:  # hostile input: any parser error is a finding, never a crash (fail closed)
        out.issues.append(unparsable(f"{kind} container", exc, a.member))


def _polyglot(a: Artifact, budget: Budget, out: Expansion) -> None:
    try:
        listing = zipread.list_members(a.data, a.start, a.end, max_members=budget.limits.max_members)
    except (zipread.ZipError, struct.error, ValueError):
        return
    if listing.members:
        out.issues.append(
            Issue(
                "archive.polyglot",
                Severity.MEDIUM,
                "integrity",
                "file is also a zip archive (polyglot); both readings are scanned",
                a.member,
            )
        )
        _zip_members(a, budget, out, listing)


def _zip(a: Artifact, budget: Budget, out: Expansion) -> None:
    listing = zipread.list_members(a.data, a.start, a.end, max_members=budget.limits.max_members)
    _zip_members(a, budget, out, listing)


def _zip_members(a: Artifact, budget: Budget, out: Expansion, listing: zipread.ZipListing) -> None:
    for offset, note in listing.notes[:50]:
        out.issues.append(Issue("archive.zip-inconsistent", Severity.MEDIUM, "integrity", note, a.member, offset))
    names = {m.name for m in listing.members}
    is_torch = any(n.endswith("data.pkl") for n in names)
    is_keras = "config.json" in names and ("metadata.json" in names or "model.weights.h5" in names)
    seen: set[tuple[int, str]] = set()
    for m in listing.members:
        if (m.header_offset, m.name) in seen or m.name.endswith("/"):
            continue
        seen.add((m.header_offset, m.name))
        budget.deadline.check()
        for n in {m.name, m.local_name or m.name}:
            if _unsafe_path(n):
                out.issues.append(_path_issue(a, n))
        label = m.name if m.local_name in (None, m.name) else f"{m.name} (local name {m.local_name})"
        try:
            buf, s, e, note_ = zipread.read_member(a.data, m, a.end, max_out=_cap(budget, m.compressed_size))
        except zipread.ZipError as exc:
            msg = str(exc)
            if "inflates past" in msg:
                out.issues.append(_bomb(a.child(label), _cap(budget, m.compressed_size)))
            else:
                out.issues.append(unparsable("zip member", exc, a.child(label).member))
            continue
        if buf is not a.data:
            budget.take(e - s)
        if note_:
            out.issues.append(Issue("archive.zip-inconsistent", Severity.MEDIUM, "integrity", note_, a.member))
        child = a.child(label, None if buf is a.data else buf, s, e)
        if is_keras and m.name == "config.json":
            out.leaves.append(Leaf(child, "keras-config"))
            continue
        if "/code/" in f"/{m.name}" and m.name.endswith(".py"):
            out.leaves.append(Leaf(child, "torchscript-code"))
            continue
        kind = identify(child)
        first = child.head(1)
        if m.flags & 0x01 and kind in ("unknown", "pickle?", "pickle") and first and first[0] not in PICKLE_FIRST:
            out.issues.append(
                Issue(
                    "archive.encrypted",
                    Severity.HIGH,
                    "malformed",
                    f"member {label!r} is encrypted and cannot be scanned; treated as unsafe",
                    a.member,
                )
            )
            continue
        if is_torch and _TENSOR_DATA.search(m.name) and kind in ("pickle?", "unknown", "pickle"):
            # Raw tensor bytes: torch never unpickles them; look only for an unmistakable payload.
            head = child.head(2)
            if (head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5) or head[:1] == b"c":
                out.leaves.append(Leaf(child, "pickle?", strict=False))
            continue
        _expand(child, budget, out, kind)


def _unsafe_path(name: str) -> bool:
    """A member name that extraction would write outside its folder (absolute, drive, or `..`)."""
    n = name.replace("\\", "/")
    return n.startswith("/") or (len(n) > 1 and n[1] == ":") or ".." in n.split("/")


def _path_issue(a: Artifact, name: str) -> Issue:
    return Issue(
        "archive.path-traversal",
        Severity.HIGH,
        "file-access",
        f"member {name!r} would be extracted outside its folder",
        a.member,
    )


def _octal(field_: bytes) -> int:
    if field_[:1] and field_[0] & 0x80:  # GNU base-256
        return int.from_bytes(field_[1:], "big")
    text = field_.split(b"\x00", 1)[0].strip()
    return int(text, 8) if text else 0


def _tar(a: Artifact, budget: Budget, out: Expansion) -> None:
    """A minimal ustar/GNU/pax walker: members stay zero-copy windows over the parent."""
    pos = a.start
    count = 0
    long_name: str | None = None
    while pos + 512 <= a.end:
        header = bytes(a.data[pos : pos + 512])
        if header == b"\x00" * 512:
            break
        count += 1
        if count > budget.limits.max_members:
            raise ResourceLimitExceeded(f"more than {budget.limits.max_members} tar members")
        checksum = _octal(header[148:156])
        if checksum != sum(header[:148]) + 256 + sum(header[156:]):
            raise ValueError(f"bad tar header checksum at {pos - a.start}")
        name = header[:100].split(b"\x00", 1)[0].decode("utf-8", "replace")
        prefix = header[345:500].split(b"\x00", 1)[0].decode("utf-8", "replace") if header[257:262] == b"ustar" else ""
        if prefix:
            name = f"{prefix}/{name}"
        size = _octal(header[124:136])
        typeflag = header[156:157]
        data = pos + 512
        if data + size > a.end:
            raise ValueError(f"tar member {name!r} runs past the end")
        if typeflag == b"L":
            long_name = bytes(a.data[data : data + size]).split(b"\x00", 1)[0].decode("utf-8", "replace")
        elif typeflag == b"x":
            m = re.search(rb"\d+ path=([^\n]*)\n", bytes(a.data[data : data + min(size, 65536)]))
            long_name = m.group(1).decode("utf-8", "replace") if m else None
        elif typeflag in (b"1", b"2"):  # hard or symbolic link: extracting it reads or writes elsewhere
            target = header[157:257].split(b"\x00", 1)[0].decode("utf-8", "replace")
            out.issues.append(
                Issue(
                    "archive.link",
                    Severity.HIGH,
                    "file-access",
                    f"tar member {long_name or name!r} is a {'hard' if typeflag == b'1' else 'symbolic'} link "
                    f"to {target!r}; model archives hold files only",
                    a.member,
                )
            )
            long_name = None
        elif typeflag in (b"0", b"\x00", b"7"):
            if _unsafe_path(long_name or name):
                out.issues.append(_path_issue(a, long_name or name))
            child = a.child(long_name or name, None, data, data + size)
            long_name = None
            _expand(child, budget, out, identify(child))
        else:
            long_name = None
        pos = data + (size + 511) // 512 * 512


def _sevenzip(a: Artifact, budget: Budget, out: Expansion) -> None:
    import io

    try:
        import py7zr
        from py7zr.io import BytesIOFactory
    except ImportError:
        out.issues.append(unparsable("7z archive", "py7zr is not installed (pip install 'tutela[posture]')", a.member))
        return
    cap = _cap(budget, a.size)
    try:
        with py7zr.SevenZipFile(io.BytesIO(a.tobytes()), mode="r") as z:
            infos = [i for i in z.list() if not i.is_directory]
            if len(infos) > budget.limits.max_members:
                raise ResourceLimitExceeded(f"more than {budget.limits.max_members} 7z members")
            declared = sum(int(i.uncompressed or 0) for i in infos)
            if declared > cap:
                out.issues.append(_bomb(a, cap))
                return
            factory = BytesIOFactory(cap + 1)
            z.extractall(factory=factory)
    except ResourceLimitExceeded:
        raise
    except Exception as exc:  # py7zr raises many types on hostile input
        out.issues.append(unparsable("7z archive", exc, a.member))
        return
    for name, product in factory.products.items():
        data = product._buffer.getvalue()
        if len(data) > cap:
            out.issues.append(_bomb(a.child(name), cap))
            continue
        budget.take(len(data))
        child = a.child(name, data)
        _expand(child, budget, out, identify(child))


def _stream(a: Artifact, budget: Budget, out: Expansion, kind: str) -> None:
    cap = _cap(budget, a.size)
    data = _decompress(a, kind, cap)
    if data is None:
        out.issues.append(_bomb(a, cap))
        return
    budget.take(len(data))
    name = a.name
    for ext in (".gz", ".bz2", ".xz", ".z", ".lzma", ".lz4"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    child = a.child(f"{name}|{kind}", data)
    inner = identify(child)
    if inner in ("unknown", "pickle?") and (
        a.suffix in PICKLE_SUFFIXES or name.lower().endswith(tuple(PICKLE_SUFFIXES))
    ):
        inner = "pickle"
    _expand(child, budget, out, inner)


def _decompress(a: Artifact, kind: str, cap: int) -> bytes | None:
    """Decompressed bytes, or None when they would exceed `cap` (a bomb)."""
    src = a.view()
    chunks: list[bytes] = []
    total = 0
    if kind == "lz4":
        try:
            import lz4.frame
        except ImportError:
            raise ValueError("lz4 stream, but the lz4 package is not installed") from None
        d: Any = lz4.frame.LZ4FrameDecompressor()
        piece = d.decompress(bytes(src), max_length=cap + 1)
        return None if len(piece) > cap else piece
    while True:
        if kind == "gzip":
            import zlib

            d = zlib.decompressobj(31)
        elif kind == "zlib":
            import zlib

            d = zlib.decompressobj(15)
        elif kind == "bz2":
            import bz2

            d = bz2.BZ2Decompressor()
        else:
            import lzma

            d = lzma.LZMADecompressor()
        if kind in ("gzip", "zlib"):
            piece = d.decompress(src, cap + 1 - total)
            rest = d.unused_data
        else:
            piece = d.decompress(bytes(src), max_length=cap + 1 - total)
            rest = d.unused_data
        total += len(piece)
        chunks.append(piece)
        if total > cap:
            return None
        if kind in ("gzip", "zlib") and d.unconsumed_tail:
            return None  # more output pending beyond the cap
        if not d.eof:
            if kind in ("bz2", "xz", "lzma") and not getattr(d, "needs_input", True):
                return None
            raise ValueError(f"truncated {kind} stream")
        # gzip, bz2 and xz streams may be concatenated members.
        if not rest or kind in ("zlib", "lzma") or not rest.strip(b"\x00"):
            break
        src = memoryview(rest)
    return b"".join(chunks)


def _npy(a: Artifact, out: Expansion) -> None:
    head = a.head(16 + 65536)
    major = head[6]
    if major == 1:
        hlen = struct.unpack_from("<H", head, 8)[0]
        hstart = 10
    elif major in (2, 3):
        hlen = struct.unpack_from("<I", head, 8)[0]
        hstart = 12
    else:
        raise ValueError(f"unknown .npy version {major}")
    if hstart + hlen > len(head):
        raise ValueError(".npy header too long")
    text = head[hstart : hstart + hlen].decode("latin-1" if major < 3 else "utf-8")
    header = ast.literal_eval(text)  # literals only: never evaluates code
    if not isinstance(header, dict) or "descr" not in header:
        raise ValueError(".npy header without descr")
    descr = repr(header["descr"])
    if "O" in descr or "object" in descr.lower():
        child = a.child("<object array>", None, a.start + hstart + hlen, a.end)
        out.leaves.append(Leaf(child, "pickle"))
        out.issues.append(
            Issue(
                "numpy.object-array",
                Severity.LOW,
                "code-execution",
                "object array: numpy.load(allow_pickle=True) unpickles its data (scanned)",
                a.member,
            )
        )
