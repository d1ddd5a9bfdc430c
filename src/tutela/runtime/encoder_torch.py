"""The sentence encoder in PyTorch: the semantic tier's optional `torch` backend, for batches on a GPU.

The same arithmetic as `tutela.runtime.encoder` (BERT encoder, mean pooling, L2 normalisation) over the
same verified arrays; on a GPU it runs in bf16, so the embeddings differ from the CPU path by rounding only
(bench/runtime_gpu.py measures by how much, and whether any decision changes). Built for throughput
rather than as a copy of transformers' `BertModel`:

- the query, key and value projections are one matrix product (one read of the activations, not three);
- attention is `scaled_dot_product_attention` with no mask when no row of the batch is padded, so the
  flash kernels run; a padded batch passes a boolean key mask;
- `precision="fp8"` (Hopper GPUs) runs the six projections of each layer as fp8 matrix products
  (`torch._scaled_mm`, e4m3): weights scaled per output row once at load, activations per token on the
  fly, products accumulated in fp32 and returned in bf16. It roughly halves the matrix arithmetic's cost
  and adds rounding: measured against the CPU path before use, never assumed.

torch is never a dependency of tutela: it is imported when an encoder is built, and nothing here runs
at import time. `compile=True` hands the module to `torch.compile` (a one-off cost of tens of seconds).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tutela.core.features import require

LAYERS = 6
HEADS = 12
HIDDEN = 384
EPS = 1e-12
FP8_MAX = 448.0  # largest finite float8_e4m3fn
PRECISIONS = ("fp32", "bf16", "fp8")


def _torch() -> Any:
    return require("torch", "gpu")


def default_precision(device: str) -> str:
    return "bf16" if device.startswith("cuda") else "fp32"


def build(weights: Mapping[str, Any], device: str = "cuda", precision: str | None = None, compile: bool = False) -> Any:
    """A `torch.nn.Module`: `module(ids, mask=None)` -> unit embeddings (n, 384), float32, on `device`.

    `weights` are the raw safetensors arrays of the encoder (numpy or torch, torch's (out, in) layout,
    `embeddings.*` and `encoder.layer.N.*` names, with or without a `bert.` prefix). `mask` is the
    (n, t) attention mask; pass None when every row is full length.
    """
    torch = _torch()
    precision = precision or default_precision(device)
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (one of {', '.join(PRECISIONS)})")
    if precision != "fp32" and not device.startswith("cuda"):
        raise ValueError(f"precision {precision} needs a CUDA device, not {device!r}")
    module = _module_class(torch)(weights, precision).to(device).eval()
    return torch.compile(module) if compile else module


def padded(rows: Sequence[Sequence[int]]) -> tuple[Any, Any]:
    """(ids, mask): int64 tensors (n, longest row), the rows padded with 0 and the mask 1 where a token is."""
    torch = _torch()
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def _module_class(torch: Any) -> Any:
    nn, functional = torch.nn, torch.nn.functional

    def tensor(v: Any) -> Any:
        return v.detach().float() if isinstance(v, torch.Tensor) else torch.from_numpy(v.astype("float32"))

    class Linear(nn.Module):  # type: ignore[misc,name-defined]
        """y = x W^T + b, in the module's precision; fp8 keeps W as e4m3 with a scale per output row."""

        def __init__(self, w: Any, b: Any, fp8: bool, dtype: Any) -> None:
            super().__init__()
            self.fp8 = fp8
            self.bias = nn.Parameter(b.to(dtype), requires_grad=False)
            if fp8:
                amax = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12)  # (out, 1)
                self.w8 = nn.Parameter((w * (FP8_MAX / amax)).to(torch.float8_e4m3fn), requires_grad=False)
                self.w_scale = nn.Parameter((amax / FP8_MAX).T.contiguous(), requires_grad=False)  # (1, out)
            else:
                self.weight = nn.Parameter(w.to(dtype), requires_grad=False)

        def forward(self, x: Any) -> Any:
            if not self.fp8:
                return functional.linear(x, self.weight, self.bias)
            shape = x.shape
            x2 = x.reshape(-1, shape[-1])
            amax = x2.abs().amax(dim=1, keepdim=True).float().clamp(min=1e-12)  # (tokens, 1)
            x8 = (x2.float() * (FP8_MAX / amax)).to(torch.float8_e4m3fn)
            # _scaled_mm wants the second operand column-major: W8 (out, in) transposed is exactly that
            y = torch._scaled_mm(
                x8, self.w8.t(), scale_a=amax / FP8_MAX, scale_b=self.w_scale, out_dtype=torch.bfloat16
            )
            return (y + self.bias).reshape(*shape[:-1], y.shape[-1])

    class Layer(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self, w: Mapping[str, Any], p: str, fp8: bool, dtype: Any) -> None:
            super().__init__()
            att = p + "attention."
            qkv_w = torch.cat([w[f"{att}self.{x}.weight"] for x in ("query", "key", "value")])
            qkv_b = torch.cat([w[f"{att}self.{x}.bias"] for x in ("query", "key", "value")])
            self.qkv = Linear(qkv_w, qkv_b, fp8, dtype)
            self.out = Linear(w[att + "output.dense.weight"], w[att + "output.dense.bias"], fp8, dtype)
            self.register_buffer("ln1_w", w[att + "output.LayerNorm.weight"].to(dtype))
            self.register_buffer("ln1_b", w[att + "output.LayerNorm.bias"].to(dtype))
            self.up = Linear(w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"], fp8, dtype)
            self.down = Linear(w[p + "output.dense.weight"], w[p + "output.dense.bias"], fp8, dtype)
            self.register_buffer("ln2_w", w[p + "output.LayerNorm.weight"].to(dtype))
            self.register_buffer("ln2_b", w[p + "output.LayerNorm.bias"].to(dtype))

        def forward(self, h: Any, key_mask: Any) -> Any:
            n, t, _ = h.shape
            qkv = self.qkv(h).view(n, t, 3, HEADS, HIDDEN // HEADS).permute(2, 0, 3, 1, 4)
            ctx = functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=key_mask)
            ctx = ctx.transpose(1, 2).reshape(n, t, HIDDEN)
            h = functional.layer_norm(h + self.out(ctx), (HIDDEN,), self.ln1_w, self.ln1_b, EPS)
            f = self.down(functional.gelu(self.up(h)))
            return functional.layer_norm(h + f, (HIDDEN,), self.ln2_w, self.ln2_b, EPS)

    class Encoder(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self, weights: Mapping[str, Any], precision: str) -> None:
            super().__init__()
            w = {k.removeprefix("bert."): tensor(v) for k, v in weights.items()}
            dtype = torch.float32 if precision == "fp32" else torch.bfloat16
            e = "embeddings."
            self.register_buffer("word", w[e + "word_embeddings.weight"].to(dtype))
            self.register_buffer("position", w[e + "position_embeddings.weight"].to(dtype))
            self.register_buffer("token_type", w[e + "token_type_embeddings.weight"][0].to(dtype))
            self.register_buffer("ln_w", w[e + "LayerNorm.weight"].to(dtype))
            self.register_buffer("ln_b", w[e + "LayerNorm.bias"].to(dtype))
            fp8 = precision == "fp8"
            self.layers = nn.ModuleList(Layer(w, f"encoder.layer.{i}.", fp8, dtype) for i in range(LAYERS))

        def forward(self, ids: Any, mask: Any = None) -> Any:
            t = ids.shape[1]
            h = self.word[ids] + self.position[:t] + self.token_type
            h = functional.layer_norm(h, (HIDDEN,), self.ln_w, self.ln_b, EPS)
            key_mask = None if mask is None else mask[:, None, None, :].bool()
            for layer in self.layers:
                h = layer(h, key_mask)
            h = h.float()
            if mask is None:
                pooled = h.mean(1)
            else:
                m = mask.to(h.dtype).unsqueeze(-1)
                pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            return functional.normalize(pooled, dim=-1)

    return Encoder
