"""The character-level DGA network, served in numpy (no torch at run time).

Weights come from `models/dga_cnn.safetensors` (trained by scripts/train_dga_charcnn.py): an embedding,
parallel 1-D convolutions of widths 2..5, ReLU and max over the valid positions of the name, a dense
ReLU layer and one logit. A convolution is linear in the embeddings, so each kernel offset t gets a
table TABLE[t] = embedding @ kernel[t] (vocabulary x filters of all widths, narrower kernels zero at the
offsets they lack): the convolution of a name is then a sum of kmax table rows per position, gathers
and adds instead of a matrix product (the same arithmetic, regrouped). The max runs over the positions
where each kernel fits inside the name, as in training, so no padding is needed for one name and
padding never changes a batch's result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tutela.dns.training.charset import encode

MAX_BATCH = 256  # a chunk holds B x L x 512 floats


class CharCnnError(ValueError):
    pass


class CharCnn:
    def __init__(self, tensors: Mapping[str, Any], widths: Sequence[int] = (2, 3, 4, 5)) -> None:
        import numpy as np

        try:
            emb = np.asarray(tensors["emb.weight"], dtype=np.float32)
            convs = [(np.asarray(tensors[f"convs.{i}.weight"], np.float32), np.asarray(tensors[f"convs.{i}.bias"],
                      np.float32)) for i in range(len(widths))]  # fmt: skip
            self.w_hidden = np.ascontiguousarray(np.asarray(tensors["hidden.weight"], np.float32).T)
            self.b_hidden = np.asarray(tensors["hidden.bias"], np.float32)
            self.w_out = np.asarray(tensors["out.weight"], np.float32).reshape(-1)
            self.b_out = float(np.asarray(tensors["out.bias"]).reshape(-1)[0])
        except KeyError as e:
            raise CharCnnError(f"character model lacks tensor {e}") from None
        self.widths = tuple(int(k) for k in widths)
        self.kmax = max(self.widths)
        self.emb = emb
        e_dim = emb.shape[1]
        self.filters = convs[0][0].shape[0]
        # W: (kmax * E, n_widths * F); block j holds kernel j's weights at window offsets 0..k-1
        W = np.zeros((self.kmax * e_dim, len(self.widths) * self.filters), np.float32)
        for j, ((w, _b), k) in enumerate(zip(convs, self.widths, strict=True)):
            if w.shape != (self.filters, e_dim, k):
                raise CharCnnError(f"conv {j} has shape {w.shape}")
            # w[f, e, t] multiplies emb[pos + t, e]; windows are laid out (t, e) flattened
            W[: k * e_dim, j * self.filters : (j + 1) * self.filters] = w.transpose(2, 1, 0).reshape(k * e_dim, -1)
        # TABLE[t, v] = emb[v] @ W[t*E:(t+1)*E]: row 0 (padding, zero embedding) stays zero
        # Kernels are stored by width, narrowest first, so offset t only touches the columns of widths > t:
        # keep those columns (self.cols[t] onwards) only.
        if list(self.widths) != sorted(self.widths) or self.widths[0] < 2:
            raise CharCnnError("widths must be increasing and at least 2")
        self.cols = [0] + [sum(1 for k in self.widths if k <= t) * self.filters for t in range(1, self.kmax)]
        self.table = [
            np.ascontiguousarray((emb @ W[t * e_dim : (t + 1) * e_dim])[:, self.cols[t] :].astype(np.float32))
            for t in range(self.kmax)
        ]
        self.b = np.concatenate([b for _w, b in convs]).astype(np.float32)
        if self.w_hidden.shape[0] != W.shape[1] or self.w_out.shape[0] != self.w_hidden.shape[1]:
            raise CharCnnError("dense layers do not match the convolutions")

    @classmethod
    def from_safetensors(cls, tensors: Mapping[str, Any]) -> CharCnn:
        return cls(tensors)

    def logit_one(self, label: str, suffix: str) -> float:
        import numpy as np

        ids = np.asarray(encode(label, suffix), dtype=np.intp)
        n = len(ids)
        pad = np.zeros(n + self.kmax - 1, dtype=np.intp)
        pad[:n] = ids
        table, cols = self.table, self.cols
        h = table[0][pad[:n]]
        for t in range(1, self.kmax):
            h[:, cols[t] :] += table[t][pad[t : t + n]]
        F = self.filters
        pooled = np.empty(len(self.widths) * F, np.float32)
        for j, k in enumerate(self.widths):
            pooled[j * F : (j + 1) * F] = h[: max(n - k + 1, 1), j * F : (j + 1) * F].max(axis=0)
        z = np.maximum(pooled + self.b, 0.0)
        hid = np.maximum(z @ self.w_hidden + self.b_hidden, 0.0)
        return float(hid @ self.w_out + self.b_out)

    def logit_batch(self, names: Sequence[tuple[str, str]]) -> Any:
        """(label, suffix) pairs -> logits, in chunks of MAX_BATCH names."""
        import numpy as np

        out = np.zeros(len(names), dtype=np.float64)
        for start in range(0, len(names), MAX_BATCH):
            chunk = [encode(lab, suf) for lab, suf in names[start : start + MAX_BATCH]]
            L = max(len(c) for c in chunk)
            ids = np.zeros((len(chunk), L), dtype=np.intp)
            n = np.zeros(len(chunk), dtype=np.intp)
            for i, c in enumerate(chunk):
                ids[i, : len(c)] = c
                n[i] = len(c)
            pad = np.zeros((len(chunk), L + self.kmax - 1), dtype=np.intp)
            pad[:, :L] = ids
            h = self.table[0][pad[:, :L]]  # (B, L, nW*F)
            for t in range(1, self.kmax):
                h[:, :, self.cols[t] :] += self.table[t][pad[:, t : t + L]]
            F = self.filters
            pos = np.arange(L)[None, :]
            pooled = []
            for j, k in enumerate(self.widths):
                valid = pos <= (n[:, None] - k)
                hj = np.where(valid[:, :, None], h[:, :, j * F : (j + 1) * F], -1e4)
                pooled.append(hj.max(axis=1))
            z = np.maximum(np.concatenate(pooled, axis=1) + self.b, 0.0)
            hid = np.maximum(z @ self.w_hidden + self.b_hidden, 0.0)
            out[start : start + len(chunk)] = hid @ self.w_out + self.b_out
        return out
