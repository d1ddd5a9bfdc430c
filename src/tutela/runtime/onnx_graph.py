"""The MiniLM encoder as an ONNX graph, built in memory from the verified safetensors weights.

No export step and no torch: `build_model(weights)` writes the BERT encoder (embeddings, 6 layers of
self-attention and feed-forward, mean pooling, L2 normalisation) with `onnx.helper`, taking every
initialiser from the numpy arrays that `safetensors` read from the sha256-pinned file. The model is
serialised to bytes and handed to ONNX Runtime; nothing is written to disk, so there is no second
file to pin or to go stale. ONNX Runtime's graph optimiser fuses the LayerNorm / GELU / attention
patterns when the session is created.

Inputs: `input_ids` int64 (batch, tokens) and `attention_mask` float32 (batch, tokens). Output:
`embedding` float32 (batch, 384), unit length — the same as `encoder.MiniLM.encode_ids`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tutela.core.features import require

OPSET = 17


def build_model(weights: Mapping[str, Any], layers: int = 6, heads: int = 12, hidden: int = 384) -> Any:
    """An `onnx.ModelProto` of the sentence encoder over `weights` (raw safetensors arrays, torch layout)."""
    onnx = require("onnx", "runtime")
    np = require("numpy", "runtime")
    helper, tp = onnx.helper, onnx.TensorProto
    nodes: list[Any] = []
    inits: list[Any] = []
    dh = hidden // heads

    def init(name: str, arr: Any) -> str:
        inits.append(onnx.numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op: str, ins: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def linear(x: str, prefix: str, out: str) -> str:
        w = init(prefix + ".weight", np.asarray(weights[prefix + ".weight"], dtype=np.float32).T)
        b = init(prefix + ".bias", np.asarray(weights[prefix + ".bias"], dtype=np.float32))
        return node("Add", [node("MatMul", [x, w], out + "_mm"), b], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        g = init(prefix + ".weight", np.asarray(weights[prefix + ".weight"], dtype=np.float32))
        b = init(prefix + ".bias", np.asarray(weights[prefix + ".bias"], dtype=np.float32))
        return node("LayerNormalization", [x, g, b], out, axis=-1, epsilon=1e-12)

    f32 = np.float32
    init("word_emb", np.asarray(weights["embeddings.word_embeddings.weight"], dtype=f32))
    init("pos_emb", np.asarray(weights["embeddings.position_embeddings.weight"], dtype=f32))
    init("type_emb0", np.asarray(weights["embeddings.token_type_embeddings.weight"], dtype=f32)[0])
    init("heads_shape", np.array([0, 0, heads, dh], dtype=np.int64))
    init("hidden_shape", np.array([0, 0, hidden], dtype=np.int64))
    init("scale", np.array(1.0 / np.sqrt(dh), dtype=f32))
    init("one", np.array(1.0, dtype=f32))
    init("half", np.array(0.5, dtype=f32))
    init("inv_sqrt2", np.array(0.7071067811865476, dtype=f32))
    init("neg_big", np.array(-1e9, dtype=f32))
    init("axes_12", np.array([1, 2], dtype=np.int64))
    init("axis_1", np.array([1], dtype=np.int64))
    init("axis_2", np.array([2], dtype=np.int64))
    init("tiny", np.array(1e-12, dtype=f32))
    init("zero_1d", np.array([0], dtype=np.int64))
    init("one_1d", np.array([1], dtype=np.int64))
    init("two_1d", np.array([2], dtype=np.int64))

    # embeddings: word + position (0..T-1) + token type 0
    t = node("Slice", [node("Shape", ["input_ids"], "ids_shape"), "one_1d", "two_1d"], "n_tokens")
    pe = node("Slice", ["pos_emb", "zero_1d", t, "zero_1d"], "pe")
    h = node("Add", [node("Gather", ["word_emb", "input_ids"], "we"), pe], "e1")
    h = node("Add", [h, "type_emb0"], "e2")
    h = layer_norm(h, "embeddings.LayerNorm", "emb")
    # attention bias: (1 - mask) * -1e9, shaped (B, 1, 1, T)
    inv = node("Sub", ["one", "attention_mask"], "mask_inv")
    bias = node("Unsqueeze", [node("Mul", [inv, "neg_big"], "mask_neg"), "axes_12"], "mask_bias")

    for i in range(layers):
        p = f"encoder.layer.{i}."
        q = node("Reshape", [linear(h, p + "attention.self.query", f"q{i}"), "heads_shape"], f"q{i}_r")
        k = node("Reshape", [linear(h, p + "attention.self.key", f"k{i}"), "heads_shape"], f"k{i}_r")
        v = node("Reshape", [linear(h, p + "attention.self.value", f"v{i}"), "heads_shape"], f"v{i}_r")
        q = node("Transpose", [q], f"q{i}_t", perm=[0, 2, 1, 3])
        k = node("Transpose", [k], f"k{i}_t", perm=[0, 2, 3, 1])
        v = node("Transpose", [v], f"v{i}_t", perm=[0, 2, 1, 3])
        att = node("Mul", [node("MatMul", [q, k], f"qk{i}"), "scale"], f"qk{i}_s")
        att = node("Softmax", [node("Add", [att, bias], f"qk{i}_b")], f"att{i}", axis=-1)
        ctx = node("Transpose", [node("MatMul", [att, v], f"ctx{i}")], f"ctx{i}_t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, "hidden_shape"], f"ctx{i}_r")
        a = linear(ctx, p + "attention.output.dense", f"ao{i}")
        h2 = layer_norm(node("Add", [a, h], f"ar{i}"), p + "attention.output.LayerNorm", f"h2_{i}")
        f = linear(h2, p + "intermediate.dense", f"ff{i}")
        erf = node("Erf", [node("Mul", [f, "inv_sqrt2"], f"ff{i}_s")], f"ff{i}_erf")
        gelu = node("Mul", [node("Mul", [f, "half"], f"ff{i}_h"), node("Add", [erf, "one"], f"ff{i}_e1")], f"g{i}")
        f = linear(gelu, p + "output.dense", f"fo{i}")
        h = layer_norm(node("Add", [f, h2], f"fr{i}"), p + "output.LayerNorm", f"h{i}")

    # mean pooling over real tokens, then L2 normalisation
    m3 = node("Unsqueeze", ["attention_mask", "axis_2"], "mask3")
    summed = node("ReduceSum", [node("Mul", [h, m3], "hm"), "axis_1"], "hsum", keepdims=0)
    count = node("Max", [node("ReduceSum", ["attention_mask", "axis_1"], "msum", keepdims=1), "one"], "mcount")
    pooled = node("Div", [summed, count], "pooled")
    norm = node("Max", [node("ReduceL2", [pooled], "l2", axes=[1], keepdims=1), "tiny"], "l2c")
    node("Div", [pooled, norm], "embedding")

    graph = helper.make_graph(
        nodes,
        "minilm",
        [
            helper.make_tensor_value_info("input_ids", tp.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", tp.FLOAT, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("embedding", tp.FLOAT, ["batch", hidden])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tutela")
    model.ir_version = 8
    return model


def session(weights: Mapping[str, Any], threads: int = 1) -> Any:
    """An ONNX Runtime session (CPU) over the in-memory graph."""
    ort = require("onnxruntime", "runtime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(
        build_model(weights).SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
    )
