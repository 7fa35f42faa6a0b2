"""Each C kernel (firmware/src/ops/*.c, portable) against its numpy twin in hil/quant/reference.py.

The kernels are built into a shared library and called through ctypes on random shapes and the
edges that matter: length 1, odd lengths and block tails, all-[PAD] keys, saturation, zero rows,
every shift of the requantization. Exhaustive variants run under -m slow.
"""

from __future__ import annotations

import ctypes as C
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hil.quant import reference as R
from hil.quant.quantize import exp_tables, quantize_multiplier

ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "firmware"
CC = shutil.which("gcc") or shutil.which("cc")
pytestmark = pytest.mark.skipif(CC is None, reason="no host C compiler")

RQ_WRAPPER = """
#include "ops/ebq_ops.h"
int64_t ebq_test_rq(int32_t acc, int32_t m, int32_t sh) { return ebq_rq(acc, m, sh); }
"""

I8, I16, I32, U16 = (np.ctypeslib.ndpointer(t, flags="C_CONTIGUOUS")
                     for t in (np.int8, np.int16, np.int32, np.uint16))


class RqParams(C.Structure):
    _fields_ = [("m", C.c_void_p), ("sh", C.c_void_p)]


def rqp(m: np.ndarray, sh: np.ndarray) -> tuple[RqParams, tuple]:
    m = np.ascontiguousarray(m, np.int32)
    sh = np.ascontiguousarray(sh, np.int8)
    return RqParams(m.ctypes.data, sh.ctypes.data), (m, sh)  # keep arrays alive


class Context(C.Structure):  # ebq_context
    _fields_ = [("buf", C.c_void_p), ("size", C.c_size_t)]


class FcParams(C.Structure):  # ebq_fc_params
    _fields_ = [("in_dim", C.c_uint32), ("out_dim", C.c_uint32), ("w", C.c_void_p),
                ("b", C.c_void_p), ("rq", C.POINTER(RqParams))]


class ConvParams(C.Structure):  # ebq_conv_params
    _fields_ = [("dim", C.c_uint32), ("kernel", C.c_uint32), ("w", C.c_void_p),
                ("b", C.c_void_p), ("rq", C.POINTER(RqParams)), ("silu", C.c_void_p)]


class AttentionParams(C.Structure):  # ebq_attention_params
    _fields_ = [("n", C.c_uint32), ("dim", C.c_uint32), ("y", C.c_void_p), ("ids", C.c_void_p),
                ("sm", C.POINTER(RqParams)), ("exp_hi", C.c_void_p), ("exp_lo", C.c_void_p)]


def context(nbytes: int) -> tuple[Context, np.ndarray]:
    """A kernel's scratch buffer (8-aligned); keep the array alive while the context is used."""
    buf = np.zeros((nbytes + 7) // 8, np.int64)
    return Context(buf.ctypes.data, buf.nbytes), buf


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> C.CDLL:
    d = tmp_path_factory.mktemp("ops")
    (d / "rq_wrap.c").write_text(RQ_WRAPPER)
    so = d / "libebq_ops.so"
    srcs = sorted(str(p) for p in (FW / "src" / "ops").glob("*.c"))
    subprocess.run([CC, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
                    f"-I{FW / 'include'}", f"-I{FW / 'src'}", *srcs, str(d / "rq_wrap.c"),
                    "-o", str(so)], check=True, capture_output=True, text=True)
    lib = C.CDLL(str(so))
    u32, p, ctx = C.c_uint32, C.POINTER(RqParams), C.POINTER(Context)
    lib.ebq_test_rq.restype = C.c_int64
    lib.ebq_test_rq.argtypes = [C.c_int32, C.c_int32, C.c_int32]
    lib.ebq_isqrt64.restype = u32
    lib.ebq_isqrt64.argtypes = [C.c_uint64]
    lib.ebq_exp_q14.restype = C.c_int32
    lib.ebq_exp_q14.argtypes = [C.c_int32, I16, I16]
    lib.ebq_rmsnorm_s8.argtypes = [u32, u32, I8, I32, I8, I8]
    fc = C.POINTER(FcParams)
    lib.ebq_fully_connected_s32.argtypes = [ctx, fc, u32, I8, I32]
    lib.ebq_fully_connected_s8.argtypes = [ctx, fc, u32, I8, I8]
    lib.ebq_depthwise_conv_causal_s8.argtypes = [C.POINTER(ConvParams), u32, u32, I8, I8]
    lib.ebq_attention_rows_s8.argtypes = [ctx, C.POINTER(AttentionParams), u32, I8, I32]
    lib.ebq_silu_s8.argtypes = [u32, I8, I8, I8]
    lib.ebq_combine_s8.argtypes = [u32, u32, I32, I32, p, p, I8]
    lib.ebq_context_s8.argtypes = [u32, I32, p, I8]
    lib.ebq_combine_pc_s8.argtypes = [u32, u32, I32, I32, p, p, I8]
    return lib


def rand_mult(rng: np.random.Generator, n: int, lo: float, hi: float) -> tuple:
    real = rng.uniform(lo, hi, n) * rng.choice([-1, 1], n)
    return quantize_multiplier(real)


def test_rq_every_shift(lib) -> None:
    """The C fast path (sh >= 2: high word) equals the int64 definition for every shift."""
    rng = np.random.default_rng(0)
    for sh in range(-30, 32):
        accs = np.concatenate([rng.integers(-(2**31), 2**31, 40), [0, 1, -1, 2**31 - 1, -(2**31)]])
        ms = np.concatenate([rng.integers(-(2**31) + 1, 2**31, 8), [2**30, -(2**30), 1]])
        for m in ms:
            for acc in accs:
                a, mm = int(acc), int(m)
                if sh < 0 and abs(a * mm) >> (31 + sh) > 2**62:
                    continue  # beyond the engine's documented range
                assert lib.ebq_test_rq(a, mm, sh) == int(R.rq(a, mm, sh)), (a, mm, sh)


def test_isqrt(lib) -> None:
    rng = np.random.default_rng(1)
    vals = [0, 1, 2, 3, 4, 2**48, 2**48 - 1, 2**62, 2**64 - 1] + \
        [int(v) for v in rng.integers(0, 2**63 - 1, 2000, dtype=np.int64)]
    import math
    assert all(lib.ebq_isqrt64(v) == math.isqrt(v) for v in vals)


def test_exp_exhaustive(lib) -> None:
    hi, lo = exp_tables()
    z = np.arange(-4096, 1)
    want = R.exp_q14(z, hi.astype(np.int64), lo.astype(np.int64))
    assert [lib.ebq_exp_q14(int(v), hi, lo) for v in z] == want.tolist()


@pytest.mark.parametrize("rows,dim", [(1, 4), (3, 128), (7, 20), (16, 64)])
def test_rmsnorm(lib, rows: int, dim: int) -> None:
    rng = np.random.default_rng(rows * dim)
    x = rng.integers(-128, 128, (rows, dim)).astype(np.int8)
    x[0, :] = 0  # zero row -> zero output
    if rows > 2:
        x[1, :] = -128  # extreme row
    m, sh = rand_mult(rng, dim, 2.0**-20, 2.0**-14)  # large enough to saturate some outputs
    y = np.zeros_like(x)
    lib.ebq_rmsnorm_s8(rows, dim, x, m, sh, y)
    want = R.rmsnorm(x.astype(np.int64), m.astype(np.int64), sh.astype(np.int64))
    assert (y == want).all()
    assert (y[0] == 0).all()


@pytest.mark.parametrize("rows,in_dim,out_dim", [(1, 16, 128), (4, 128, 128), (5, 128, 18),
                                                 (9, 32, 7), (2, 4, 1)])
def test_fully_connected(lib, rows: int, in_dim: int, out_dim: int) -> None:
    rng = np.random.default_rng(rows + in_dim + out_dim)
    x = rng.integers(-128, 128, (rows, in_dim)).astype(np.int8)
    w = rng.integers(-127, 128, (out_dim, in_dim)).astype(np.int8)
    b = rng.integers(-(2**20), 2**20, out_dim).astype(np.int32)
    ctx, buf = context(2 * 4 * in_dim)  # ebq_fully_connected_s8_get_buffer_size
    acc = np.zeros((rows, out_dim), np.int32)
    fc = FcParams(in_dim, out_dim, w.ctypes.data, b.ctypes.data, None)
    lib.ebq_fully_connected_s32(C.byref(ctx), C.byref(fc), rows, x, acc)
    want = R.fully_connected(x.astype(np.int64), w, b)
    assert (acc == want).all()
    fc.b = None
    lib.ebq_fully_connected_s32(C.byref(ctx), C.byref(fc), rows, x, acc)
    assert (acc == R.fully_connected(x.astype(np.int64), w, None)).all()
    m, sh = rand_mult(rng, out_dim, 1e-5, 1e-3)
    params, keep = rqp(m, sh)
    out = np.zeros((rows, out_dim), np.int8)
    fc = FcParams(in_dim, out_dim, w.ctypes.data, b.ctypes.data, C.pointer(params))
    lib.ebq_fully_connected_s8(C.byref(ctx), C.byref(fc), rows, x, out)
    assert (out == R.sat8(R.rq(want, m.astype(np.int64), sh.astype(np.int64)))).all()
    del keep, buf


@pytest.mark.parametrize("n,t0,rows,kernel", [(1, 0, 1, 32), (8, 0, 4, 32), (40, 36, 4, 32),
                                              (40, 2, 3, 5), (64, 60, 4, 32)])
def test_depthwise_conv(lib, n: int, t0: int, rows: int, kernel: int) -> None:
    rng = np.random.default_rng(n + t0)
    dim = 128
    y = rng.integers(-128, 128, (n, dim)).astype(np.int8)
    w = rng.integers(-127, 128, (dim, kernel)).astype(np.int8)
    b = rng.integers(-5000, 5000, dim).astype(np.int32)
    m, sh = rand_mult(rng, dim, 1e-4, 1e-2)
    params, keep = rqp(m, sh)
    full = R.conv_causal(y.astype(np.int64), w, b, n)[t0:t0 + rows]
    want = R.sat8(R.rq(full, m.astype(np.int64), sh.astype(np.int64))).astype(np.int64)
    table = rng.integers(-128, 128, 256).astype(np.int8)  # the fused SiLU table
    for silu, expect in ((None, want), (table, table[want + 128])):
        out = np.zeros((rows, dim), np.int8)
        conv = ConvParams(dim, kernel, w.ctypes.data, b.ctypes.data, C.pointer(params),
                          None if silu is None else silu.ctypes.data)
        lib.ebq_depthwise_conv_causal_s8(C.byref(conv), t0, rows, y, out)
        assert (out == expect).all()
    del keep


@pytest.mark.parametrize("n,nq,pad", [(1, 1, False), (5, 4, False), (7, 3, True), (33, 4, True),
                                      (256, 4, False), (6, 2, "all")])
def test_attention_rows(lib, n: int, nq: int, pad) -> None:
    rng = np.random.default_rng(n * 10 + nq)
    dim = 128
    hi, lo = exp_tables()
    y = rng.integers(-128, 128, (n, dim)).astype(np.int8)
    q = rng.integers(-128, 128, (nq, dim)).astype(np.int8)
    ids = rng.integers(5, 8192, n).astype(np.uint16)
    if pad is True:
        ids[rng.random(n) < 0.3] = 0
    elif pad == "all":
        ids[:] = 0
    m, sh = quantize_multiplier(0.01 * 0.02 / np.sqrt(dim) * 256)
    params, keep = rqp(m, sh)
    nk = (n + 15) // 16 * 16  # EBQ_KEYS_PAD
    blk = min((n + 3) // 4 * 4, 28) if n <= 128 else 16  # EBQ_BLOCK_ROWS
    ctx, buf = context(2 * 4 * dim + 16 * n + 2 * (blk + 4) * nk)  # ..._get_buffer_size
    att = AttentionParams(n, dim, y.ctypes.data, ids.ctypes.data, C.pointer(params),
                          hi.ctypes.data, lo.ctypes.data)
    attn = np.zeros((nq, dim), np.int32)
    lib.ebq_attention_rows_s8(C.byref(ctx), C.byref(att), nq, q, attn)
    want = R.attention(q.astype(np.int64), y.astype(np.int64), ids != 0, int(m[0]), int(sh[0]),
                       hi, lo)
    assert (attn == want).all()
    del keep, buf


def test_silu_and_combine(lib) -> None:
    rng = np.random.default_rng(3)
    table = rng.integers(-128, 128, 256).astype(np.int8)
    x = np.arange(-128, 128).astype(np.int8)
    out = np.zeros(256, np.int8)
    lib.ebq_silu_s8(256, x, table, out)
    assert (out == table).all()
    dim, rows = 128, 3
    attn = rng.integers(-(2**23), 2**23, (rows, dim)).astype(np.int32)
    h = rng.integers(-(2**24), 2**24, (rows, dim)).astype(np.int32)
    ma, sha = quantize_multiplier(3e-5)
    mb, shb = rand_mult(rng, dim, 1e-6, 1e-4)
    pa, ka = rqp(ma, sha)
    pb, kb = rqp(mb, shb)
    res = np.zeros((rows, dim), np.int8)
    lib.ebq_combine_s8(rows, dim, attn, h, C.byref(pa), C.byref(pb), res)
    want = R.sat8(R.rq(attn, int(ma[0]), int(sha[0])) - R.rq(h, mb.astype(np.int64),
                                                             shb.astype(np.int64)))
    assert (res == want).all()
    del ka, kb


def test_context_and_per_channel_combine(lib) -> None:
    """Spec 2: the attention context (Q16 of y) to int8 by one multiplier, and the combination
    with the att_output accumulators' per-channel multiplier (shifts below 2 included)."""
    rng = np.random.default_rng(4)
    dim, rows = 128, 3
    attn = rng.integers(-(2**23), 2**23, (rows, dim)).astype(np.int32)
    mc, shc = quantize_multiplier(2.0**-16 * 3.1)
    pc, kc = rqp(mc, shc)
    ctx = np.zeros((rows, dim), np.int8)
    lib.ebq_context_s8(rows * dim, attn, C.byref(pc), ctx)
    assert (ctx == R.sat8(R.rq(attn, int(mc[0]), int(shc[0])))).all()
    ao = rng.integers(-(2**24), 2**24, (rows, dim)).astype(np.int32)
    h = rng.integers(-(2**24), 2**24, (rows, dim)).astype(np.int32)
    ma, sha = rand_mult(rng, dim, 1e-6, 1e-4)
    ma[:4], sha[:4] = quantize_multiplier(np.array([0.3, -0.6, 0.9, 1.7]))  # sh < 2
    mb, shb = rand_mult(rng, dim, 1e-6, 1e-4)
    pa, ka = rqp(ma, sha)
    pb, kb = rqp(mb, shb)
    res = np.zeros((rows, dim), np.int8)
    lib.ebq_combine_pc_s8(rows, dim, ao, h, C.byref(pa), C.byref(pb), res)
    want = R.sat8(R.rq(ao, ma.astype(np.int64), sha.astype(np.int64))
                  - R.rq(h, mb.astype(np.int64), shb.astype(np.int64)))
    assert (res == want).all()
    del kc, ka, kb
