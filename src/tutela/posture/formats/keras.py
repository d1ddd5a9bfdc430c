"""Keras: the model config of .keras archives (config.json) and of .h5 files (root attributes,
read with h5py; weights are never read). Lambda layers carry Python bytecode; `module`
references import arbitrary modules (CVE-2025-1550); TFSMLayer loads an external SavedModel."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

from tutela.core.findings import Severity
from tutela.posture.artifact import Artifact
from tutela.posture.imports_policy import judge_global
from tutela.posture.issues import Issue, unparsable

KERAS_PACKAGES = (
    "keras",
    "keras_hub",
    "keras_cv",
    "keras_nlp",
    "tf_keras",
    "tensorflow.keras",
    "tensorflow.python.keras",
)
_MAX_NODES = 2_000_000
# Functions inside Keras that a config must never reach (the 3.9 fix allowed keras.* modules).
KERAS_DANGEROUS = {
    "get_file": Severity.HIGH,
    "func_load": Severity.CRITICAL,
    "enable_unsafe_deserialization": Severity.CRITICAL,
    "load_model": Severity.HIGH,
    "load_weights": Severity.HIGH,
    "deserialize_keras_object": Severity.HIGH,
    "TFSMLayer": Severity.HIGH,
}


def _walk(node: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    stack = [(node, 0)]
    seen = 0
    while stack:
        cur, d = stack.pop()
        seen += 1
        if seen > _MAX_NODES or d > 200:
            raise ValueError("Keras config too large or too deep")
        if isinstance(cur, dict):
            yield cur
            stack.extend((v, d + 1) for v in cur.values())
        elif isinstance(cur, list):
            stack.extend((v, d + 1) for v in cur)


def check_config(config: Any, member: str) -> list[Issue]:
    out: list[Issue] = []
    seen: set[str] = set()
    for obj in _walk(config):
        cls = obj.get("class_name")
        if not isinstance(cls, str):
            continue
        if cls in ("Lambda", "__lambda__") and "lambda" not in seen:
            seen.add("lambda")
            out.append(
                Issue(
                    "keras.lambda",
                    Severity.CRITICAL,
                    "code-execution",
                    "Lambda layer: its Python function (marshalled bytecode) runs when loaded without safe_mode",
                    member,
                    None,
                    "Lambda",
                )
            )
        if cls == "TFSMLayer" and "tfsm" not in seen:
            seen.add("tfsm")
            out.append(
                Issue(
                    "keras.external-savedmodel",
                    Severity.HIGH,
                    "code-execution",
                    "TFSMLayer loads an external SavedModel at load time (CVE-2026-1462 class)",
                    member,
                    None,
                    "TFSMLayer",
                )
            )
        module = obj.get("module")
        if isinstance(module, str) and module:
            if module == "builtins" and cls in ("dict", "list", "tuple", "set", "str", "int", "float"):
                continue
            if module.split(".", 1)[0] in KERAS_PACKAGES or module.startswith(KERAS_PACKAGES):
                fn = obj.get("config") if cls == "function" else cls
                hit = KERAS_DANGEROUS.get(str(fn))
                if hit is not None and f"{module}.{fn}" not in seen:
                    seen.add(f"{module}.{fn}")
                    out.append(
                        Issue(
                            "keras.dangerous-function",
                            hit,
                            "code-execution",
                            f"config calls {module}.{fn}, which Keras allows but which downloads files, "
                            "loads code or disables safe mode (CVE-2025-8747 class)",
                            member,
                            None,
                            f"{module}.{fn}",
                        )
                    )
                continue
            name = obj.get("config") if cls == "function" and isinstance(obj.get("config"), str) else cls
            ref = f"{module}.{name}"
            if ref in seen:
                continue
            seen.add(ref)
            j = judge_global(module, str(name))
            severity = j.severity or Severity.MEDIUM
            out.append(
                Issue(
                    "keras.module-reference",
                    severity,
                    "code-execution" if severity >= Severity.HIGH else "suspicious-import",
                    f"config imports {ref} outside Keras (CVE-2025-1550 class): {j.reason}",
                    member,
                    None,
                    ref,
                )
            )
    return out


def scan_config_json(a: Artifact) -> list[Issue]:
    try:
        config = json.loads(bytes(a.data[a.start : a.end]))
    except (ValueError, RecursionError) as exc:
        return [unparsable("Keras config.json", exc, a.member)]
    try:
        return check_config(config, a.member)
    except ValueError as exc:
        return [unparsable("Keras config.json", exc, a.member)]


_RAW_CONFIG = re.compile(rb'\{"class_name":')


def scan_h5(a: Artifact) -> list[Issue]:
    try:
        import h5py
    except ImportError:
        return _scan_h5_raw(a)
    try:
        with h5py.File(_WindowIO(a), "r") as f:
            out: list[Issue] = []
            for key in ("model_config", "training_config"):
                raw = f.attrs.get(key)
                if raw is None:
                    continue
                if isinstance(raw, bytes):
                    raw = raw.decode("utf-8", "replace")
                out.extend(check_config(json.loads(str(raw)), a.member))
            return out
    except (OSError, ValueError, RecursionError, KeyError) as exc:
        return [unparsable("HDF5 file", exc, a.member)]


class _WindowIO(io.RawIOBase):
    """A read-only file over the artifact's window: h5py reads attributes without copying the file."""

    def __init__(self, a: Artifact) -> None:
        self._view = a.view()
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, b: Any) -> int:
        chunk = self._view[self._pos : self._pos + len(b)]
        n = len(chunk)
        b[:n] = chunk
        self._pos += n
        return n


def _scan_h5_raw(a: Artifact) -> list[Issue]:
    """Without h5py: find JSON configs in the raw bytes (attributes are stored contiguously)."""
    data = bytes(a.data[a.start : a.end])
    out: list[Issue] = []
    for m in _RAW_CONFIG.finditer(data):
        try:
            config, _ = json.JSONDecoder().raw_decode(
                data[m.start() : m.start() + (64 << 20)].decode("utf-8", "replace")
            )
        except ValueError:
            continue
        out.extend(check_config(config, a.member))
    if b"Lambda" in data and not any(i.rule == "keras.lambda" for i in out):
        out.append(
            Issue(
                "keras.lambda",
                Severity.HIGH,
                "code-execution",
                "HDF5 file mentions a Lambda layer (h5py not installed to confirm)",
                a.member,
            )
        )
    return out
