"""Features of a document's sentence unit relative to the rest of its document (the document head's input).

A planted instruction is often an ordinary request ("How do solar panels work?") that only stands out because
it does not belong where it is: inside an invoice e-mail, a table or code. So the document head sees, for each
unit, its embedding, its embedding minus the mean of the document's *other* units, how close it is to them
(cosine to that mean, nearest other unit), how many units the document has, and the fast tier's score of the
unit, absolute and relative to the other units. Shared by the detector and scripts/train_runtime_document_head.py,
so what was trained is what runs. Costs O(n^2 x 384) for n <= `document_units` units: negligible beside the
encoder.
"""

from __future__ import annotations

from typing import Any

from tutela.core.features import require

NAME = "unit+context+fast"  # the `features` a document head declares in its model file
WIDTH = 2 * 384 + 6


def unit_features(embeddings: Any, fast: Any) -> Any:
    """(n, WIDTH) float32 for n unit embeddings (unit-norm rows) and their fast-tier scores."""
    np = require("numpy", "runtime")
    e = np.asarray(embeddings, dtype=np.float32)
    f = np.asarray(fast, dtype=np.float32)
    n = len(e)
    if n > 1:
        others = (e.sum(0)[None] - e) / (n - 1)
        gram = e @ e.T
        np.fill_diagonal(gram, -1.0)
        nearest = gram.max(1)
        cos = (e * others).sum(1) / np.maximum(np.linalg.norm(others, axis=1), 1e-6)
        fast_rel = f - (f.sum() - f) / (n - 1)
    else:  # a one-unit document has no context: the flag says so
        others = np.zeros_like(e)
        nearest = cos = fast_rel = np.zeros(n, np.float32)
    scalars = np.stack([cos, nearest, np.full(n, float(n == 1)), np.full(n, np.log1p(n) / 4), f, fast_rel], axis=1)
    return np.hstack([e, e - others, scalars]).astype(np.float32)
