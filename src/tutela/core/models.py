"""Shipped model artifacts: pinned by sha256, loaded lazily, once, under a lock.

Formats are ONNX, LightGBM/XGBoost text or JSON, safetensors and plain JSON. Never pickle:
tutela ships a pickle scanner and must not unpickle its own models.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from tutela.core.errors import ModelUnavailable
from tutela.core.features import require


class ModelFormat(StrEnum):
    ONNX = "onnx"
    LIGHTGBM = "lightgbm"  # LightGBM text model
    XGBOOST = "xgboost"  # XGBoost JSON model
    SAFETENSORS = "safetensors"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A model file shipped in a package: `package` is a dotted package, `filename` inside it."""

    name: str
    version: str
    sha256: str
    format: ModelFormat
    package: str
    filename: str

    def path(self) -> Path:
        from importlib import resources  # on use: importlib.resources pulls in tempfile (start-up)

        return Path(str(resources.files(self.package).joinpath(self.filename)))

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_onnx(path: Path) -> Any:
    ort = require("onnxruntime", "ml")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _load_lightgbm(path: Path) -> Any:
    lgb = require("lightgbm", "ml")
    return lgb.Booster(model_file=str(path))


def _load_xgboost(path: Path) -> Any:
    xgb = require("xgboost", "ml")
    booster = xgb.Booster()
    booster.load_model(str(path))
    return booster


def _load_safetensors(path: Path) -> Any:
    st = require("safetensors.numpy", "ml")
    return st.load_file(str(path))


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


LOADERS: dict[ModelFormat, Callable[[Path], Any]] = {
    ModelFormat.ONNX: _load_onnx,
    ModelFormat.LIGHTGBM: _load_lightgbm,
    ModelFormat.XGBOOST: _load_xgboost,
    ModelFormat.SAFETENSORS: _load_safetensors,
    ModelFormat.JSON: _load_json,
}


class ModelCache:
    """Loads each ModelRef once, verifies its sha256 first, and hands out the loaded object.

    Thread-safe: concurrent first calls for one model load it once. Detectors receive a cache
    through their constructor; servers call `warmup()` at start so the first request is not slow.
    """

    def __init__(self, loaders: dict[ModelFormat, Callable[[Path], Any]] | None = None) -> None:
        self._loaders = loaders or LOADERS
        self._loaded: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, ref: ModelRef) -> Any:
        try:
            return self._loaded[ref.key]
        except KeyError:
            pass
        with self._guard:
            lock = self._locks.setdefault(ref.key, threading.Lock())
        with lock:
            if ref.key not in self._loaded:
                self._loaded[ref.key] = self._load(ref)
            return self._loaded[ref.key]

    def derived(self, ref: ModelRef, kind: str, build: Callable[[Any], Any]) -> Any:
        """An object built once per cache from a loaded model (a compiled evaluator, an index).

        `build(model)` runs once per (ref, kind), under the model's lock, so detectors sharing a
        cache share the built object too.
        """
        key = f"{ref.key}#{kind}"
        try:
            return self._loaded[key]
        except KeyError:
            pass
        model = self.get(ref)
        with self._locks[ref.key]:
            if key not in self._loaded:
                self._loaded[key] = build(model)
            return self._loaded[key]

    def warmup(self, refs: list[ModelRef]) -> None:
        for ref in refs:
            self.get(ref)

    def loaded(self) -> list[str]:
        return sorted(k for k in self._loaded if "#" not in k)

    def _load(self, ref: ModelRef) -> Any:
        path = ref.path()
        if not path.is_file():
            raise ModelUnavailable(f"model {ref.key} not found at {path}", hint="reinstall tutela")
        actual = sha256_file(path)
        if actual != ref.sha256:
            raise ModelUnavailable(
                f"model {ref.key} at {path} has sha256 {actual[:16]}…, expected {ref.sha256[:16]}…",
                hint="the file was modified or corrupted; reinstall tutela",
            )
        return self._loaders[ModelFormat(ref.format)](path)
