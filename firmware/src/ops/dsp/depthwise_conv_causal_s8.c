/*
 * dsp/depthwise_conv_causal_s8.c - Cortex-M4 twin of ../depthwise_conv_causal_s8.c (same bits).
 *
 * Per 4 channels, the window of rows t0-K+1 .. t0+rows-1 is transposed once into one int16
 * time series per channel (rows before 0 are zero, as the padding), 2 rows x 4 channels per
 * step (2 LDR, 4 SXTB16, 4 PKH). The taps become int16 pairs (w_2m, w_2m+1), and output row t
 * takes one SMLAD per pair with the series word (v_t-K+1+2m, v_t-K+2+2m), a plain (for odd
 * offsets unaligned) LDR. Four consecutive output rows share each tap pair, and rows r and r+2
 * share series words one step apart, so each step is 1 tap load + 2 series loads + 4 SMLAD for
 * 8 MACs.
 */
#if defined(__ARM_FEATURE_DSP)
#include "../ebq_ops.h"
#include "ebq_dsp.h"

#define EBQ_CONV_MAX_K 64u
#define EBQ_CONV_SERIES (EBQ_BLOCK + EBQ_CONV_MAX_K + 4u) /* int16 per channel, even */

/* Rows a and b (4 channels each) -> word i/2 of the 4 channels' series: (v_a, v_b) pairs. */
static inline void put_pair(uint32_t a, uint32_t b, uint32_t i, int16_t s[4][EBQ_CONV_SERIES])
{
    const int32_t la = ebq_lo02(a), lb = ebq_lo02(b), ha = ebq_hi13(a), hb = ebq_hi13(b);
    const int32_t p0 = ebq_pair_lo(la, lb), p1 = ebq_pair_lo(ha, hb);
    const int32_t p2 = ebq_pair_hi(la, lb), p3 = ebq_pair_hi(ha, hb);
    __builtin_memcpy(&s[0][i], &p0, 4);
    __builtin_memcpy(&s[1][i], &p1, 4);
    __builtin_memcpy(&s[2][i], &p2, 4);
    __builtin_memcpy(&s[3][i], &p3, 4);
}

/* Series of channels c..c+3: s[k][i] = y[r0 + i][c + k] for from <= i < len (len even), zero
 * for rows < 0 or >= last. The pairs wholly inside [0, last) take the loop without bounds checks. */
static void series4(int32_t r0, uint32_t from, uint32_t len, uint32_t last, uint32_t dim,
                    const int8_t *yc, int16_t s[4][EBQ_CONV_SERIES])
{
    uint32_t i = from; /* even; the entries before it are never read (conv_channel's p0) */
    for (; i < len && r0 + (int32_t)i < 0; i += 2) { /* pairs that start before row 0 */
        const int32_t rb = r0 + (int32_t)i + 1;
        put_pair(0, (rb >= 0 && rb < (int32_t)last) ? ebq_ld32(yc + (size_t)rb * dim) : 0, i, s);
    }
    const int8_t *p = yc + (size_t)(r0 + (int32_t)i) * dim;
    for (; i < len && r0 + (int32_t)i + 1 < (int32_t)last; i += 2, p += 2 * dim)
        put_pair(ebq_ld32(p), ebq_ld32(p + dim), i, s);
    for (; i < len; i += 2) { /* pairs that end at or after `last` */
        const int32_t ra = r0 + (int32_t)i;
        put_pair(ra < (int32_t)last ? ebq_ld32(yc + (size_t)ra * dim) : 0, 0, i, s);
    }
}

/* 4 output rows: acc_k = bias + sum_p wp[p] . (v[k + 2p], v[k + 2p + 1]), inlined with the
 * number of pairs known (K = 32 in the shipped models) so the loop unrolls with no counter. */
static inline __attribute__((always_inline)) void conv4(uint32_t pairs, const int16_t *vr,
                                                        const int32_t *wp, int32_t bias,
                                                        int32_t acc[4])
{
    int32_t a0 = bias, a1 = bias, a2 = bias, a3 = bias;
    int32_t x0 = (int32_t)ebq_ld32(vr), x1 = (int32_t)ebq_ld32(vr + 1);
#pragma GCC unroll 32
    for (uint32_t p = 0; p < pairs; p++) {
        const int32_t x2 = (int32_t)ebq_ld32(vr + 2 * p + 2);
        const int32_t x3 = (int32_t)ebq_ld32(vr + 2 * p + 3);
        a0 = __smlad(wp[p], x0, a0);
        a1 = __smlad(wp[p], x1, a1);
        a2 = __smlad(wp[p], x2, a2);
        a3 = __smlad(wp[p], x3, a3);
        x0 = x2, x1 = x3;
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
}

/* Output rows 0..rows-1 of one channel from its series v and K taps wc (K % 4 == 0), then
 * the table `act` (indexed from its middle: the identity or the SiLU table). The first `zeros`
 * series entries are the padding before row 0: tap pairs that read only those are skipped
 * (rows near the start of the sequence, all of a short sequence). */
static void conv_channel(uint32_t rows, uint32_t kernel, uint32_t zeros, const int16_t *v,
                         const int8_t *wc, int32_t bias, int32_t m, int32_t sh, uint32_t dim,
                         const int8_t *act, int8_t *out)
{
    int32_t wp[EBQ_CONV_MAX_K / 2]; /* (w_2m, w_2m+1) */
    /* The last row group skips the fewest pairs: the pairs before its p0 are never used. */
    const uint32_t r_last = (rows - 1) & ~3u;
    const uint32_t p_min = zeros > r_last + 4 ? (zeros - r_last - 3) / 2 : 0;
    for (uint32_t g = (2 * p_min) & ~3u; g < kernel; g += 4) {
        const uint32_t u = ebq_ld32(wc + g);
        const int32_t l = ebq_lo02(u), h = ebq_hi13(u); /* (w0, w2), (w1, w3) */
        wp[g / 2] = ebq_pair_lo(l, h);
        wp[g / 2 + 1] = ebq_pair_hi(l, h);
    }
    const int32_t rnd = sh >= 2 ? (int32_t)1 << (sh - 2) : 0, s1 = sh - 1;
    for (uint32_t r = 0; r < rows; r += 4, out += 4 * dim) {
        int32_t acc[4];
        /* Pair p reads v[r + 2p .. r + 2p + 4]: all padding while r + 2p + 4 < zeros. */
        const uint32_t p0 = zeros > r + 4 ? (zeros - r - 3) / 2 : 0;
        if (p0 == 0 && kernel == 32)
            conv4(16, v + r, wp, bias, acc);
        else
            conv4(kernel / 2 - p0, v + r + 2 * p0, wp + p0, bias, acc);
        if (sh >= 2 && r + 4 <= rows) {
            out[0] = act[ebq_rq_sat8_fast(acc[0], m, rnd, s1)];
            out[dim] = act[ebq_rq_sat8_fast(acc[1], m, rnd, s1)];
            out[2 * dim] = act[ebq_rq_sat8_fast(acc[2], m, rnd, s1)];
            out[3 * dim] = act[ebq_rq_sat8_fast(acc[3], m, rnd, s1)];
        } else if (sh >= 2) { /* the last 1..3 rows */
            for (uint32_t k = 0; k < 4 && r + k < rows; k++)
                out[(size_t)k * dim] = act[ebq_rq_sat8_fast(acc[k], m, rnd, s1)];
        } else {
            for (uint32_t k = 0; k < 4 && r + k < rows; k++)
                out[(size_t)k * dim] = act[ebq_rq_sat8(acc[k], m, sh)];
        }
    }
}

void ebq_depthwise_conv_causal_s8(const ebq_conv_params *p, uint32_t t0, uint32_t rows,
                                  const int8_t *y, int8_t *out)
{
    const uint32_t dim = p->dim, kernel = p->kernel;
    const int8_t *w = p->w, *silu = p->silu;
    const int32_t *b = p->b;
    const ebq_rq_params *rq = p->rq;
#ifndef EBQ_CONV_SHORT
#define EBQ_CONV_SHORT 6u
#endif
    /* Rows whose windows are mostly padding (a short input): plain C over their few real taps
     * costs less than the transposes and the per-channel set-up. */
    if (kernel % 4 != 0 || kernel > EBQ_CONV_MAX_K || dim % 4 != 0 || rows > EBQ_BLOCK ||
        t0 + rows <= EBQ_CONV_SHORT) {
        for (uint32_t r = 0; r < rows; r++)
            ebq_depthwise_conv_causal_row_s8(p, t0 + r, y, out + (size_t)r * dim);
        return;
    }
    static const int8_t identity[256] = {
#define EBQ_ID8(v) (int8_t)(v), (int8_t)(v + 1), (int8_t)(v + 2), (int8_t)(v + 3), \
                   (int8_t)(v + 4), (int8_t)(v + 5), (int8_t)(v + 6), (int8_t)(v + 7)
#define EBQ_ID32(v) EBQ_ID8(v), EBQ_ID8(v + 8), EBQ_ID8(v + 16), EBQ_ID8(v + 24)
        EBQ_ID32(-128), EBQ_ID32(-96), EBQ_ID32(-64), EBQ_ID32(-32),
        EBQ_ID32(0), EBQ_ID32(32), EBQ_ID32(64), EBQ_ID32(96)};
#undef EBQ_ID32
#undef EBQ_ID8
    const int8_t *act = (silu ? silu : identity) + 128; /* the SiLU fused into the stores */
    int16_t s[4][EBQ_CONV_SERIES] __attribute__((aligned(4)));
    const uint32_t len = ((rows + 3) & ~3u) + kernel + 4; /* every index conv_channel reads */
    const uint32_t zeros = t0 + 1 < kernel ? kernel - 1 - t0 : 0; /* series entries < row 0 */
    const uint32_t from = zeros > 4 ? (zeros - 4) & ~1u : 0;     /* the first entry read */
    for (uint32_t c = 0; c < dim; c += 4) {
        series4((int32_t)t0 - (int32_t)kernel + 1, from, len, t0 + rows, dim, y + c, s);
        for (uint32_t k = 0; k < 4; k++)
            conv_channel(rows, kernel, zeros, s[k], w + (size_t)(c + k) * kernel, b[c + k],
                         rq->m[c + k], rq->sh[c + k], dim, act, out + c + k);
    }
}
#else
#include "../depthwise_conv_causal_s8.c"
#endif
