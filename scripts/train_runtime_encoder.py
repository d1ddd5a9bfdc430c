"""Fine-tune the top layers of MiniLM for prompt injection (LoRA) together with the prompt head, on CPU.

  .venv/bin/python scripts/train_runtime_encoder.py [--data DIR] [--layers 2] [--rank 8] [--epochs 2]
      [--limit N (a subset, to time an epoch)] [--dry-run (write nothing)]

The base encoder stays frozen and pinned (`tutela.runtime.encoder.WEIGHTS`); what is trained is a low-rank
delta (W + B @ A, `tutela.runtime.encoder_delta`) on the query/key/value/output and both feed-forward matrices
of the top `--layers` layers, and a new prompt head (MLP 384-256-1) over the tuned mean-pooled embeddings.
Because only the top layers change, the hidden states after the frozen layers are computed once per text
(torch, no grad) and the tuned layers are trained on them: an epoch costs 2 of 6 layers forward and back.

Training texts: the prompt head's own (scripts/train_runtime_injection.py): 9,000 S-Labs / neuralchemy train
prompts (random.Random(5)) and the Presidio train sentences as weighted hard negatives, all folded. Epoch
choice on validation only: S-Labs validation F1 at its best threshold minus the validation PII sentences
flagged at it (the metric the head was chosen by). No test set is read.

Writes src/tutela/runtime/models/injection_encoder_delta.safetensors (float16 A and B, the scale folded into
B), injection_semantic.json (the head) and meta["encoder"] / meta["semantic"]; then run
scripts/pin_runtime_models.py and scripts/calibrate_runtime_injection.py. Needs torch at training time only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from train_runtime_injection import best_threshold, folded

from tutela.core.models import ModelCache
from tutela.runtime import datasets as ds
from tutela.runtime.encoder import HEADS, HIDDEN, LAYERS, WEIGHTS, MiniLM
from tutela.runtime.encoder_delta import TARGETS

OUT = ROOT / "src" / "tutela" / "runtime" / "models"
TOKENS = 128  # the run-time prompt encoder's limit


def torch_encoder(weights: dict[str, np.ndarray], tuned: int, rank: int, alpha: float) -> Any:
    """BERT in torch over the base weights (frozen), with LoRA factors on the top `tuned` layers."""
    import torch
    from torch import nn

    def t(name: str) -> torch.Tensor:
        return torch.from_numpy(np.array(weights[name], dtype=np.float32))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = LAYERS - tuned
            self.scale = alpha / rank
            self.lora = nn.ParameterDict()
            g = torch.Generator().manual_seed(0)
            for i in range(self.first, LAYERS):
                for target in TARGETS:
                    w = t(f"encoder.layer.{i}.{target}.weight")
                    key = f"l{i}_{target.replace('.', '_')}"
                    # A random, B zero: training starts at the base encoder exactly
                    a = torch.randn(rank, w.shape[1], generator=g) / np.sqrt(w.shape[1])
                    self.lora[key + "_a"] = nn.Parameter(a)
                    self.lora[key + "_b"] = nn.Parameter(torch.zeros(w.shape[0], rank))

        def linear(self, x: torch.Tensor, i: int, target: str) -> torch.Tensor:
            p = f"encoder.layer.{i}.{target}"
            y = x @ W[p].T + W[p + "_b"]
            if i >= self.first:
                key = f"l{i}_{target.replace('.', '_')}"
                y = y + (x @ self.lora[key + "_a"].T) @ self.lora[key + "_b"].T * self.scale
            return y

        def layer(self, h: torch.Tensor, bias: torch.Tensor, i: int) -> torch.Tensor:
            n, tk, _ = h.shape
            dh = HIDDEN // HEADS
            p = f"encoder.layer.{i}."

            def heads(x: torch.Tensor) -> torch.Tensor:
                return x.view(n, tk, HEADS, dh).transpose(1, 2)

            q = heads(self.linear(h, i, "attention.self.query"))
            k = heads(self.linear(h, i, "attention.self.key"))
            v = heads(self.linear(h, i, "attention.self.value"))
            att = torch.softmax(q @ k.transpose(-1, -2) / np.sqrt(dh) + bias, dim=-1)
            ctx = (att @ v).transpose(1, 2).reshape(n, tk, HIDDEN)
            a = self.linear(ctx, i, "attention.output.dense")
            h2 = nn.functional.layer_norm(a + h, (HIDDEN,), W[p + "attention.output.LayerNorm.weight"],
                                          W[p + "attention.output.LayerNorm.bias"], 1e-12)  # fmt: skip
            f = nn.functional.gelu(self.linear(h2, i, "intermediate.dense"))
            f = self.linear(f, i, "output.dense")
            return nn.functional.layer_norm(f + h2, (HIDDEN,), W[p + "output.LayerNorm.weight"],
                                            W[p + "output.LayerNorm.bias"], 1e-12)  # fmt: skip

        def embed(self, ids: torch.Tensor) -> torch.Tensor:
            tk = ids.shape[1]
            h = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:tk]
            h = h + W["embeddings.token_type_embeddings.weight"][0]
            return nn.functional.layer_norm(h, (HIDDEN,), W["embeddings.LayerNorm.weight"],
                                            W["embeddings.LayerNorm.bias"], 1e-12)  # fmt: skip

        def frozen(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            bias = ((1.0 - mask) * -1e9)[:, None, None, :]
            h = self.embed(ids)
            for i in range(self.first):
                h = self.layer(h, bias, i)
            return h

        def top(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            bias = ((1.0 - mask) * -1e9)[:, None, None, :]
            for i in range(self.first, LAYERS):
                h = self.layer(h, bias, i)
            pooled = (h * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)
            return nn.functional.normalize(pooled, dim=1, eps=1e-12)

    W = {k: t(k) for k in weights}
    for k in list(W):
        if k.endswith(".bias") and k[: -len(".bias")] + ".weight" in W:
            W[k[: -len(".bias")] + "_b"] = W[k]
        if k.endswith(".weight"):
            W[k[: -len(".weight")]] = W[k]
    return Encoder()


def batches(lengths: list[int], size: int, rng: random.Random | None) -> list[list[int]]:
    """Indices grouped by similar length (little padding); shuffled batch order when training."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    out = [order[i : i + size] for i in range(0, len(order), size)]
    if rng is not None:
        rng.shuffle(out)
    return out


def padded(ids: list[list[int]], idx: list[int]) -> tuple[Any, Any]:
    from tutela.runtime.encoder_torch import padded as pad

    x, m = pad([ids[i] for i in idx])
    return x, m.float()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--layers", type=int, default=2, help="top encoder layers that get a LoRA delta")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prompts", type=int, default=9000, help="train prompts sampled (as the prompt head's)")
    ap.add_argument("--pii-weight", type=int, default=8, help="loss weight of each Presidio train sentence")
    ap.add_argument("--limit", type=int, default=0, help="train on this many texts only (to time an epoch)")
    ap.add_argument("--dry-run", action="store_true", help="measure, write nothing")
    ap.add_argument("--out", type=Path, default=OUT, help="where the delta, head and meta go (meta read from OUT)")
    args = ap.parse_args()

    import torch
    from safetensors.numpy import save_file

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = ds.data_dir(args.data)
    train = [(t, y) for t, y in ds.slabs("train", base)]
    train += [(r["text"], int(r["label"])) for r in ds.neuralchemy("train", base)]
    sem = random.Random(5).sample(train, min(len(train), args.prompts))  # the prompt head's sample
    pii_train = [folded(r["full_text"]) for r in ds.presidio_split(base, "train")]
    texts = [folded(t) for t, _ in sem] + pii_train
    y = np.array([y for _, y in sem] + [0] * len(pii_train), dtype=np.float32)
    wts = np.array([1.0] * len(sem) + [float(args.pii_weight)] * len(pii_train), dtype=np.float32)
    if args.limit:
        keep = random.Random(1).sample(range(len(texts)), args.limit)
        texts, y, wts = [texts[i] for i in keep], y[keep], wts[keep]
    val = ds.slabs("validation", base)
    val_texts = [folded(t) for t, _ in val]
    val_y = np.array([label for _, label in val])
    val_pii = [folded(r["full_text"]) for r in ds.presidio_split(base, "validation")]

    enc = MiniLM(max_tokens=TOKENS)
    weights = ModelCache().get(WEIGHTS)
    ids, ids_val = enc.tokenize(texts), enc.tokenize(val_texts + val_pii)
    model = torch_encoder(weights, args.layers, args.rank, args.alpha)
    t0 = time.time()
    with torch.no_grad():

        def frozen_states(all_ids: list[list[int]]) -> list[Any]:
            out: list[Any] = [None] * len(all_ids)
            for idx in batches([len(x) for x in all_ids], 64, None):
                x, m = padded(all_ids, idx)
                h = model.frozen(x, m).half()
                for r, i in enumerate(idx):
                    out[i] = h[r, : len(all_ids[i])].clone()
            return out

        h_train, h_val = frozen_states(ids), frozen_states(ids_val)
    print(f"frozen layers over {len(ids) + len(ids_val)} texts in {time.time() - t0:.0f}s", flush=True)

    head = torch.nn.Sequential(
        torch.nn.Dropout(0.1), torch.nn.Linear(HIDDEN, 256), torch.nn.ReLU(), torch.nn.Linear(256, 1)
    )
    params = list(model.lora.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-2)
    steps = args.epochs * len(batches([len(x) for x in ids], args.batch, None))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)

    def stack(states: list[Any], idx: list[int]) -> tuple[Any, Any]:
        tk = max(states[i].shape[0] for i in idx)
        h = torch.zeros((len(idx), tk, HIDDEN))
        m = torch.zeros((len(idx), tk))
        for r, i in enumerate(idx):
            h[r, : states[i].shape[0]] = states[i].float()
            m[r, : states[i].shape[0]] = 1.0
        return h, m

    def scores(states: list[Any]) -> np.ndarray:
        model.eval(), head.eval()
        out = np.zeros(len(states), dtype=np.float32)
        with torch.no_grad():
            for idx in batches([s.shape[0] for s in states], 64, None):
                h, m = stack(states, idx)
                out[idx] = torch.sigmoid(head(model.top(h, m))[:, 0]).numpy()
        return out

    def validate() -> dict[str, float]:
        s = scores(h_val)
        sv, sp = s[: len(val_texts)], s[len(val_texts) :]
        thr, f1 = best_threshold(sv, val_y)
        pii = float((sp >= thr).mean())
        return {"f1": round(f1, 4), "threshold": round(thr, 4), "pii_fpr": round(pii, 4), "metric": f1 - pii}

    rng = random.Random(0)
    yt, wt = torch.from_numpy(y), torch.from_numpy(wts)
    best: tuple[float, int, dict[str, Any], dict[str, Any], dict[str, float]] | None = None
    history = []
    for epoch in range(1, args.epochs + 1):
        model.train(), head.train()
        t0, total = time.time(), 0.0
        for idx in batches([len(x) for x in ids], args.batch, rng):
            h, m = stack(h_train, idx)
            logit = head(model.top(h, m))[:, 0]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, yt[idx], weight=wt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        v = validate()
        history.append({"epoch": epoch, "loss": round(total / len(ids), 4), **{k: v[k] for k in ("f1", "pii_fpr")}})
        print(f"epoch {epoch}: loss {total / len(ids):.4f}, {time.time() - t0:.0f}s; validation {v}", flush=True)
        if best is None or v["metric"] > best[0]:
            lora = {k: p.detach().clone() for k, p in model.lora.items()}
            hd = {k: p.detach().clone() for k, p in head.state_dict().items()}
            best = (v["metric"], epoch, lora, hd, v)
    assert best is not None
    _, epoch, lora, hd, v = best
    print(f"best epoch {epoch}: {v}", flush=True)
    if args.dry_run:
        return 0

    # the delta: A (rank, in) and B (out, rank) with the LoRA scale folded into B; merged as W + B @ A
    delta: dict[str, np.ndarray] = {}
    for i in range(LAYERS - args.layers, LAYERS):
        for target in TARGETS:
            key = f"l{i}_{target.replace('.', '_')}"
            name = f"encoder.layer.{i}.{target}"
            delta[name + ".lora_a"] = lora[key + "_a"].numpy().astype(np.float16)
            delta[name + ".lora_b"] = (lora[key + "_b"] * (args.alpha / args.rank)).numpy().astype(np.float16)
    args.out.mkdir(parents=True, exist_ok=True)
    delta_path = args.out / "injection_encoder_delta.safetensors"
    save_file(delta, str(delta_path))
    layers = [
        {"w": hd["1.weight"].numpy().T.round(6).tolist(), "b": hd["1.bias"].numpy().round(6).tolist()},
        {"w": hd["3.weight"].numpy().T.round(6).tolist(), "b": hd["3.bias"].numpy().round(6).tolist()},
    ]
    (args.out / "injection_semantic.json").write_text(
        json.dumps({"kind": "mlp 256 (tuned encoder)", "layers": layers}, separators=(",", ":"))
    )
    meta = json.loads((OUT / "injection_meta.json").read_text())
    meta_path = args.out / "injection_meta.json"
    meta["encoder"] = {
        "delta": "lora",
        "layers": list(range(LAYERS - args.layers, LAYERS)),
        "targets": list(TARGETS),
        "rank": args.rank,
        "alpha": args.alpha,
        "epochs": args.epochs,
        "best_epoch": epoch,
        "lr": args.lr,
        "batch": args.batch,
        "max_tokens": TOKENS,
        "history": history,
        "seeds": "sample random.Random(5), torch 0, batches random.Random(0)",
        "train_texts": len(texts),
        "train_sha256": hashlib.sha256(
            "\x1e".join(f"{y_}\x1f{t}" for t, y_ in zip(texts, y, strict=True)).encode()
        ).hexdigest(),
    }
    meta["semantic"] = {
        "head": "mlp 256 (tuned encoder)",
        "threshold_prompt": v["threshold"],
        "validation_f1_prompt": v["f1"],
        "validation_pii_fpr": v["pii_fpr"],
        "prompt_texts": len(texts),
        "threshold_document": meta["semantic"].get("threshold_document"),
    }
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    print(delta_path.name, f"{delta_path.stat().st_size / 1e6:.2f} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
