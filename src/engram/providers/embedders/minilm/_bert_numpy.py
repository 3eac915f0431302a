"""A numpy forward pass of a BERT encoder with mean pooling: the fallback without ONNX Runtime."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

Arrays = dict[str, npt.NDArray[Any]]
F32 = npt.NDArray[np.float32]


def _layer_norm(x: F32, weights: Arrays, prefix: str, eps: float) -> F32:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    normed = (x - mean) / np.sqrt(var + eps)
    out: F32 = normed * weights[f"{prefix}.weight"] + weights[f"{prefix}.bias"]
    return out


def _dense(x: F32, weights: Arrays, prefix: str) -> F32:
    return x @ weights[f"{prefix}.weight"].T + weights[f"{prefix}.bias"]


def _erf(x: F32) -> F32:
    """Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7, vectorized."""
    sign = np.sign(x)
    a = np.abs(x).astype(np.float64)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)


def _gelu(x: F32) -> F32:
    return (0.5 * x * (1.0 + _erf(x / np.float32(math.sqrt(2.0))))).astype(np.float32)


def encode(
    weights: Arrays,
    input_ids: npt.NDArray[np.int64],
    attention_mask: npt.NDArray[np.int64],
    *,
    heads: int,
    layers: int,
    eps: float,
) -> F32:
    """Mean-pooled, L2-normalized sentence vectors, shape (batch, hidden)."""
    batch, seq = input_ids.shape
    x = (
        weights["embeddings.word_embeddings.weight"][input_ids]
        + weights["embeddings.position_embeddings.weight"][:seq]
        + weights["embeddings.token_type_embeddings.weight"][0]
    ).astype(np.float32)
    x = _layer_norm(x, weights, "embeddings.LayerNorm", eps)
    hidden = x.shape[-1]
    head_dim = hidden // heads
    mask = attention_mask.astype(np.float32)
    bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
    for i in range(layers):
        p = f"encoder.layer.{i}"

        def split(t: F32) -> F32:
            return t.reshape(batch, seq, heads, head_dim).transpose(0, 2, 1, 3)

        q = split(_dense(x, weights, f"{p}.attention.self.query"))
        k = split(_dense(x, weights, f"{p}.attention.self.key"))
        v = split(_dense(x, weights, f"{p}.attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(head_dim)) + bias
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
        x = _layer_norm(
            _dense(ctx, weights, f"{p}.attention.output.dense") + x,
            weights,
            f"{p}.attention.output.LayerNorm",
            eps,
        )
        h = _gelu(_dense(x, weights, f"{p}.intermediate.dense"))
        x = _layer_norm(
            _dense(h, weights, f"{p}.output.dense") + x, weights, f"{p}.output.LayerNorm", eps
        )
    pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
    norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    out: F32 = (pooled / norms).astype(np.float32)
    return out
