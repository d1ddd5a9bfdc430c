"""ONNX: custom operator domains (they need a native library at load time) and external data
whose path escapes the model's folder. Parsed from the wire format; `onnx` is not needed."""

from __future__ import annotations

import posixpath
from typing import Any

from tutela.core.findings import Severity
from tutela.posture.artifact import Artifact
from tutela.posture.formats.protobuf_wire import WireError, fields, text
from tutela.posture.issues import Issue, unparsable

STANDARD_DOMAINS = frozenset(
    {
        "",
        "ai.onnx",
        "ai.onnx.ml",
        "ai.onnx.training",
        "ai.onnx.preview.training",
        "com.microsoft",
        "com.microsoft.nchwc",
        "com.microsoft.mlfeaturizers",
        "com.microsoft.experimental",
        "com.ms.internal.nhwc",
    }
)
# Operator libraries that publish their ops openly: still a native library, so an alert, not a block.
KNOWN_EXTENSION_DOMAINS = frozenset(
    {"ai.onnx.contrib", "com.microsoft.extensions", "org.pytorch.aten", "org.openvinotoolkit"}
)
_MAX_DEPTH = 16


class _State:
    def __init__(self) -> None:
        self.domains: dict[str, tuple[int, str]] = {}  # domain -> (offset, op)
        self.local_domains: set[str] = set()
        self.external: list[tuple[int, str]] = []


def scan(a: Artifact) -> list[Issue]:
    st = _State()
    buf = a.data
    try:
        seen_graph = False
        for num, wt, val in fields(buf, a.start, a.end):
            if num == 7 and wt == 2:
                seen_graph = True
                _graph(buf, val, st, 0)
            elif num == 25 and wt == 2:  # FunctionProto
                _function(buf, val, st)
        if not seen_graph:
            return [unparsable("ONNX model", "no graph", a.member)]
    except WireError as exc:
        return [unparsable("ONNX model", exc, a.member)]
    out: list[Issue] = []
    for domain, (at, op) in st.domains.items():
        if domain in STANDARD_DOMAINS or domain in st.local_domains:
            continue
        severity = Severity.MEDIUM if domain in KNOWN_EXTENSION_DOMAINS else Severity.HIGH
        out.append(
            Issue(
                "onnx.custom-domain",
                severity,
                "code-execution",
                f"operator {op} from custom domain {domain!r} needs a native library to load",
                a.member,
                at - a.start,
                domain,
            )
        )
    for at, location in st.external:
        norm = posixpath.normpath(location.replace("\\", "/"))
        if (
            location.startswith(("/", "\\", "~"))
            or (len(location) > 1 and location[1] == ":")
            or norm == ".."
            or norm.startswith("../")
            or "://" in location
        ):
            out.append(
                Issue(
                    "onnx.external-data-escape",
                    Severity.HIGH,
                    "file-access",
                    f"external data location {location!r} escapes the model folder",
                    a.member,
                    at - a.start,
                    location,
                )
            )
    return out


def _graph(buf: Any, span: tuple[int, int], st: _State, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise WireError("subgraphs nested too deep")
    for num, wt, val in fields(buf, *span):
        if wt != 2:
            continue
        if num == 1:
            _node(buf, val, st, depth)
        elif num == 5:
            _tensor(buf, val, st)
        elif num == 15:  # sparse_initializer
            for n2, w2, v2 in fields(buf, *val):
                if n2 in (1, 2) and w2 == 2:
                    _tensor(buf, v2, st)


def _node(buf: Any, span: tuple[int, int], st: _State, depth: int) -> None:
    op = ""
    domain = ""
    for num, wt, val in fields(buf, *span):
        if wt != 2:
            continue
        if num == 4:
            op = text(buf, val)
        elif num == 7:
            domain = text(buf, val)
        elif num == 5:  # attribute
            for n2, w2, v2 in fields(buf, *val):
                if w2 != 2:
                    continue
                if n2 in (6, 11):
                    _graph(buf, v2, st, depth + 1)
                elif n2 in (5, 10):
                    _tensor(buf, v2, st)
    st.domains.setdefault(domain, (span[0], op))


def _tensor(buf: Any, span: tuple[int, int], st: _State) -> None:
    for num, wt, val in fields(buf, *span):
        if num == 13 and wt == 2:  # external_data: StringStringEntryProto
            key = value = ""
            for n2, w2, v2 in fields(buf, *val):
                if w2 == 2 and n2 == 1:
                    key = text(buf, v2)
                elif w2 == 2 and n2 == 2:
                    value = text(buf, v2)
            if key == "location":
                st.external.append((val[0], value))


def _function(buf: Any, span: tuple[int, int], st: _State) -> None:
    for num, wt, val in fields(buf, *span):
        if num == 10 and wt == 2:
            st.local_domains.add(text(buf, val))
        elif num == 7 and wt == 2:
            _node(buf, val, st, 1)
