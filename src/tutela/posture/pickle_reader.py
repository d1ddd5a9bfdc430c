"""Reading pickle opcode arguments: fixed-width integers, and the text lines of protocols 0-1.

The symbolic machine (pickle_machine.py) decodes the frequent binary arguments inline for speed,
with the unpackers below; the rarer text opcodes (GLOBAL, INST, PUT, GET, INT, LONG, STRING,
UNICODE, PERSID) read their newline-terminated arguments through these functions. Nothing here
interprets what a value means.
"""

from __future__ import annotations

import codecs
import struct
from typing import Any

from tutela.posture.pickle_values import BIGINT, FLOAT, MAX_STR, Blob, PickleError

U16 = struct.Struct("<H").unpack_from
U32 = struct.Struct("<I").unpack_from
I32 = struct.Struct("<i").unpack_from
U64 = struct.Struct("<Q").unpack_from


def read_line(buf: Any, pos: int, end: int) -> tuple[bytes, int]:
    """The argument line at `pos` (without its newline) and the position after it."""
    nl = buf.find(b"\n", pos, end)
    if nl < 0:
        raise PickleError("line not terminated")
    return bytes(buf[pos:nl]), nl + 1


def read_global(buf: Any, pos: int, end: int) -> tuple[str, str, int]:
    """GLOBAL/INST's `module\\nname\\n`, decoded as the unpickler does (UTF-8; invalid bytes replaced)."""
    mod_b, pos = read_line(buf, pos, end)
    name_b, pos = read_line(buf, pos, end)
    return mod_b.decode("utf-8", "replace"), name_b.decode("utf-8", "replace"), pos


def memo_index(line: bytes, what: str) -> int:
    try:
        return int(line)
    except ValueError:
        raise PickleError(f"invalid {what} index") from None


def text_int(line: bytes) -> Any:
    """INT (also I01/I00 for True/False): huge literals stay symbolic."""
    try:
        return int(line) if len(line) < 64 else BIGINT
    except ValueError:
        raise PickleError("invalid INT") from None


def text_long(line: bytes) -> Any:
    try:
        return int(line.rstrip(b"L")) if len(line) < 64 else BIGINT
    except ValueError:
        raise PickleError("invalid LONG") from None


def text_string(line: bytes, at: int) -> Any:
    """STRING: a quoted Python 2 repr, unescaped without evaluating anything."""
    if len(line) < 2 or line[:1] != line[-1:] or line[:1] not in (b"'", b'"'):
        raise PickleError("STRING not quoted")
    raw = codecs.escape_decode(line[1:-1])[0]
    return raw.decode("latin-1") if len(raw) <= MAX_STR else Blob("bytes", memoryview(raw), at)


def text_unicode(line: bytes) -> Any:
    """UNICODE: a raw-unicode-escape line (long ones stay symbolic)."""
    return line.decode("raw-unicode-escape") if len(line) <= MAX_STR else FLOAT
