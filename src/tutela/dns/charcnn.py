"""The character-level DGA network, served in numpy or C (no torch at run time).

Weights come from `models/dga_cnn.safetensors` (trained by scripts/train_dga_charcnn.py): an embedding,
parallel 1-D convolutions of widths 2..5, ReLU and max over the valid positions of the name, a dense
ReLU layer and one logit. A convolution is linear in the embeddings, so each kernel offset t gets a
table TABLE[t] = embedding @ kernel[t] (vocabulary x filters of all widths; zero for kernels narrower
than t+1): the convolution at position i is the sum over t of TABLE[t][char at i+t], one gather and one
sum instead of a matrix product (the same arithmetic, regrouped). Past the end of a name sits an END
token whose TABLE[t] row is -inf for every kernel wider than t, so a window that does not fit inside the
name can never win the max (as in training, where such windows are masked): one name needs no mask, and
padding never changes a batch's result.

Where the C extension tutela._native.charcnn is built and the CPU has AVX2 and FMA, names go through C one
at a time (numpy's per-call overhead dominated at one name per call; batches are faster so too): the same
float32 operations in the same order as `logit_one_numpy` on such a CPU, the dense layers summed as numpy's
BLAS (OpenBLAS) sums them there, so the logits are bit-identical (tests/dns_models/test_charcnn_native.py).
`logit_one_numpy` and `logit_batch_numpy` are the twins and the reference, used where the extension is
missing, the CPU lacks AVX2/FMA, or TUTELA_PURE_PYTHON=1; `path` says which runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tutela._native import load
from tutela.dns.training.charset import INDEX, MAX_CHARS, OOV, encode, text_of

_NATIVE = load("charcnn")  # None: numpy only (not built, or TUTELA_PURE_PYTHON=1)
if _NATIVE is not None and not _NATIVE.KERNEL:  # built, but this CPU lacks AVX2/FMA
    _NATIVE = None


def path() -> str:
    """Where one name's forward pass runs in this process: "native" (C) or "numpy"."""
    return "numpy" if _NATIVE is None else "native"


MAX_BATCH = 8  # names gathered at once: B x n x kmax x filters floats stay in cache (measured 4-64)


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
        V = emb.shape[0]
        self.end = V  # the END token's id, one past the vocabulary
        self.vocab = V + 1
        big = np.zeros((self.kmax * self.vocab, W.shape[1]), np.float32)
        for t in range(self.kmax):
            big[t * self.vocab : t * self.vocab + V] = emb @ W[t * e_dim : (t + 1) * e_dim]
            for j, k in enumerate(self.widths):
                if t < k:
                    big[t * self.vocab + self.end, j * self.filters : (j + 1) * self.filters] = -np.inf
        self.table = big
        self.b = np.concatenate([b for _w, b in convs]).astype(np.float32)
        self.window = np.arange(MAX_CHARS)[:, None] + np.arange(self.kmax)[None, :]  # (L, kmax) positions
        self.offset = (np.arange(self.kmax) * self.vocab)[None, :]  # row offset of TABLE[t] in `table`
        # logit_one: TABLE[t] as separate contiguous arrays, and ASCII byte -> id as a bytes.translate table
        self.tables = [np.ascontiguousarray(big[t * self.vocab : (t + 1) * self.vocab]) for t in range(self.kmax)]
        if self.vocab > 256:
            raise CharCnnError("vocabulary too large for byte ids")
        ids = [OOV] * 256  # non-ASCII characters were encoded as "?" -> OOV
        for c, i in INDEX.items():
            ids[ord(c)] = i
        self.byte_ids = bytes(ids)
        self.end_pad = bytes([self.end]) * (self.kmax - 1)
        if self.w_hidden.shape[0] != W.shape[1] or self.w_out.shape[0] != self.w_hidden.shape[1]:
            raise CharCnnError("dense layers do not match the convolutions")
        finite = [emb, self.w_hidden, self.b_hidden, self.w_out, self.b, np.float32(self.b_out)]
        if not all(np.isfinite(a).all() for a in finite):  # the C max, like numpy's, then needs no NaN rule
            raise CharCnnError("character model has non-finite weights")
        self.native: Any = None  # the C object keeps these arrays (buffer protocol) and checks their shapes
        if _NATIVE is not None:
            arrays = (self.table, self.b, self.w_hidden, self.b_hidden, self.w_out)
            self.native = _NATIVE.Net(*arrays, self.b_out, self.kmax)
        self.path = path()

    def ids(self, label: str, suffix: str) -> bytes:
        """The token ids of a name, one byte each (non-ASCII characters were encoded as "?" -> OOV)."""
        return text_of(label.lower(), suffix.lower()).encode("ascii", "replace").translate(self.byte_ids)

    @classmethod
    def from_safetensors(cls, tensors: Mapping[str, Any]) -> CharCnn:
        return cls(tensors)

    def logit_one(self, label: str, suffix: str) -> float:
        if self.native is not None:
            return self.native.logit(self.ids(label, suffix))  # type: ignore[no-any-return]
        return self.logit_ids_numpy(self.ids(label, suffix))

    def logit_one_numpy(self, label: str, suffix: str) -> float:
        return self.logit_ids_numpy(self.ids(label, suffix))

    def logit_ids_numpy(self, ids: bytes) -> float:
        """The logit of token ids (each < vocab). One gather of (n, filters) per kernel offset, summed in offset
        order: the same float32 additions, in the same order, as summing the (n, kmax, filters) gather of
        logit_batch_numpy (bit-identical), without building the (n, kmax) index grid or the 3-D array."""
        import numpy as np

        n = len(ids)
        pad = np.frombuffer(ids + self.end_pad, dtype=np.uint8)
        tables = self.tables
        h = tables[0].take(pad[:n], axis=0)
        for t in range(1, self.kmax):
            h += tables[t].take(pad[t : t + n], axis=0)
        z = np.maximum(h.max(axis=0) + self.b, 0.0)
        hid = np.maximum(z @ self.w_hidden + self.b_hidden, 0.0)
        return float(hid @ self.w_out + self.b_out)

    def logit_batch(self, names: Sequence[tuple[str, str]]) -> Any:
        """(label, suffix) pairs -> logits (float64 array): one name at a time in C where it runs (faster than
        numpy's batches, docs/models/dns.md; equal to logit_one), else `logit_batch_numpy`."""
        import numpy as np

        if self.native is None:
            return self.logit_batch_numpy(names)
        logit, ids = self.native.logit, self.ids
        return np.array([logit(ids(lab, suf)) for lab, suf in names], dtype=np.float64)

    def logit_batch_numpy(self, names: Sequence[tuple[str, str]]) -> Any:
        """(label, suffix) pairs -> logits. Names are grouped by length (no padding is computed; the END
        token still pads the windows at each name's end) and gathered MAX_BATCH at a time."""
        import numpy as np

        out = np.zeros(len(names), dtype=np.float64)
        by_len: dict[int, list[int]] = {}
        encoded = [encode(lab, suf) for lab, suf in names]
        for i, ids in enumerate(encoded):
            by_len.setdefault(len(ids), []).append(i)
        for n, rows in by_len.items():
            window = self.window[:n]
            for start in range(0, len(rows), MAX_BATCH):
                chunk = rows[start : start + MAX_BATCH]
                pad = np.full((len(chunk), n + self.kmax - 1), self.end, dtype=np.intp)
                pad[:, :n] = [encoded[i] for i in chunk]
                h = self.table[pad[:, window] + self.offset].sum(axis=2)  # (B, n, filters)
                z = np.maximum(h.max(axis=1) + self.b, 0.0)
                hid = np.maximum(z @ self.w_hidden + self.b_hidden, 0.0)
                out[chunk] = hid @ self.w_out + self.b_out
        return out


class GatedCnn:
    """Two character CNNs as one: the second runs only where the first's logit reaches `gate` (the first's
    LOW threshold, about 1% of benign names), and there the logit is the mean of both. A name that the first
    scores below the gate costs the first model alone, so the miss path of ordinary names does not grow."""

    def __init__(self, first: CharCnn, second: CharCnn, gate: float) -> None:
        self.first = first
        self.second = second
        self.gate = float(gate)

    def logit_one(self, label: str, suffix: str) -> float:
        z = self.first.logit_one(label, suffix)
        if z < self.gate:
            return z
        return (z + self.second.logit_one(label, suffix)) / 2.0

    def logit_batch(self, names: Sequence[tuple[str, str]]) -> Any:
        import numpy as np

        z = self.first.logit_batch(names)
        rows = np.flatnonzero(z >= self.gate)
        if len(rows):
            z[rows] = (z[rows] + self.second.logit_batch([names[i] for i in rows])) / 2.0
        return z
