"""TorchScript archives: their code/ files run as TorchScript (not Python), but can call custom
operator libraries and, through them, native code. Flag what does not belong in TorchScript."""

from __future__ import annotations

import re

from tutela.core.findings import Severity
from tutela.posture.artifact import Artifact
from tutela.posture.issues import Issue

_PY = re.compile(r"\b(__import__|os\.system|subprocess|builtins\.|eval\(|exec\(|importlib|load_library)")
_OPS = re.compile(r"\bops\.([A-Za-z_]\w*)\.")
STANDARD_NAMESPACES = frozenset(
    {
        "aten",
        "prim",
        "quantized",
        "_caffe2",
        "_quantized",
        "profiler",
        "_test",
        "cuda",
        "image",
        "torchvision",
        "torchaudio",
        "fbgemm",
        "mkldnn",
        "_prims",
        "prims",
        "sparse",
        "rngprims",
        "higher_order",
        "quantized_decomposed",
    }
)


def scan(a: Artifact) -> list[Issue]:
    code = bytes(a.data[a.start : min(a.end, a.start + (32 << 20))]).decode("utf-8", "replace")
    out: list[Issue] = []
    m = _PY.search(code)
    if m is not None:
        out.append(
            Issue(
                "torchscript.python-reference",
                Severity.HIGH,
                "code-execution",
                f"TorchScript code refers to {m.group(1)!r}",
                a.member,
                m.start(),
                m.group(1),
            )
        )
    for ns in sorted({m.group(1) for m in _OPS.finditer(code)} - STANDARD_NAMESPACES):
        out.append(
            Issue(
                "torchscript.custom-op",
                Severity.MEDIUM,
                "code-execution",
                f"TorchScript calls custom operator namespace {ns!r} (native library)",
                a.member,
                None,
                ns,
            )
        )
    return out
