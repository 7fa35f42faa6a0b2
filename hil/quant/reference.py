"""The integer reference: THE definition of the int8 EmbBERT-Q (docs/int8-spec.md).

Everything after quantization is integer arithmetic on numpy int64 arrays: no float, no torch
(the firmware host runtime imports this module where torch is not installed). The C engine
(firmware/src/forward.c) must return exactly these int32 logits for the same token ids; the
tests compare them bit for bit. The code computes all rows at once for speed, but each step
is written so that it equals the C engine's row-at-a-time walk (no step mixes rows except
attention, which is row-independent per query, and the causal convolution).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

# The fixed-point constants of the spec (docs/int8-spec.md); the C engine has the same values.
RMS_NUM_BITS = 48  # R = isqrt(2^48 // sum x^2)
EXP_ZMIN = -16 * 256  # softmax exponent argument in Q8, clamped to [-16, 0]
EXP_ONE = 1 << 14  # e_j in Q14
ATTN_INV_BITS = 46  # attn = acc * (2^46 // E) >> 30  -> Q16
ATTN_OUT_SHIFT = 30
ATTN_FRAC_BITS = 16

# cfg.dims layout (int32 vector), shared with firmware/include/ebq_model.h.
DIMS_FIELDS = ("version", "vocab_size", "max_len", "emb_dim", "dim", "n_layers", "kernel",
               "num_labels")
# Spec versions (cfg.dims[0]). 1: the model before issue #18 (no segment bias, no attention
# output projection): the shipped blobs, kept valid and byte-identical. 2: the reference EmbBERT:
# the segment bias "emb.seg.b" and, in each layer that has "l{i}.ao.w", the attention output
# projection (docs/int8-spec.md). Why a version and not only the tensors: an engine that knows
# only 1 must refuse a 2 (it would silently skip the new steps), not misread it.
SPEC_LEGACY = 1
SPEC_VERSION = 2
SPEC_VERSIONS = (SPEC_LEGACY, SPEC_VERSION)


class HasTensors(Protocol):
    """A QuantModel or a hil.quant.blob.Blob: anything with a name -> ndarray mapping."""

    tensors: Mapping[str, np.ndarray]


def dims_of(q: HasTensors) -> dict[str, int]:
    """The model dimensions from the "cfg.dims" tensor (see DIMS_FIELDS)."""
    raw = np.asarray(q.tensors["cfg.dims"]).astype(np.int64).ravel()
    if raw.size != len(DIMS_FIELDS):
        raise ValueError(f"cfg.dims has {raw.size} entries, expected {len(DIMS_FIELDS)}")
    d = {k: int(v) for k, v in zip(DIMS_FIELDS, raw, strict=True)}
    if d["version"] not in SPEC_VERSIONS:
        raise ValueError(f"spec version {d['version']}; this reference computes "
                         f"{SPEC_VERSIONS} (EBQ_ERR_BLOB_VERSION)")
    if f"l{d['n_layers']}.norm.m" in q.tensors:
        raise ValueError(f"cfg.dims says {d['n_layers']} layers but the blob holds more "
                         "(EBQ_ERR_BLOB_TENSOR)")
    return d


# ---- the integer primitives (each mirrored by one C function in firmware/src/ops/) ----------

def rq(acc: np.ndarray, m: np.ndarray | int, sh: np.ndarray | int) -> np.ndarray:
    """Requantize: (acc * M + 2^(30+sh)) >> (31+sh) in int64 (round half up).

    M is a signed int32 multiplier, sh in [-30, 31]; |acc| < 2^32 keeps acc*M inside int64.
    """
    acc = np.asarray(acc, dtype=np.int64)
    m = np.asarray(m, dtype=np.int64)
    sh = np.asarray(sh, dtype=np.int64)
    return (acc * m + np.left_shift(np.int64(1), 30 + sh)) >> (31 + sh)


def sat8(v: np.ndarray) -> np.ndarray:
    """Saturate to int8 (kept as int64 so later products cannot overflow)."""
    return np.clip(v, -128, 127)


def isqrt_floor(v: np.ndarray) -> np.ndarray:
    """floor(sqrt(v)) elementwise for 0 <= v < 2^63, exactly (math.isqrt)."""
    flat = np.asarray(v, dtype=np.int64).ravel()
    out = np.fromiter((math.isqrt(int(a)) for a in flat), dtype=np.int64, count=flat.size)
    return out.reshape(np.shape(v))


def rmsnorm(x: np.ndarray, m: np.ndarray, sh: np.ndarray) -> np.ndarray:
    """x (n,D) int8 -> y (n,D) int8; R = isqrt(2^48 // sum x^2), y = sat8(rq(x*R, M_i, sh_i))."""
    ms = (x * x).sum(axis=1)  # (n,) <= 128 * 2^14 = 2^21
    r = np.zeros_like(ms)
    nz = ms > 0
    r[nz] = isqrt_floor((np.int64(1) << RMS_NUM_BITS) // ms[nz])  # <= 2^24
    return sat8(rq(x * r[:, None], m[None, :], sh[None, :]))  # |x*R| <= 2^24


def fully_connected(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """x (n,I) int8, w (O,I) int8, b (O,) int32 -> int32 accumulators (n,O)."""
    acc = x @ w.astype(np.int64).T
    return acc if b is None else acc + b.astype(np.int64)[None, :]


def exp_q14(z: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """e = exp(z / 256) in Q14 for z in [-4096, 0]: (HI[-z >> 8] * LO[-z & 255] + 2^13) >> 14."""
    k = -z
    return (hi.astype(np.int64)[k >> 8] * lo.astype(np.int64)[k & 255] + (1 << 13)) >> 14


def attention(q: np.ndarray, y: np.ndarray, real: np.ndarray, m_sm: int, sh_sm: int,
              hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Queries q (r,D), keys = values = y (n,D), real keys mask (n,) -> attn (r,D) in Q16 of y.

    No real key (all [PAD]) gives attn = 0.
    """
    out = np.zeros((q.shape[0], y.shape[1]), dtype=np.int64)
    if not real.any():
        return out
    yk = y[real]  # (k,D)
    s = q @ yk.T  # (r,k) int32 range: |s| <= 128 * 2^14 = 2^21
    d = s - s.max(axis=1, keepdims=True)  # <= 0
    z = np.clip(rq(d, m_sm, sh_sm), EXP_ZMIN, 0)  # Q8
    e = exp_q14(z, hi, lo)  # (r,k) in [0, 2^14]
    big_e = e.sum(axis=1)  # >= 2^14 (the max key), <= 2^22
    acc = e @ yk  # (r,D), |acc| <= 2^22 * 128 = 2^29
    inv = (np.int64(1) << ATTN_INV_BITS) // big_e  # <= 2^32
    return (acc * inv[:, None] + (1 << (ATTN_OUT_SHIFT - 1))) >> ATTN_OUT_SHIFT


def conv_causal(y: np.ndarray, w: np.ndarray, b: np.ndarray, rows: int) -> np.ndarray:
    """Depthwise causal conv: acc[t,c] = b_c + sum_k w[c,k] * y[t-K+1+k, c] (zero before 0)."""
    kernel = w.shape[1]
    n, dim = y.shape
    ypad = np.concatenate([np.zeros((kernel - 1, dim), dtype=np.int64), y], axis=0)
    acc = np.zeros((rows, dim), dtype=np.int64) + b.astype(np.int64)[None, :]
    wk = w.astype(np.int64)
    for k in range(kernel):
        acc += wk[None, :, k] * ypad[k:k + rows]
    return acc


# ---- the model -------------------------------------------------------------------------------

def _t(q: HasTensors, name: str) -> np.ndarray:
    """A tensor widened to int64 (every product below then stays exact)."""
    return np.asarray(q.tensors[name]).astype(np.int64)


def check_ids(ids: Sequence[int] | np.ndarray, vocab_size: int, max_len: int) -> np.ndarray:
    """Validate token ids exactly as the engine does (EMPTY, TOO_LONG, BAD_IDS)."""
    a = np.asarray(ids, dtype=np.int64).ravel()
    if a.size == 0:
        raise ValueError("no tokens (EBQ_ERR_EMPTY)")
    if a.size > max_len:
        raise ValueError(f"{a.size} tokens > max_len {max_len} (EBQ_ERR_TOO_LONG)")
    if a.min() < 0 or a.max() >= vocab_size:
        raise ValueError(f"token id out of [0, {vocab_size}) (EBQ_ERR_BAD_IDS)")
    return a


def embed(q: HasTensors, ids: np.ndarray) -> np.ndarray:
    """x0 = sat8(rq(tok_proj @ tok[id]) + rq(pos_proj @ pos[t] + seg)), (n,D) int8.

    seg (spec 2) is the segment-0 embedding as an int32 bias at the position accumulator's
    scale: every input is one sentence, so the segment embedding is one constant vector."""
    n = ids.size
    seg = _t(q, "emb.seg.b") if dims_of(q)["version"] >= 2 else None
    tok = fully_connected(_t(q, "emb.tok")[ids], _t(q, "emb.tok_proj.w"), None)
    pos = fully_connected(_t(q, "emb.pos")[:n], _t(q, "emb.pos_proj.w"), seg)
    return sat8(rq(tok, _t(q, "emb.tok_proj.m"), _t(q, "emb.tok_proj.sh"))
                + rq(pos, _t(q, "emb.pos_proj.m"), _t(q, "emb.pos_proj.sh")))


def layer(q: HasTensors, i: int, x: np.ndarray, real: np.ndarray, rows: int) -> np.ndarray:
    """One encoder layer: x (n,D) int8 -> the first `rows` rows of its output, int8."""
    p = f"l{i}."
    y = rmsnorm(x, _t(q, p + "norm.m"), _t(q, p + "norm.sh"))
    # (a) attention: q_t = sat8(rq(W_q y_t + b_q)); softmax by tables; attn in Q16 of y.
    qa = sat8(rq(fully_connected(y[:rows], _t(q, p + "q.w"), _t(q, p + "q.b")),
                 _t(q, p + "q.m"), _t(q, p + "q.sh")))
    attn = attention(qa, y, real, int(_t(q, p + "sm.m")[0]), int(_t(q, p + "sm.sh")[0]),
                     _t(q, "exp.hi"), _t(q, "exp.lo"))
    if has_att_output(q, i):
        # spec 2: context -> int8 (one scale), then att_output: int32 accumulators.
        ctx = sat8(rq(attn, int(_t(q, p + "ctx.m")[0]), int(_t(q, p + "ctx.sh")[0])))
        attn = fully_connected(ctx, _t(q, p + "ao.w"), _t(q, p + "ao.b"))
    # (b) causal depthwise conv -> int8 -> SiLU table -> projection (int32).
    c = sat8(rq(conv_causal(y, _t(q, p + "conv.w"), _t(q, p + "conv.b"), rows),
                _t(q, p + "conv.m"), _t(q, p + "conv.sh")))
    s = _t(q, p + "silu")[c + 128]
    h = fully_connected(s, _t(q, p + "proj.w"), _t(q, p + "proj.b"))
    # out = a * attn - b * conv, both factors folded into the two requantizations (Ma, sha:
    # one value, or per channel after att_output).
    return sat8(rq(attn, _t(q, p + "out.ma"), _t(q, p + "out.sha"))
                - rq(h, _t(q, p + "out.mb"), _t(q, p + "out.shb")))


def has_att_output(q: HasTensors, i: int) -> bool:
    """Layer i projects its attention context (spec 2 and its "l{i}.ao.w" is in the model)."""
    return dims_of(q)["version"] >= 2 and f"l{i}.ao.w" in q.tensors


def forward(q: HasTensors, ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """Token ids ([CLS] first) -> int32 logits (num_labels,): the device's exact output."""
    d = dims_of(q)
    a = check_ids(ids, d["vocab_size"], d["max_len"])
    real = a != 0  # [PAD] keys are masked, as in the fp32 model
    x = embed(q, a)
    for i in range(d["n_layers"]):
        last = i == d["n_layers"] - 1
        x = layer(q, i, x, real, 1 if last else a.size)  # the last layer needs row 0 only
    logits = fully_connected(x[:1], _t(q, "cls.w"), _t(q, "cls.b"))[0]
    return logits.astype(np.int32)


def forward_batch(q: HasTensors, batch: Iterable[Sequence[int] | np.ndarray]) -> np.ndarray:
    """Logits for many sequences of different lengths, (B, num_labels) int32."""
    rows = [forward(q, ids) for ids in batch]
    n_labels = dims_of(q)["num_labels"]
    return np.stack(rows) if rows else np.zeros((0, n_labels), dtype=np.int32)


def predict(q: HasTensors, batch: Iterable[Sequence[int] | np.ndarray]) -> np.ndarray:
    """Predicted class per sequence (argmax of the int32 logits; lowest index wins ties)."""
    return forward_batch(q, batch).argmax(axis=1)


def describe(q: HasTensors) -> dict[str, Any]:
    """Dims plus tensor count and bytes, for CLI output and benchmarks."""
    d = dims_of(q)
    d["tensors"] = len(q.tensors)
    d["bytes"] = int(sum(np.asarray(t).nbytes for t in q.tensors.values()))
    return d
