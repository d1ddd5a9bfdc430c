"""A low-rank delta for the top layers of MiniLM, merged into the pinned base weights in memory.

The prompt encoder is all-MiniLM-L6-v2 fine-tuned for prompt injection (scripts/train_runtime_encoder.py),
shipped as LoRA factors only (`injection_encoder_delta.safetensors`, float16, sha256-pinned): for each tuned
matrix `<name>.lora_a` (rank, in) and `<name>.lora_b` (out, rank), the LoRA scale already folded into B. The
tuned weight is W + B @ A in torch's (out, in) layout. Merging returns a new mapping and leaves the base
arrays untouched (the document head still reads the base encoder).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tutela.core.features import require

# the matrices of a BERT layer a delta may touch
TARGETS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


def merge(base: Mapping[str, Any], delta: Mapping[str, Any]) -> dict[str, Any]:
    """The base weights with every delta pair added (float32); unknown or misshapen entries are refused."""
    np = require("numpy", "runtime")
    out = dict(base)
    names = {k.rsplit(".", 1)[0] for k in delta}
    for name in sorted(names):
        a, b, w = delta.get(name + ".lora_a"), delta.get(name + ".lora_b"), base.get(name + ".weight")
        if a is None or b is None or w is None or name.split(".", 3)[-1] not in _TARGET_SET:
            raise ValueError(f"the encoder delta has an unexpected entry {name!r}")
        if b.shape[0] != w.shape[0] or a.shape[1] != w.shape[1] or a.shape[0] != b.shape[1]:
            raise ValueError(f"the encoder delta for {name!r} does not fit {tuple(w.shape)}")
        out[name + ".weight"] = np.asarray(w, dtype=np.float32) + b.astype(np.float32) @ a.astype(np.float32)
    return out


_TARGET_SET = frozenset(TARGETS)
