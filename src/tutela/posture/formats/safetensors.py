"""safetensors: the header is the only thing to trust-check. Bounds, overlaps, holes, metadata."""

from __future__ import annotations

import json
import struct
from typing import Any

from tutela.core.findings import Severity
from tutela.posture.artifact import Artifact
from tutela.posture.issues import Issue, limit_exceeded, unparsable

ITEMSIZE = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "F8_E8M0": 1,
    "F4": 1,
    "F6_E2M3": 1,
    "F6_E3M2": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
    "C64": 8,
}


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r} in header")
        out[k] = v
    return out


def scan(a: Artifact, max_header: int = 100 << 20) -> list[Issue]:
    if a.size < 8:
        return [unparsable("safetensors file", "shorter than its length prefix", a.member)]
    n = struct.unpack_from("<Q", a.data, a.start)[0]
    if n > max_header:
        return [limit_exceeded(f"safetensors header of {n} bytes", a.member)]
    if 8 + n > a.size:
        return [
            Issue(
                "safetensors.header-bounds",
                Severity.HIGH,
                "malformed",
                f"header length {n} runs past the end of the file",
                a.member,
                0,
            )
        ]
    try:
        header = json.loads(bytes(a.data[a.start + 8 : a.start + 8 + n]), object_pairs_hook=_pairs)
    except (ValueError, RecursionError) as exc:
        return [unparsable("safetensors header", exc, a.member, 8)]
    if not isinstance(header, dict):
        return [unparsable("safetensors header", "not a JSON object", a.member, 8)]
    out: list[Issue] = []
    data_len = a.size - 8 - n
    meta = header.pop("__metadata__", None)
    if meta is not None and (
        not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    ):
        out.append(
            Issue(
                "safetensors.metadata",
                Severity.MEDIUM,
                "malformed",
                "__metadata__ must map strings to strings",
                a.member,
                8,
            )
        )
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            if not all(isinstance(x, int) and x >= 0 for x in [*shape, begin, end]):
                raise ValueError
        except (KeyError, TypeError, ValueError):
            out.append(
                Issue(
                    "safetensors.tensor-bounds",
                    Severity.HIGH,
                    "malformed",
                    f"tensor {name[:80]!r} has an invalid entry",
                    a.member,
                    8,
                )
            )
            continue
        count = 1
        for d in shape:
            count *= d
        size = ITEMSIZE.get(dtype)
        if size is None:
            out.append(
                Issue(
                    "safetensors.tensor-bounds",
                    Severity.MEDIUM,
                    "malformed",
                    f"tensor {name[:80]!r} has unknown dtype {str(dtype)[:20]!r}",
                    a.member,
                    8,
                )
            )
        elif dtype not in ("F4", "F6_E2M3", "F6_E3M2") and end - begin != count * size:
            out.append(
                Issue(
                    "safetensors.tensor-bounds",
                    Severity.HIGH,
                    "malformed",
                    f"tensor {name[:80]!r}: {end - begin} bytes for shape {shape} of {dtype}",
                    a.member,
                    8,
                )
            )
        if begin > end or end > data_len:
            out.append(
                Issue(
                    "safetensors.tensor-bounds",
                    Severity.HIGH,
                    "malformed",
                    f"tensor {name[:80]!r} data [{begin}, {end}) outside the {data_len}-byte buffer",
                    a.member,
                    8,
                )
            )
            continue
        spans.append((begin, end, name))
    spans.sort()
    cursor = 0
    for begin, end, name in spans:
        if begin < cursor:
            out.append(
                Issue(
                    "safetensors.overlap",
                    Severity.HIGH,
                    "malformed",
                    f"tensor {name[:80]!r} overlaps the previous tensor",
                    a.member,
                    8 + n + begin,
                )
            )
        elif begin > cursor:
            out.append(
                Issue(
                    "safetensors.unreferenced-bytes",
                    Severity.MEDIUM,
                    "integrity",
                    f"{begin - cursor} bytes before tensor {name[:80]!r} belong to no tensor",
                    a.member,
                    8 + n + cursor,
                )
            )
        cursor = max(cursor, end)
    if cursor < data_len:
        out.append(
            Issue(
                "safetensors.unreferenced-bytes",
                Severity.MEDIUM,
                "integrity",
                f"{data_len - cursor} trailing bytes belong to no tensor",
                a.member,
                8 + n + cursor,
            )
        )
    return out
