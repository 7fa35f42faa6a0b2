/*
 * dsp/fully_connected_s8.c - Cortex-M4 twin of ../fully_connected_s8.c (same bits).
 *
 * Inputs are widened to int16 once per block of 4 rows (a tail block is padded with zero rows);
 * then ebq_mm4_s8 runs every output over the 4 rows: each weight word (4 int8, unpacked by two
 * SXTB16) feeds 8 SMLADs and one LDM fetches two rows' int16 pairs, 52 instructions per 64
 * MACs. The accumulators come back output-major (one STM each) in chunks of EBQ_MM_CHUNK
 * outputs on the stack; bias, requantization and the row-major store follow in C. Shapes the
 * kernel does not take (in_dim % 16 != 0) use the 1-row SMLAD loop. Cores without the DSP
 * extension compile the portable file.
 */
#if defined(__ARM_FEATURE_DSP)
#include "../ebq_ops.h"
#include "ebq_dsp.h"

#define EBQ_MM_CHUNK 16u /* outputs per ebq_mm4_s8 call: 256 bytes of stack */

/* Bias, then int32 out or sat8(rq) out, for outputs o0.. of a chunk; any nb <= 4 rows. */
static void finish(uint32_t nb, uint32_t no, uint32_t out_dim, uint32_t o0, const int32_t *raw,
                   const int32_t *b, const ebq_rq_params *rq, int32_t *acc, int8_t *out)
{
    if (rq == NULL) {
        for (uint32_t i = 0; i < no; i++) {
            const int32_t bias = b ? b[o0 + i] : 0;
            for (uint32_t r = 0; r < nb; r++)
                acc[(size_t)r * out_dim + o0 + i] = raw[4 * i + r] + bias;
        }
        return;
    }
    const int32_t *m = rq->m + o0, *bo = b + o0;
    const int8_t *sh = rq->sh + o0;
    out += o0;
    for (uint32_t i = 0; i < no; i++, raw += 4) {
        const int32_t bias = bo[i], mo = m[i], s = sh[i];
        if (s < 2) {
            for (uint32_t r = 0; r < nb; r++)
                out[(size_t)r * out_dim + i] = ebq_rq_sat8(raw[r] + bias, mo, s);
            continue;
        }
        const int32_t rnd = (int32_t)1 << (s - 2), s1 = s - 1;
        for (uint32_t r = 0; r < nb; r++)
            out[(size_t)r * out_dim + i] = ebq_rq_sat8_fast(raw[r] + bias, mo, rnd, s1);
    }
}

/* The same for a full block of 4 rows, unrolled: SMMLA/ASR/SSAT per value when sh >= 2.
 * Inlined with out_dim constant when it is 128 so the row offsets are immediates. */
static inline __attribute__((always_inline)) void finish4_dim(
    uint32_t no, uint32_t out_dim, const int32_t *raw, const int32_t *b, const int32_t *m,
    const int8_t *sh, int32_t *acc, int8_t *out)
{
    const int32_t *end = raw + 4 * no;
    if (out == NULL) {
        for (uint32_t o = 0; raw != end; raw += 4, acc++, o++) {
            const int32_t bias = b ? b[o] : 0;
            acc[0] = raw[0] + bias;
            acc[out_dim] = raw[1] + bias;
            acc[2 * out_dim] = raw[2] + bias;
            acc[3 * out_dim] = raw[3] + bias;
        }
        return;
    }
    for (; raw != end; raw += 4, out++, b++, m++, sh++) {
        const int32_t bias = *b, mo = *m, s = *sh;
        if (s < 2) {
            for (uint32_t r = 0; r < 4; r++)
                out[r * out_dim] = ebq_rq_sat8(raw[r] + bias, mo, s);
            continue;
        }
        const int32_t rnd = (int32_t)1 << (s - 2), s1 = s - 1;
        out[0] = ebq_rq_sat8_fast(raw[0] + bias, mo, rnd, s1);
        out[out_dim] = ebq_rq_sat8_fast(raw[1] + bias, mo, rnd, s1);
        out[2 * out_dim] = ebq_rq_sat8_fast(raw[2] + bias, mo, rnd, s1);
        out[3 * out_dim] = ebq_rq_sat8_fast(raw[3] + bias, mo, rnd, s1);
    }
}

static void finish4(uint32_t no, uint32_t out_dim, uint32_t o0, const int32_t *raw,
                    const int32_t *b, const ebq_rq_params *rq, int32_t *acc, int8_t *out)
{
    const int32_t *bo = b ? b + o0 : NULL, *m = rq ? rq->m + o0 : NULL;
    const int8_t *sh = rq ? rq->sh + o0 : NULL;
    int32_t *ao = acc ? acc + o0 : NULL;
    int8_t *oo = out ? out + o0 : NULL;
    if (out_dim == 128)
        finish4_dim(no, 128, raw, bo, m, sh, ao, oo);
    else
        finish4_dim(no, out_dim, raw, bo, m, sh, ao, oo);
}

/* One row (widened by ebq_widen_rows(1, ...): words (x0,x2) (x1,x3) per 4 inputs) times `no`
 * weight rows: raw[4i] = w_i . x. Four outputs share each LDRD of the row: per 4 inputs 1 LDRD,
 * 4 LDR, 8 SXTB16, 8 SMLAD = 21 instructions for 16 MACs (the 4-row kernel would spend 52 on
 * 64 MACs of which 16 are real). in_dim % 4 == 0. */
static void row1(uint32_t in_dim, uint32_t no, const int8_t *w, const int16_t *wide, int32_t *raw)
{
    const int32_t *xw = (const int32_t *)(const void *)wide;
    uint32_t o = 0;
    if (in_dim % 8 == 0)
        for (; o + 4 <= no; o += 4, raw += 16) {
            int32_t a[4];
            ebq_mv4_s8(w + (size_t)o * in_dim, xw, in_dim, a);
            raw[0] = a[0], raw[4] = a[1], raw[8] = a[2], raw[12] = a[3];
        }
    for (; o + 4 <= no; o += 4, raw += 16) {
        const int8_t *w0 = w + (size_t)o * in_dim, *w1 = w0 + in_dim, *w2 = w1 + in_dim,
                     *w3 = w2 + in_dim;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (uint32_t i = 0; i < in_dim; i += 4) {
            const int32_t xl = xw[i / 2], xh = xw[i / 2 + 1];
            const uint32_t u0 = ebq_ld32(w0 + i), u1 = ebq_ld32(w1 + i), u2 = ebq_ld32(w2 + i),
                           u3 = ebq_ld32(w3 + i);
            a0 = __smlad(ebq_lo02(u0), xl, a0), a0 = __smlad(ebq_hi13(u0), xh, a0);
            a1 = __smlad(ebq_lo02(u1), xl, a1), a1 = __smlad(ebq_hi13(u1), xh, a1);
            a2 = __smlad(ebq_lo02(u2), xl, a2), a2 = __smlad(ebq_hi13(u2), xh, a2);
            a3 = __smlad(ebq_lo02(u3), xl, a3), a3 = __smlad(ebq_hi13(u3), xh, a3);
        }
        raw[0] = a0, raw[4] = a1, raw[8] = a2, raw[12] = a3;
    }
    for (; o < no; o++, raw += 4) {
        const int8_t *wo = w + (size_t)o * in_dim;
        int32_t a = 0;
        for (uint32_t i = 0; i < in_dim; i += 4) {
            const uint32_t u = ebq_ld32(wo + i);
            a = __smlad(ebq_lo02(u), xw[i / 2], a), a = __smlad(ebq_hi13(u), xw[i / 2 + 1], a);
        }
        raw[0] = a;
    }
}

/* One block of nb <= 4 rows of x (row stride in_dim): int32 results, or int8 when rq. */
static void block(uint32_t nb, uint32_t in_dim, uint32_t out_dim, const int8_t *x,
                  const int8_t *w, const int32_t *b, const ebq_rq_params *rq, int16_t *wide,
                  int32_t *acc, int8_t *out)
{
    if (in_dim % 16 != 0) { /* other shapes: one row at a time */
        ebq_widen_rows(nb, in_dim, x, wide);
        for (uint32_t o = 0; o < out_dim; o++)
            for (uint32_t r = 0; r < nb; r++) {
                const int32_t a = ebq_dot1_s8(in_dim, w + (size_t)o * in_dim, wide, nb, r,
                                              b ? b[o] : 0);
                if (rq)
                    out[(size_t)r * out_dim + o] = ebq_rq_sat8(a, rq->m[o], rq->sh[o]);
                else
                    acc[(size_t)r * out_dim + o] = a;
            }
        return;
    }
    int32_t raw[4 * EBQ_MM_CHUNK];
    if (nb == 1) { /* one row: no zero rows to multiply */
        ebq_widen_rows(1, in_dim, x, wide);
        for (uint32_t o0 = 0; o0 < out_dim; o0 += EBQ_MM_CHUNK) {
            const uint32_t no = out_dim - o0 < EBQ_MM_CHUNK ? out_dim - o0 : EBQ_MM_CHUNK;
            row1(in_dim, no, w + (size_t)o0 * in_dim, wide, raw);
            finish(1, no, out_dim, o0, raw, b, rq, acc, out);
        }
        return;
    }
    ebq_widen4(nb, in_dim, x, wide);
    for (uint32_t o0 = 0; o0 < out_dim; o0 += EBQ_MM_CHUNK) {
        const uint32_t no = out_dim - o0 < EBQ_MM_CHUNK ? out_dim - o0 : EBQ_MM_CHUNK;
        ebq_mm4(w + (size_t)o0 * in_dim, wide, in_dim, no, raw);
        if (nb == EBQ_MICRO)
            finish4(no, out_dim, o0, raw, b, rq, acc, out);
        else
            finish(nb, no, out_dim, o0, raw, b, rq, acc, out);
    }
}

void ebq_fully_connected_s32(const ebq_context *ctx, const ebq_fc_params *p, uint32_t rows,
                             const int8_t *x, int32_t *acc)
{
    const uint32_t in_dim = p->in_dim, out_dim = p->out_dim;
    const int8_t *w = p->w;
    const int32_t *b = p->b;
    int16_t *wide = ctx->buf;
    for (uint32_t r = 0; r < rows; r += EBQ_MICRO) {
        const uint32_t nb = rows - r < EBQ_MICRO ? rows - r : EBQ_MICRO;
        block(nb, in_dim, out_dim, x + (size_t)r * in_dim, w, b, NULL, wide,
              acc + (size_t)r * out_dim, NULL);
    }
}

/* in_dim = 128, out_dim even, every sh >= 2 (fc_rows128): the outputs by triples (ebq_mm23:
 * 0.67 instructions, 1.08 est. cycles per MAC), the last 2 or 4 by pairs (ebq_mm22: 0.63 and
 * 1.13), or all by pairs below EBQ_FC_TRIPLE_ROWS rows. */
typedef struct {
    int8_t *out;
    uint32_t out_dim, rows;
} fc_ctx;

static inline __attribute__((always_inline)) void fc_tile(const int32_t a[4],
                                                           const ebq_pair_rq *p, uint32_t r,
                                                           uint32_t o, const void *ctx)
{
    const fc_ctx *c = ctx;
    int8_t *oo = c->out + (size_t)r * c->out_dim + o;
    oo[0] = ebq_rq_sat8_fast(a[0] + p->b[0], p->m[0], p->rnd[0], p->s1[0]);
    oo[1] = ebq_rq_sat8_fast(a[1] + p->b[1], p->m[1], p->rnd[1], p->s1[1]);
    if (r + 1 == c->rows) /* an odd last row's zero partner */
        return;
    oo[c->out_dim] = ebq_rq_sat8_fast(a[2] + p->b[0], p->m[0], p->rnd[0], p->s1[0]);
    oo[c->out_dim + 1] = ebq_rq_sat8_fast(a[3] + p->b[1], p->m[1], p->rnd[1], p->s1[1]);
}

#define EBQ_FC_PAIRS 8u /* row pairs per ebq_mm23_s16_128 call: 192 bytes of sums on the stack */

/* The triples take fewer cycles (26 est. per 24 MACs against 18 per 16) but more instructions
 * (16 per 24 MACs against 10 per 16): from this many rows on only, so that short inputs keep
 * the lower instruction count (at 16 rows the triples would cost 1.1% more instructions for
 * 2.3% fewer est. cycles). */
#ifndef EBQ_FC_TRIPLE_ROWS
#define EBQ_FC_TRIPLE_ROWS 32u
#endif

/* The rows in chunks of `chunk` (even) rows widened by pairs after an output triple's 768
 * bytes of `wide`; per chunk every output triple is widened once and runs over the chunk's row
 * pairs, then the last out_dim % 3 (+ 3) outputs by pairs. An odd last row is paired with a zero
 * row and not stored. */
static void fc_rows128(uint32_t rows, uint32_t chunk, uint32_t out_dim, const int8_t *x,
                       const int8_t *w, const int32_t *b, const ebq_rq_params *rq, int32_t *wide,
                       int8_t *out)
{
    const uint32_t d = 128;
    int32_t *ww = wide, *xw = wide + 192; /* an output triple or pair, then the row pairs */
    const uint32_t o3 = rows < EBQ_FC_TRIPLE_ROWS ? 0
                        : out_dim % 3 == 1 ? out_dim - 4 : out_dim - out_dim % 3;
    const fc_ctx tile = {out, out_dim, rows};
    for (uint32_t r0 = 0; r0 < rows; r0 += chunk) {
        const uint32_t nr = rows - r0 < chunk ? rows - r0 : chunk, np = (nr + 1) / 2;
        for (uint32_t r = 0; r < nr; r += 2)
            ebq_widen2(d, x + (size_t)(r0 + r) * d,
                       r0 + r + 1 < rows ? x + (size_t)(r0 + r + 1) * d : ebq_zero_row128,
                       xw + r / 2 * d);
        for (uint32_t o = 0; o < o3; o += 3) {
            ebq_widen3_128(w + (size_t)o * d, ww);
            int32_t bo[3], mo[3], rnd[3], s1[3];
            for (uint32_t i = 0; i < 3; i++) {
                bo[i] = b[o + i], mo[i] = rq->m[o + i], s1[i] = rq->sh[o + i] - 1;
                rnd[i] = (int32_t)1 << (s1[i] - 1);
            }
            for (uint32_t p0 = 0; p0 < np; p0 += EBQ_FC_PAIRS) {
                const uint32_t k = np - p0 < EBQ_FC_PAIRS ? np - p0 : EBQ_FC_PAIRS;
                int32_t a[6 * EBQ_FC_PAIRS];
                ebq_mm23_s16_128(xw + (size_t)p0 * d, ww, k, a);
                const int32_t *ap = a;
                for (uint32_t i = 0, r = r0 + 2 * p0; i < k; i++, r += 2, ap += 6) {
                    int8_t *oo = out + (size_t)r * out_dim + o;
                    oo[0] = ebq_rq_sat8_fast(ap[0] + bo[0], mo[0], rnd[0], s1[0]);
                    oo[1] = ebq_rq_sat8_fast(ap[1] + bo[1], mo[1], rnd[1], s1[1]);
                    oo[2] = ebq_rq_sat8_fast(ap[2] + bo[2], mo[2], rnd[2], s1[2]);
                    if (r + 1 == rows)
                        break;
                    oo[out_dim] = ebq_rq_sat8_fast(ap[3] + bo[0], mo[0], rnd[0], s1[0]);
                    oo[out_dim + 1] = ebq_rq_sat8_fast(ap[4] + bo[1], mo[1], rnd[1], s1[1]);
                    oo[out_dim + 2] = ebq_rq_sat8_fast(ap[5] + bo[2], mo[2], rnd[2], s1[2]);
                }
            }
        }
        for (uint32_t o = o3; o < out_dim; o += 2) {
            ebq_widen2(d, w + (size_t)o * d, w + (size_t)(o + 1) * d, ww);
            ebq_pair_rq pq;
            ebq_pair_rq_load(&pq, o, b, rq->m, rq->sh);
            const int32_t *xp = xw;
            for (uint32_t r = r0; r < r0 + nr; r += 2, xp += d) {
                int32_t a4[4];
                ebq_mm22_s16_128(xp, ww, a4);
                fc_tile(a4, &pq, r, o, &tile);
            }
        }
    }
}

void ebq_fully_connected_s8(const ebq_context *ctx, const ebq_fc_params *p, uint32_t rows,
                            const int8_t *x, int8_t *out)
{
    const uint32_t in_dim = p->in_dim, out_dim = p->out_dim;
    const int8_t *w = p->w;
    const int32_t *b = p->b;
    const ebq_rq_params *rq = p->rq;
    int16_t *wide = ctx->buf;
    const size_t wide_bytes = ctx->size;
    /* Room for an output triple and at least 7 row pairs widened: fc_rows128. */
    const size_t pair = 4 * (size_t)in_dim; /* bytes of a widened row pair */
    int fast = in_dim == 128 && out_dim % 2 == 0 && out_dim >= 4 && rows >= 2 &&
               wide_bytes >= 9 * pair;
    for (uint32_t o = 0; fast && o < out_dim; o++)
        fast = rq->sh[o] >= 2;
    if (fast) {
        const uint32_t chunk = (uint32_t)((wide_bytes - 6 * (size_t)in_dim) / pair) * 2;
        /* A last chunk of <= 4 rows would widen every weight again for them: the 4-row
         * micro-kernel below takes them for less. */
        const uint32_t rem = rows > chunk ? rows % chunk : 0;
        const uint32_t mm = rem != 0 && rem <= EBQ_MICRO ? rows - rem : rows;
        fc_rows128(mm, chunk, out_dim, x, w, b, rq, (int32_t *)(void *)wide, out);
        x += (size_t)mm * in_dim, out += (size_t)mm * out_dim, rows -= mm;
    }
    for (uint32_t r = 0; r < rows; r += EBQ_MICRO) {
        const uint32_t nb = rows - r < EBQ_MICRO ? rows - r : EBQ_MICRO;
        block(nb, in_dim, out_dim, x + (size_t)r * in_dim, w, b, rq, wide, NULL,
              out + (size_t)r * out_dim);
    }
}
#else
#include "../fully_connected_s8.c"
#endif
