/*
 * ebq_ops.h - the integer kernels of the forward pass, one per file in this folder.
 *
 * Every kernel has the same signature shape: dims first, then inputs, then weights and quant
 * params, then outputs; none allocates, none uses float. Each one is the C twin of one function of
 * hil/quant/reference.py and must give the same bits.
 *
 * Value ranges (docs/int8-spec.md), fixed once here:
 *   activations int8 [-128, 127]; weights int8 [-127, 127]; accumulators int32;
 *   rq(acc, M, sh) = (acc * M + 2^(30+sh)) >> (31+sh) in int64, M int32, sh in [-30, 31].
 *   In the engine every acc is an int32 (biases are clipped to +-2^30 by the quantizer, so no
 *   accumulator overflows); the result is int64 and saturated by the caller.
 *   `>>` on a negative int64 must be arithmetic (checked below; true for gcc and clang).
 */
#ifndef EBQ_OPS_H
#define EBQ_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "ebq_model.h"

#if (-1 >> 1) != -1
#error "the engine needs an arithmetic right shift of negative integers"
#endif

/* Requantize one accumulator (round half up): the one rescaling step used everywhere.
 * For sh >= 2 the rounding constant 2^(30+sh) is a multiple of 2^32, and floor shifts compose,
 * so the result is exactly (high word of acc*M + 2^(sh-2)) >> (sh-1): one SMULL, one add, one
 * shift on a 32-bit core instead of a 64-bit add and a 64-bit variable shift. */
static inline int64_t ebq_rq(int32_t acc, int32_t m, int32_t sh)
{
    const int64_t p = (int64_t)acc * m;
    if (sh >= 2)
        return (int32_t)(((int32_t)(p >> 32) + ((int32_t)1 << (sh - 2))) >> (sh - 1));
    return (p + ((int64_t)1 << (30 + sh))) >> (31 + sh);
}

/* Saturate to int8. */
static inline int8_t ebq_sat8(int64_t v)
{
    return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
}

/* rq for sh >= 2 only, in 32 bits: |result| < 2^30, so sums/differences of two stay in int32. */
static inline int32_t ebq_rq32(int32_t acc, int32_t m, int32_t sh)
{
    return ((int32_t)(((int64_t)acc * m) >> 32) + ((int32_t)1 << (sh - 2))) >> (sh - 1);
}

static inline int8_t ebq_sat8_32(int32_t v)
{
    return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
}

/* sat8(rq(acc, M, sh)), all in 32 bits when sh >= 2 (the usual case). */
static inline int8_t ebq_rq_sat8(int32_t acc, int32_t m, int32_t sh)
{
    if (sh >= 2)
        return ebq_sat8_32(ebq_rq32(acc, m, sh));
    return ebq_sat8(ebq_rq(acc, m, sh));
}

/* sat8(rq(a, Ma, sha) + sign * rq(b, Mb, shb)) with the 32-bit path when both shifts allow. */
static inline int8_t ebq_rq2_sat8(int32_t a, int32_t ma, int32_t sha, int32_t b, int32_t mb,
                                  int32_t shb, int sign)
{
    if (sha >= 2 && shb >= 2) {
        const int32_t rb = ebq_rq32(b, mb, shb);
        return ebq_sat8_32(ebq_rq32(a, ma, sha) + (sign > 0 ? rb : -rb));
    }
    const int64_t rb = ebq_rq(b, mb, shb);
    return ebq_sat8(ebq_rq(a, ma, sha) + (sign > 0 ? rb : -rb));
}

/* Rows the forward pass processes together after the query projection (attention, conv,
 * SiLU): EBQ_BLOCK_ROWS(n), 32 when n <= 128 (the DSP kernels' per-block transposes are paid
 * half as often) and 16 above (the arena at n = 256 stays the largest); and rows the DSP
 * kernels widen to int16 at once (each weight word then feeds 4 rows). */
#define EBQ_BLOCK 32u /* the largest block */
#define EBQ_BLOCK_ROWS(n) ((n) <= 128u ? 32u : 16u)
#define EBQ_MICRO 4u

/* x0[t] = sat8(rq(tok_proj tok[id_t]) + rq(pos_proj pos[t])) for rows t0..t0+rows-1
 * (rows <= EBQ_MICRO); out (rows,D). `wide`: EBQ_MICRO * 2 * E int16 of scratch. */
void ebq_embedding_s8(const ebq_model *m, const uint16_t *ids, uint32_t t0, uint32_t rows,
                      int16_t *wide, int8_t *out);

/* floor(sqrt(v)) for any 64-bit v (isqrt64.c). */
uint32_t ebq_isqrt64(uint64_t v);

/* y = RMSNorm(x) for `rows` rows of D: R = isqrt(2^48 / sum x^2), y_i = sat8(rq(x_i R, M_i, sh_i)). */
void ebq_rmsnorm_s8(uint32_t rows, uint32_t dim, const int8_t *x, const int32_t *m,
                    const int8_t *sh, int8_t *y);

/* int16 scratch the fully-connected kernels need: EBQ_MICRO rows of in_dim, pre-widened. */
#define EBQ_FC_WIDE_ELEMS(in_dim) (EBQ_MICRO * (in_dim))

/* acc[r][o] = b[o] + sum_i x[r][i] w[o][i] for `rows` rows; b may be NULL. int32 out (rows,O).
 * `wide` is EBQ_FC_WIDE_ELEMS(in_dim) int16 of scratch (unused by the portable kernel). */
void ebq_fully_connected_s32(uint32_t rows, uint32_t in_dim, uint32_t out_dim, const int8_t *x,
                             const int8_t *w, const int32_t *b, int16_t *wide, int32_t *acc);

/* out[r][o] = sat8(rq(b[o] + sum_i x[r][i] w[o][i], M_o, sh_o)): int8 out (rows,O).
 * `wide` is wide_bytes >= 2 * EBQ_FC_WIDE_ELEMS(in_dim) bytes of scratch; the DSP kernel
 * widens many rows at once when it is larger (2 * rows * in_dim + 4 * in_dim bytes: all). */
void ebq_fully_connected_s8(uint32_t rows, uint32_t in_dim, uint32_t out_dim, const int8_t *x,
                            const int8_t *w, const int32_t *b, const ebq_rq_params *rq,
                            int16_t *wide, size_t wide_bytes, int8_t *out);

/* Causal depthwise conv at rows t0..t0+rows-1 of y (n,D):
 * out[r][c] = sat8(rq(b_c + sum_k w[c][k] y[t0+r-K+1+k][c])), rows before 0 read as zero;
 * then, when `silu` is not NULL, out = silu[out + 128] (the SiLU table, fused). */
void ebq_depthwise_conv_causal_s8(uint32_t t0, uint32_t rows, uint32_t dim, uint32_t kernel,
                                  const int8_t *y, const int8_t *w, const int32_t *b,
                                  const ebq_rq_params *rq, const int8_t *silu, int8_t *out);

/* e = exp(z / 256) in Q14 for z in [-4096, 0], by the two tables: e^(-k - r/256) = HI[k] LO[r].
 * Inline (one per key in the softmax); exp_q14.c exports it for the kernel tests. */
static inline int32_t ebq_exp_q14_inline(int32_t z, const int16_t *hi, const int16_t *lo)
{
    const int32_t k = -z; /* [0, 4096] */
    return ((int32_t)hi[k >> 8] * lo[k & 255] + (1 << 13)) >> 14; /* [0, 2^14] */
}
int32_t ebq_exp_q14(int32_t z, const int16_t *hi, const int16_t *lo);

/* Scratch bytes of ebq_attention_rows_s8 for n keys: the scores of 4 queries (int32), the exp
 * values of EBQ_BLOCK_ROWS(n) queries and 4 widened columns of y (int16, keys rounded up to
 * 16). */
#define EBQ_KEYS_PAD(n) (((n) + 15u) & ~15u)
#define EBQ_ATT_SCRATCH_BYTES(n) (16u * (n) + 2u * (EBQ_BLOCK_ROWS(n) + 4u) * EBQ_KEYS_PAD(n))

/* Attention of `nq` <= EBQ_BLOCK_ROWS(n) query rows q (nq,D) over keys = values = y (n,D), keys with
 * ids[j] == 0 masked: attn (nq,D) in Q16 of y's units. No real key -> attn = 0.
 * Scratch: `scratch` EBQ_ATT_SCRATCH_BYTES(n) (8-aligned), `wide` EBQ_MICRO * D int16. */
void ebq_attention_rows_s8(uint32_t nq, uint32_t n, uint32_t dim, const int8_t *q,
                           const int8_t *y, const uint16_t *ids, const ebq_rq_params *sm,
                           const int16_t *exp_hi, const int16_t *exp_lo, int32_t *scratch,
                           int16_t *wide, int32_t *attn);

/* out[i] = table[in[i] + 128] (SiLU of an int8 vector). */
void ebq_silu_s8(uint32_t dim, const int8_t *in, const int8_t *table, int8_t *out);

/* x'_o = sat8(rq(attn_o, Ma, sha) - rq(h_o, Mb_o, shb_o)): the differential combination, for
 * `rows` consecutive rows of attn, h and out (row stride dim). */
void ebq_combine_s8(uint32_t rows, uint32_t dim, const int32_t *attn, const int32_t *h,
                    const ebq_rq_params *a, const ebq_rq_params *b, int8_t *out);

/* The conv branch's projection and the combination of `rows` rows in one call:
 * out[r] = combine(attn[r], W c[r] + b) as ebq_fully_connected_s32 then ebq_combine_s8 per
 * EBQ_MICRO rows with the scratch `wide` (EBQ_FC_WIDE_ELEMS(dim) int16) and `h` (EBQ_MICRO * dim
 * int32). `work` (work_bytes, 8-aligned, may be 0) lets the DSP kernel widen many rows at once
 * and skip h. */
void ebq_project_combine_s8(uint32_t rows, uint32_t dim, const int8_t *c, const int8_t *w,
                            const int32_t *b, const int32_t *attn, const ebq_rq_params *a,
                            const ebq_rq_params *bq, int16_t *wide, int32_t *h, void *work,
                            size_t work_bytes, int8_t *out);

#endif /* EBQ_OPS_H */
