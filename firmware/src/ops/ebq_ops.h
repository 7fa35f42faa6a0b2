/*
 * ebq_ops.h - the integer kernels of the forward pass, one per file in this folder.
 *
 * Every kernel has the same signature shape, as CMSIS-NN's: scratch (ebq_context) first, then
 * the layer (dims, weights and quant params: a *_params struct when they do not fit in a few
 * arguments), then the rows, inputs and outputs; none allocates, none uses float. Each one is the C twin of one function of
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
 * SiLU, projection, combination): EBQ_BLOCK_ROWS(n) = min(n rounded up to 4, 28) when
 * n <= 128 (the DSP kernels' per-block transposes are paid once per block; 28 keeps the arena
 * at n = 128 within 48 KiB) and 16 above (within 80 KiB at n = 256); and rows the DSP
 * kernels widen to int16 at once (each weight word then feeds 4 rows). */
#define EBQ_BLOCK 32u /* the largest block (stack arrays) */
#define EBQ_BLOCK_ROWS(n) ((n) <= 128u ? ((((n) + 3u) & ~3u) < 28u ? (((n) + 3u) & ~3u) : 28u) : 16u)
#define EBQ_MICRO 4u

/* Scratch memory a kernel may use (CMSIS-NN's cmsis_nn_context): `buf` 8-aligned, `size` bytes,
 * at least the kernel's *_get_buffer_size. The portable kernels leave most of it unused; the
 * DSP kernels widen int8 activations into it. */
typedef struct {
    void *buf;
    size_t size;
} ebq_context;

/* x0[t] = sat8(rq(tok_proj tok[id_t]) + rq(pos_proj pos[t])) for rows t0..t0+rows-1
 * (rows <= EBQ_MICRO); out (rows,D). */
void ebq_embedding_s8(const ebq_context *ctx, const ebq_model *m, const uint16_t *ids,
                      uint32_t t0, uint32_t rows, int8_t *out);

/* EBQ_MICRO rows of E, widened to int16, for each of the token and the position rows, then
 * EBQ_MICRO output rows of D (a tail of fewer rows is computed as a full block). */
static inline size_t ebq_embedding_s8_get_buffer_size(uint32_t emb_dim, uint32_t dim)
{
    return 2u * EBQ_MICRO * emb_dim * sizeof(int16_t) + EBQ_MICRO * dim;
}

/* Row t of ebq_embedding_s8 for token `id`, in plain C (rows_s8.c). */
void ebq_embedding_row_s8(const ebq_model *m, uint32_t id, uint32_t t, int8_t *out);

/* floor(sqrt(v)) for any 64-bit v (isqrt64.c). */
uint32_t ebq_isqrt64(uint64_t v);

/* y = RMSNorm(x) for `rows` rows of D: R = isqrt(2^48 / sum x^2), y_i = sat8(rq(x_i R, M_i, sh_i)). */
void ebq_rmsnorm_s8(uint32_t rows, uint32_t dim, const int8_t *x, const int32_t *m,
                    const int8_t *sh, int8_t *y);

/* A fully-connected layer: W (out_dim, in_dim), row o = output channel o. */
typedef struct {
    uint32_t in_dim, out_dim;
    const int8_t *w;         /* (out_dim, in_dim)                                   */
    const int32_t *b;        /* (out_dim,); may be NULL for ebq_fully_connected_s32 */
    const ebq_rq_params *rq; /* (out_dim,); unused by ebq_fully_connected_s32       */
} ebq_fc_params;

/* acc[r][o] = b[o] + sum_i x[r][i] w[o][i] for `rows` rows: int32 out (rows,O). */
void ebq_fully_connected_s32(const ebq_context *ctx, const ebq_fc_params *p, uint32_t rows,
                             const int8_t *x, int32_t *acc);

/* out[r][o] = sat8(rq(b[o] + sum_i x[r][i] w[o][i], M_o, sh_o)): int8 out (rows,O). A larger
 * buffer lets the DSP kernel widen many rows at once (2 * rows * in_dim + 4 * in_dim bytes: all). */
void ebq_fully_connected_s8(const ebq_context *ctx, const ebq_fc_params *p, uint32_t rows,
                            const int8_t *x, int8_t *out);

/* Both fully-connected kernels: EBQ_MICRO rows of in_dim, widened to int16. */
static inline size_t ebq_fully_connected_s8_get_buffer_size(uint32_t in_dim)
{
    return EBQ_MICRO * in_dim * sizeof(int16_t);
}

/* The causal depthwise conv of one layer, then (when `silu` is not NULL) the SiLU table. */
typedef struct {
    uint32_t dim, kernel;
    const int8_t *w;         /* (D,K) */
    const int32_t *b;        /* (D,)  */
    const ebq_rq_params *rq; /* (D,)  */
    const int8_t *silu;      /* (256,) SiLU table, index v + 128, or NULL */
} ebq_conv_params;

/* Rows t0..t0+rows-1 of the conv over y (n,D):
 * out[r][c] = sat8(rq(b_c + sum_k w[c][k] y[t0+r-K+1+k][c])), rows before 0 read as zero;
 * then, when p->silu is not NULL, out = silu[out + 128] (the SiLU table, fused). */
void ebq_depthwise_conv_causal_s8(const ebq_conv_params *p, uint32_t t0, uint32_t rows,
                                  const int8_t *y, int8_t *out);

/* Row t of ebq_depthwise_conv_causal_s8, in plain C (rows_s8.c). */
void ebq_depthwise_conv_causal_row_s8(const ebq_conv_params *p, uint32_t t, const int8_t *y,
                                      int8_t *out);

/* e = exp(z / 256) in Q14 for z in [-4096, 0], by the two tables: e^(-k - r/256) = HI[k] LO[r].
 * Inline (one per key in the softmax); exp_q14.c exports it for the kernel tests. */
static inline int32_t ebq_exp_q14_inline(int32_t z, const int16_t *hi, const int16_t *lo)
{
    const int32_t k = -z; /* [0, 4096] */
    return ((int32_t)hi[k >> 8] * lo[k & 255] + (1 << 13)) >> 14; /* [0, 2^14] */
}
int32_t ebq_exp_q14(int32_t z, const int16_t *hi, const int16_t *lo);

/* Attention over one layer's keys = values y (n,D); keys with ids[j] == 0 are masked. */
typedef struct {
    uint32_t n, dim;
    const int8_t *y;         /* (n,D)                                 */
    const uint16_t *ids;     /* (n,)                                  */
    const ebq_rq_params *sm; /* (1,) scores -> softmax argument in Q8 */
    const int16_t *exp_hi;   /* (17,)  the exp tables                 */
    const int16_t *exp_lo;   /* (256,)                                */
} ebq_attention_params;

/* Attention of `nq` <= EBQ_BLOCK_ROWS(n) query rows q (nq,D): attn (nq,D) in Q16 of y's units.
 * No real key -> attn = 0. */
void ebq_attention_rows_s8(const ebq_context *ctx, const ebq_attention_params *p, uint32_t nq,
                           const int8_t *q, int32_t *attn);

/* EBQ_MICRO widened query rows, then EBQ_ATT_SCRATCH_BYTES(n): the scores of 4 queries
 * (int32), the exp values of EBQ_BLOCK_ROWS(n) queries and 4 widened columns of y (int16, keys
 * rounded up to 8). */
#define EBQ_KEYS_PAD(n) (((n) + 7u) & ~7u)
#define EBQ_ATT_SCRATCH_BYTES_Q(n, nq) (16u * (n) + 2u * ((nq) + 4u) * EBQ_KEYS_PAD(n))
#define EBQ_ATT_SCRATCH_BYTES(n) EBQ_ATT_SCRATCH_BYTES_Q(n, EBQ_BLOCK_ROWS(n))
static inline size_t ebq_attention_rows_s8_get_buffer_size(uint32_t n, uint32_t dim)
{
    return ebq_fully_connected_s8_get_buffer_size(dim) + EBQ_ATT_SCRATCH_BYTES((size_t)n);
}
/* The same for at most nq <= EBQ_BLOCK_ROWS(n) queries per call. */
static inline size_t ebq_attention_rows_s8_get_buffer_size_q(uint32_t n, uint32_t dim, uint32_t nq)
{
    return ebq_fully_connected_s8_get_buffer_size(dim) + EBQ_ATT_SCRATCH_BYTES_Q((size_t)n, nq);
}

/* out[i] = table[in[i] + 128] (SiLU of an int8 vector). */
void ebq_silu_s8(uint32_t dim, const int8_t *in, const int8_t *table, int8_t *out);

/* x'_o = sat8(rq(attn_o, Ma, sha) - rq(h_o, Mb_o, shb_o)): the differential combination, for
 * `rows` consecutive rows of attn, h and out (row stride dim). */
void ebq_combine_s8(uint32_t rows, uint32_t dim, const int32_t *attn, const int32_t *h,
                    const ebq_rq_params *a, const ebq_rq_params *b, int8_t *out);

/* The conv branch's projection and the differential combination of one layer. */
typedef struct {
    ebq_fc_params proj;         /* (D,D) projection h = W c + b, no rq */
    const ebq_rq_params *out_a; /* (1,) attention branch -> layer output */
    const ebq_rq_params *out_b; /* (D,) conv branch -> layer output      */
} ebq_project_combine_params;

/* out[r] = combine(attn[r], W c[r] + b) for `rows` rows: ebq_fully_connected_s32 then
 * ebq_combine_s8 per EBQ_MICRO rows, h in the buffer. A larger buffer lets the DSP kernel
 * widen many rows at once and skip h. */
void ebq_project_combine_s8(const ebq_context *ctx, const ebq_project_combine_params *p,
                            uint32_t rows, const int8_t *c, const int32_t *attn, int8_t *out);

/* ebq_project_combine_s8 without the DSP fast path (rows_s8.c): the portable kernel, and the
 * DSP kernel's other rows. */
void ebq_project_combine_rows_s8(const ebq_context *ctx, const ebq_project_combine_params *p,
                                 uint32_t rows, const int8_t *c, const int32_t *attn, int8_t *out);

/* h (EBQ_MICRO rows of D, int32), then the buffer of ebq_fully_connected_s32. */
static inline size_t ebq_project_combine_s8_get_buffer_size(uint32_t dim)
{
    return EBQ_MICRO * dim * sizeof(int32_t) + ebq_fully_connected_s8_get_buffer_size(dim);
}

static inline size_t ebq_a8(size_t v)
{
    return (v + 7u) & ~(size_t)7u;
}

/* ---- spec 2 (docs/int8-spec.md): segment bias, attention output projection (att_output_s8.c,
 * no DSP twin: they call the kernels above, which have one) ------------------------------- */

/* ebq_embedding_s8 with m->seg_b added to the position accumulators:
 * x0[t] = sat8(rq(tok_proj tok[id_t]) + rq(pos_proj pos[t] + seg)), rows <= EBQ_MICRO.
 * Both projections by ebq_fully_connected_s32 (seg is the position projection's bias). */
void ebq_embedding_seg_s8(const ebq_context *ctx, const ebq_model *m, const uint16_t *ids,
                          uint32_t t0, uint32_t rows, int8_t *out);

/* The gathered token rows (EBQ_MICRO x E), both accumulators (2 x EBQ_MICRO x D int32), then
 * the buffer of ebq_fully_connected_s32. */
static inline size_t ebq_embedding_seg_s8_get_buffer_size(uint32_t emb_dim, uint32_t dim)
{
    return ((EBQ_MICRO * emb_dim + 7u) & ~(size_t)7u) + 2u * EBQ_MICRO * dim * sizeof(int32_t) +
           ebq_fully_connected_s8_get_buffer_size(emb_dim);
}

/* out[i] = sat8(rq(attn[i], M, sh)), one M and sh: the attention context (Q16 of y) to int8. */
void ebq_context_s8(uint32_t count, const int32_t *attn, const ebq_rq_params *rq, int8_t *out);

/* x'_o = sat8(rq(ao_o, Ma_o, sha_o) - rq(h_o, Mb_o, shb_o)): the combination after att_output
 * (both multipliers per channel), `rows` rows of stride dim. */
void ebq_combine_pc_s8(uint32_t rows, uint32_t dim, const int32_t *ao, const int32_t *h,
                       const ebq_rq_params *a, const ebq_rq_params *b, int8_t *out);

/* ebq_project_combine_rows_s8 with ebq_combine_pc_s8 (out_a per channel), rows_s8.c. */
void ebq_project_combine_pc_s8(const ebq_context *ctx, const ebq_project_combine_params *p,
                               uint32_t rows, const int8_t *c, const int32_t *ao, int8_t *out);

/* The attention output projection of a spec-2 layer; fc.w == NULL: none (spec 1). */
typedef struct {
    ebq_fc_params fc;         /* (D,D) + (D,), no rq: int32 accumulators */
    const ebq_rq_params *ctx; /* (1,) context -> int8 */
} ebq_att_output_params;

/* Everything of one layer after the query projection: attention (+ its output projection),
 * causal conv + SiLU, the conv branch's projection and the differential combination. */
typedef struct {
    ebq_attention_params att;
    ebq_conv_params conv;
    ebq_project_combine_params pc; /* pc.out_a per channel when ao.fc.w != NULL */
    ebq_att_output_params ao;
} ebq_layer_rows_params;

/* Rows 0..rows-1 of x (n,D): on entry their queries q, on return the layer's output x'. Rows go
 * in blocks of EBQ_BLOCK_ROWS(n) (portable: EBQ_MICRO); a block's conv output goes into its own
 * query rows once the attention has used them, then its output overwrites them too. The
 * buffer: ebq_layer_rows_s8_get_buffer_size(n, D, any layer has att_output) bytes, which each
 * kernel set defines (the
 * DSP twin fuses attention, projection and combination and needs no (B,D) int32 attention). */
void ebq_layer_rows_s8(const ebq_context *ctx, const ebq_layer_rows_params *p, uint32_t rows,
                       int8_t *x);
size_t ebq_layer_rows_s8_get_buffer_size(uint32_t n, uint32_t dim, int att_output);

/* The unfused form (rows_s8.c): per EBQ_MICRO rows ebq_attention_rows_s8 into an int32 (U,D)
 * attention (spec 2: -> int8 context in the query rows -> att_output accumulators in its place),
 * ebq_depthwise_conv_causal_s8 into the query rows, ebq_project_combine_s8 (spec 2:
 * ebq_project_combine_pc_s8) in place. Buffer: the attention (U,D) int32, then the larger of
 * the kernels' buffers. */
void ebq_layer_rows_generic_s8(const ebq_context *ctx, const ebq_layer_rows_params *p,
                               uint32_t t0, uint32_t rows, int8_t *x);
static inline size_t ebq_layer_rows_generic_s8_get_buffer_size(uint32_t n, uint32_t dim)
{
    const size_t att = ebq_attention_rows_s8_get_buffer_size_q(n, dim, EBQ_MICRO);
    const size_t pc = ebq_project_combine_s8_get_buffer_size(dim);
    return ebq_a8((size_t)EBQ_MICRO * dim * 4u) + ebq_a8(att > pc ? att : pc);
}

#endif /* EBQ_OPS_H */
