"""Build an ONNX graph of a BERT encoder with mean pooling and L2 normalization from raw weights.

The graph takes `input_ids` and `attention_mask` (int64, shape [batch, seq], any seq up to the
position table) and returns `sentence_embedding` (float32, [batch, hidden]), the same computation as
sentence-transformers' Transformer -> Pooling(mean) -> Normalize pipeline.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

Arrays = dict[str, npt.NDArray[Any]]
OPSET = 17


class _Graph:
    """Accumulates nodes and initializers; `op()` returns the output name."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper = helper
        self.numpy_helper = numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def const(self, name: str, value: npt.ArrayLike, dtype: Any = np.float32) -> str:
        array = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        self.initializers.append(self.numpy_helper.from_array(array, name=name))
        return name

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        self._count += 1
        out = f"{op_type.lower()}_{self._count}"
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out


def _dense(g: _Graph, x: str, weights: Arrays, prefix: str) -> str:
    w = g.const(f"{prefix}.wT", weights[f"{prefix}.weight"].T)
    b = g.const(f"{prefix}.b", weights[f"{prefix}.bias"])
    return g.op("Add", g.op("MatMul", x, w), b)


def _layer_norm(g: _Graph, x: str, weights: Arrays, prefix: str, eps: float) -> str:
    gamma = g.const(f"{prefix}.g", weights[f"{prefix}.weight"])
    beta = g.const(f"{prefix}.beta", weights[f"{prefix}.bias"])
    return g.op("LayerNormalization", x, gamma, beta, axis=-1, epsilon=eps)


def _attention(g: _Graph, x: str, bias: str, weights: Arrays, p: str, heads: int) -> str:
    split = g.const(f"{p}.split_shape", [0, 0, heads, -1], np.int64)
    merge = g.const(f"{p}.merge_shape", [0, 0, -1], np.int64)

    def project(name: str, perm: list[int]) -> str:
        t = _dense(g, x, weights, f"{p}.attention.self.{name}")
        return g.op("Transpose", g.op("Reshape", t, split), perm=perm)

    q = project("query", [0, 2, 1, 3])
    k = project("key", [0, 2, 3, 1])
    v = project("value", [0, 2, 1, 3])
    head_dim = weights[f"{p}.attention.self.query.weight"].shape[0] // heads
    scale = g.const(f"{p}.scale", 1.0 / math.sqrt(head_dim))
    scores = g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), bias)
    ctx = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
    ctx = g.op("Reshape", g.op("Transpose", ctx, perm=[0, 2, 1, 3]), merge)
    return _dense(g, ctx, weights, f"{p}.attention.output.dense")


def _feed_forward(g: _Graph, x: str, weights: Arrays, p: str) -> str:
    h = _dense(g, x, weights, f"{p}.intermediate.dense")
    erf = g.op("Erf", g.op("Mul", h, g.const(f"{p}.inv_sqrt2", 1.0 / math.sqrt(2.0))))
    gelu = g.op("Mul", g.op("Mul", h, g.const(f"{p}.half", 0.5)), g.op("Add", erf, "one"))
    return _dense(g, gelu, weights, f"{p}.output.dense")


def build_model(weights: Arrays, *, heads: int, layers: int, eps: float) -> bytes:
    """The serialized ONNX model."""
    from onnx import TensorProto, checker

    g = _Graph()
    g.const("one", 1.0)
    positions = (
        weights["embeddings.position_embeddings.weight"]
        + weights["embeddings.token_type_embeddings.weight"][0]
    )
    word = g.op(
        "Gather",
        g.const("word_embeddings", weights["embeddings.word_embeddings.weight"]),
        "input_ids",
    )
    seq_len = g.op("Shape", "input_ids", start=1, end=2)  # 1-D: [seq]
    zero = g.const("zero_1d", [0], np.int64)
    pos = g.op("Slice", g.const("position_embeddings", positions), zero, seq_len, zero)
    x = _layer_norm(g, g.op("Add", word, pos), weights, "embeddings.LayerNorm", eps)

    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    axes12 = g.const("axes12", [1, 2], np.int64)
    neg = g.const("neg_inf", -1e9)
    bias = g.op("Mul", g.op("Sub", "one", g.op("Unsqueeze", mask, axes12)), neg)
    for i in range(layers):
        p = f"encoder.layer.{i}"
        attn = _attention(g, x, bias, weights, p, heads)
        x = _layer_norm(g, g.op("Add", attn, x), weights, f"{p}.attention.output.LayerNorm", eps)
        ffn = _feed_forward(g, x, weights, p)
        x = _layer_norm(g, g.op("Add", ffn, x), weights, f"{p}.output.LayerNorm", eps)

    mask3 = g.op("Unsqueeze", mask, g.const("axes2", [2], np.int64))
    axis1 = g.const("axes1", [1], np.int64)
    summed = g.op("ReduceSum", g.op("Mul", x, mask3), axis1, keepdims=0)
    counts = g.op("Max", g.op("ReduceSum", mask3, axis1, keepdims=0), g.const("tiny", 1e-9))
    mean = g.op("Div", summed, counts)
    norm = g.op("Sqrt", g.op("ReduceSum", g.op("Mul", mean, mean), axis1, keepdims=1))
    norm = g.op("Max", norm, g.const("eps_norm", 1e-12))
    g.nodes.append(g.helper.make_node("Div", [mean, norm], ["sentence_embedding"]))

    hidden = positions.shape[1]
    graph = g.helper.make_graph(
        g.nodes,
        "bert_mean_pooling",
        [
            g.helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            g.helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [
            g.helper.make_tensor_value_info(
                "sentence_embedding", TensorProto.FLOAT, ["batch", hidden]
            )
        ],
        initializer=g.initializers,
    )
    model = g.helper.make_model(
        graph,
        opset_imports=[g.helper.make_opsetid("", OPSET)],
        producer_name="engram",
    )
    model.ir_version = 8
    checker.check_model(model)
    return bytes(model.SerializeToString())
