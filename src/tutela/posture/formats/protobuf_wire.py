"""A minimal, bounded protobuf wire-format reader: enough to walk TensorFlow and ONNX graphs
without TensorFlow, onnx or protobuf installed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class WireError(ValueError):
    """Not a valid protobuf message."""


def varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint too long")


def fields(buf: Any, start: int, end: int) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): ints for varint/fixed, (start, end) for length-delimited."""
    pos = start
    while pos < end:
        key, pos = varint(buf, pos, end)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise WireError("field number 0")
        if wt == 0:
            val, pos = varint(buf, pos, end)
            yield num, wt, val
        elif wt == 2:
            ln, pos = varint(buf, pos, end)
            if pos + ln > end:
                raise WireError("length-delimited field runs past its message")
            yield num, wt, (pos, pos + ln)
            pos += ln
        elif wt == 1:
            pos += 8
            yield num, wt, None
        elif wt == 5:
            pos += 4
            yield num, wt, None
        else:
            raise WireError(f"unsupported wire type {wt}")
    if pos != end:
        raise WireError("message overruns its bounds")


def text(buf: Any, span: tuple[int, int]) -> str:
    return bytes(buf[span[0] : span[1]]).decode("utf-8", "replace")
