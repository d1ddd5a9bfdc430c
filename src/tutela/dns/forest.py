"""Gradient-boosted trees evaluated without LightGBM: fast enough to sit on the DNS data path.

A `Forest` is built from the compact JSON that `tutela train dns` writes (`to_compact` turns a
LightGBM `dump_model()` into it). Two evaluators share one spec and give LightGBM's raw scores:

- `raw_one(x)`: one feature vector. The trees are compiled into a single Python function of nested
  comparisons (a few µs for ~100 shallow trees, against ~100 µs for `Booster.predict` on one row).
  The generated source is built only from numbers that were validated as int/float, so a model file,
  even a tampered one (it is also pinned by sha256), cannot inject code.
- `raw_batch(X)`: many rows with numpy, vectorised over rows, one tree at a time.
A forest of many small trees (at most 8 splits each, the 1,020-tree family model) evaluates one row with a
leaf table per tree instead (`_table_one`: one gather, one comparison, `packbits`, one lookup; ~2.6x faster
than the compiled function there, bit-identical).

Where the C extension is built (tutela._native.dnsfeatures), `raw_one` of a forest of larger trees runs the same
trees over flat arrays in C (same comparisons, leaves added in tree order from 0.0: bit-identical); the compiled
function stays the reference (`raw_one_python`) and serves any row that is not a list of floats.

Only numerical `<=` splits without missing-value routing are supported (training sets
`use_missing=False` and never produces NaN features); anything else is rejected at load.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tutela._native import load as load_native

FORMAT = "tutela-forest/1"
MAX_DEPTH = 40
TABLE_BITS = 8  # a tree with at most this many splits gets a 2**bits leaf table (see Forest._table_one)
SUM_CHUNK = 16  # trees added per statement in the compiled evaluator
_NATIVE = load_native("dnsfeatures")  # the C evaluator, or None: chosen once, at import


class ForestError(ValueError):
    """The forest spec is malformed or uses an unsupported feature."""


def to_compact(dump: Mapping[str, Any], feature_names: Sequence[str]) -> dict[str, Any]:
    """LightGBM `Booster.dump_model()` -> the compact spec shipped in the package."""
    num_class = int(dump.get("num_tree_per_iteration", dump.get("num_class", 1)))
    trees = []
    for i, info in enumerate(dump["tree_info"]):
        tree = _flatten(info["tree_structure"])
        tree["class"] = i % num_class
        trees.append(tree)
    return {"format": FORMAT, "num_class": num_class, "feature_names": list(feature_names), "trees": trees}


def _flatten(root: Mapping[str, Any]) -> dict[str, Any]:
    split: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    right: list[int] = []
    leaf: list[float] = []

    def walk(node: Mapping[str, Any]) -> int:
        if "leaf_value" in node or "split_feature" not in node:
            leaf.append(float(node.get("leaf_value", 0.0)))
            return ~(len(leaf) - 1)
        if node.get("decision_type", "<=") != "<=":
            raise ForestError(f"unsupported decision type {node.get('decision_type')!r}")
        if node.get("missing_type", "None") not in ("None", None):
            raise ForestError("missing-value routing is not supported; train with use_missing=False")
        idx = len(split)
        split.append(int(node["split_feature"]))
        threshold.append(float(node["threshold"]))
        left.append(0)
        right.append(0)
        left[idx] = walk(node["left_child"])
        right[idx] = walk(node["right_child"])
        return idx

    walk(root)
    return {"split": split, "threshold": threshold, "left": left, "right": right, "leaf": leaf}


class Forest:
    """A validated forest; `raw_one`/`raw_batch` return raw scores, `proba_*` probabilities."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        if spec.get("format") != FORMAT:
            raise ForestError(f"not a {FORMAT} spec")
        self.num_class = int(spec["num_class"])
        self.feature_names = tuple(str(n) for n in spec["feature_names"])
        self.num_features = len(self.feature_names)
        self.trees = [self._validate(t) for t in spec["trees"]]
        self._one: Callable[[Sequence[float]], list[float]] | None = None
        self._native: Any = None  # the C evaluator, built with the compiled one (which validates depth first)
        # trees of at most TABLE_BITS splits each (the family forest: 1,020 trees of 6) are evaluated in numpy
        # all at once (see _table_one); larger trees by the compiled function
        self._table: tuple[Any, ...] | None = None
        self.tabulated = (
            bool(self.trees)
            and max(len(t["split"]) for t in self.trees) <= TABLE_BITS
            and len(self.trees) % self.num_class == 0
            and all(t["class"] == i % self.num_class for i, t in enumerate(self.trees))
        )

    def _validate(self, tree: Mapping[str, Any]) -> dict[str, Any]:
        split = [int(v) for v in tree["split"]]
        threshold = [float(v) for v in tree["threshold"]]
        left = [int(v) for v in tree["left"]]
        right = [int(v) for v in tree["right"]]
        leaf = [float(v) for v in tree["leaf"]]
        klass = int(tree["class"])
        n = len(split)
        if (
            not (len(threshold) == len(left) == len(right) == n)
            or len(leaf) != n + 1
            or not 0 <= klass < self.num_class
        ):
            raise ForestError("inconsistent tree arrays")
        for f in split:
            if not 0 <= f < self.num_features:
                raise ForestError(f"split on unknown feature {f}")
        for c in (*left, *right):
            if not (0 <= c < n or 0 <= ~c < len(leaf)):
                raise ForestError(f"child {c} out of range")
        if not all(math.isfinite(v) for v in (*threshold, *leaf)):
            raise ForestError("non-finite threshold or leaf value")
        return {"class": klass, "split": split, "threshold": threshold, "left": left, "right": right, "leaf": leaf}

    # -- one row: compiled ------------------------------------------------------------------------
    def _compile(self) -> Callable[[Sequence[float]], list[float]]:
        # Features live in local variables (LOAD_FAST), not list items: ~2x faster. Each tree is one conditional
        # expression and a class's trees are added in one expression, left to right from 0.0 (what `s += leaf`
        # tree after tree computed, bit for bit), in statements of SUM_CHUNK trees so that the expression stays
        # shallow for the compiler; no running sum is stored and loaded per tree (~9% faster).
        used = sorted({f for tree in self.trees for f in tree["split"]})
        lines = ["def _forest(x):"]
        if used:
            lines.append(f"    {', '.join(f'x{f}' for f in used)}, = {', '.join(f'x[{f}]' for f in used)},")
        terms: list[list[str]] = [[] for _ in range(self.num_class)]
        for tree in self.trees:
            terms[tree["class"]].append(self._expression(tree, 0, 0) if tree["split"] else repr(tree["leaf"][0]))
        for k, class_terms in enumerate(terms):
            lines.append(f"    s{k} = 0.0")
            for i in range(0, len(class_terms), SUM_CHUNK):
                lines.append(f"    s{k} = s{k} + " + " + ".join(class_terms[i : i + SUM_CHUNK]))
        lines.append(f"    return [{', '.join(f's{k}' for k in range(self.num_class))}]")
        namespace: dict[str, Any] = {}
        exec(compile("\n".join(lines), "<tutela-forest>", "exec"), {"__builtins__": {}}, namespace)
        fn: Callable[[Sequence[float]], list[float]] = namespace["_forest"]
        return fn

    @staticmethod
    def _expression(tree: dict[str, Any], node: int, depth: int) -> str:
        """A tree as nested conditional expressions, from validated ints and floats only."""
        if depth > MAX_DEPTH:
            raise ForestError("tree too deep")
        if node < 0:
            return repr(tree["leaf"][~node])
        left = Forest._expression(tree, tree["left"][node], depth + 1)
        right = Forest._expression(tree, tree["right"][node], depth + 1)
        return f"({left} if x{tree['split'][node]} <= {tree['threshold'][node]!r} else {right})"

    def compile(self) -> None:
        """Build the one-row evaluator now (the family forest takes ~0.3 s): warmups call this, so the first
        flagged name on the data path does not pay for it."""
        if self.tabulated:
            if self._table is None:
                self._table = self._build_table()
        elif self._one is None:
            self._build_one()

    def _build_one(self) -> Callable[[Sequence[float]], list[float]]:
        self._one = one = self._compile()  # raises ForestError on a tree deeper than MAX_DEPTH
        if _NATIVE is not None:
            self._native = _NATIVE.Trees(self.trees, self.num_class, self.num_features)
        return one

    def raw_one(self, x: Sequence[float]) -> list[float]:
        if self.tabulated:
            return self._table_one(x)
        one = self._one if self._one is not None else self._build_one()
        if self._native is not None:
            raw: list[float] | None = self._native.raw_one(x)
            if raw is not None:  # None: not a list of floats, one per feature
                return raw
        return one(x)

    def raw_one_python(self, x: Sequence[float]) -> list[float]:
        """raw_one by the compiled Python function (the reference of the C evaluator)."""
        one = self._one if self._one is not None else self._build_one()
        return one(x)

    # -- one row, many small trees: a leaf table per tree ---------------------------------------------
    def _build_table(self) -> tuple[Any, ...]:
        """Each tree's splits get slots 0..k-1 of a byte (k <= 8; unused slots compare x[0] <= -inf, always
        False). A row's comparisons, all trees at once, are one gather and one `<=`; `packbits` turns each
        tree's 8 outcomes into a byte, which indexes that tree's 256-entry leaf table, built here by walking
        the tree for every byte value. Trees are laid out so that a (rounds, classes) reshape puts class k's
        trees in column k in tree order: the per-class sum (numpy adds the rows one after another, as the
        compiled function does) is bit-identical to the compiled evaluator, which tests check."""
        import numpy as np

        n_trees = len(self.trees)
        feat = np.zeros((n_trees, TABLE_BITS), dtype=np.intp)
        thr = np.full((n_trees, TABLE_BITS), -np.inf)
        # unused slots are always False, so codes stay below 2**bits: a table no larger than the trees need
        # (64 entries a tree for the family forest; the table is read once per tree and row, so its size is
        # what the data path pulls through the caches)
        bits = max(len(t["split"]) for t in self.trees)
        codes = np.arange(1 << bits)
        table = np.zeros((n_trees, 1 << bits))
        for i, tree in enumerate(self.trees):
            k = len(tree["split"])
            feat[i, :k] = tree["split"]
            thr[i, :k] = tree["threshold"]
            leaf = np.asarray(tree["leaf"])
            if not k:
                table[i] = leaf[0]
                continue
            left, right = np.asarray(tree["left"]), np.asarray(tree["right"])
            node = np.zeros(len(codes), dtype=np.intp)
            for _ in range(k):  # a path has at most k splits
                inner = node >= 0
                at = node[inner]
                go_left = (codes[inner] >> at) & 1 == 1
                node[inner] = np.where(go_left, left[at], right[at])
            table[i] = leaf[~node]
        base = np.arange(n_trees, dtype=np.intp) << bits
        return feat.reshape(-1), thr.reshape(-1), table.reshape(-1), base

    def _table_one(self, x: Sequence[float]) -> list[float]:
        import numpy as np

        if self._table is None:
            self._table = self._build_table()
        feat, thr, table, base = self._table
        row = np.asarray(x, dtype=np.float64)
        if row.shape != (self.num_features,):
            raise ForestError(f"expected {self.num_features} features, got {row.shape}")
        code = np.packbits(row[feat] <= thr, bitorder="little")
        leaves = table[base + code].reshape(-1, self.num_class)
        out: list[float] = leaves.sum(axis=0).tolist()
        return out

    def proba_one(self, x: Sequence[float]) -> list[float]:
        raw = self.raw_one(x)
        if self.num_class == 1:
            return [_sigmoid(raw[0])]
        top = max(raw)
        exps = [math.exp(v - top) for v in raw]
        total = sum(exps)
        return [e / total for e in exps]

    # -- many rows: numpy -------------------------------------------------------------------------
    def raw_batch(self, X: Any) -> Any:
        import numpy as np

        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.num_features:
            raise ForestError(f"expected shape (n, {self.num_features}), got {X.shape}")
        out = np.zeros((X.shape[0], self.num_class))
        rows = np.arange(X.shape[0])
        for tree in self.trees:
            leaf = np.asarray(tree["leaf"])
            if not tree["split"]:
                out[:, tree["class"]] += leaf[0]
                continue
            split = np.asarray(tree["split"])
            thr = np.asarray(tree["threshold"])
            left = np.asarray(tree["left"])
            right = np.asarray(tree["right"])
            node = np.zeros(X.shape[0], dtype=np.int64)
            active = node >= 0
            while active.any():
                idx = node[active]
                go_left = X[rows[active], split[idx]] <= thr[idx]
                node[active] = np.where(go_left, left[idx], right[idx])
                active = node >= 0
            out[:, tree["class"]] += leaf[~node]
        return out

    def proba_batch(self, X: Any) -> Any:
        import numpy as np

        raw = self.raw_batch(X)
        if self.num_class == 1:
            return 1.0 / (1.0 + np.exp(-raw[:, 0]))
        raw = raw - raw.max(axis=1, keepdims=True)
        e = np.exp(raw)
        return e / e.sum(axis=1, keepdims=True)


def _sigmoid(v: float) -> float:
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)
