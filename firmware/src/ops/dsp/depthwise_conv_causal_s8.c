/*
 * dsp/depthwise_conv_causal_s8.c - Cortex-M4 twin of ../depthwise_conv_causal_s8.c (same bits).
 *
 * For a block of 4 output rows, the K+3 input values of each channel's column are gathered once
 * (4 channels per word load, SXTB16 + PKHBT/PKHTB) into pairs Q[i] = (v_i, v_i+2). A weight word w[c][4g..4g+3] unpacks (SXTB16)
 * into (w_4g, w_4g+2) and (w_4g+1, w_4g+3), and output row o then takes two SMLADs with the
 * adjacent pairs Q[o+4g], Q[o+4g+1] (one LDRD): 15 instructions per 16 MACs plus the gather.
 */
#if defined(__ARM_FEATURE_DSP)
#include "../ebq_ops.h"
#include "ebq_dsp.h"

#define EBQ_CONV_MAX_K 64u

static void conv_row(uint32_t t, uint32_t dim, uint32_t kernel, const int8_t *y, const int8_t *w,
                     const int32_t *b, const ebq_rq_params *rq, int8_t *out)
{
    const uint32_t k0 = (t + 1 >= kernel) ? 0 : kernel - 1 - t;
    for (uint32_t c = 0; c < dim; c++) {
        int32_t acc = b[c];
        const int8_t *wc = w + (size_t)c * kernel;
        for (uint32_t k = k0; k < kernel; k++)
            acc += (int32_t)wc[k] * y[(size_t)(t + 1 + k - kernel) * dim + c];
        out[c] = ebq_rq_sat8(acc, rq->m[c], rq->sh[c]);
    }
}

static void conv_block4(uint32_t t0, uint32_t dim, uint32_t kernel, const int8_t *y,
                        const int8_t *w, const int32_t *b, const ebq_rq_params *rq, int8_t *out)
{
    /* q[ch][i] = (v_i, v_i+2) of channel c+ch, i = 0..K, gathered 4 channels per word load. */
    int32_t q[4][EBQ_CONV_MAX_K + 1];
    const int32_t r0 = (int32_t)t0 - (int32_t)kernel + 1; /* row of v_0 (< 0 reads zeros) */
    int32_t lo[EBQ_CONV_MAX_K + 3], hi[EBQ_CONV_MAX_K + 3]; /* unpacked rows of the window */
    for (uint32_t c = 0; c < dim; c += 4) {
        uint32_t i = 0;
        for (; i < kernel + 3 && r0 + (int32_t)i < 0; i++)
            lo[i] = hi[i] = 0;
        const int8_t *yp = y + (size_t)(r0 + (int32_t)i) * dim + c;
        for (; i < kernel + 3; i++, yp += dim) {
            const uint32_t u = ebq_ld32(yp);
            lo[i] = ebq_lo02(u);
            hi[i] = ebq_hi13(u);
        }
        for (i = 0; i <= kernel; i++) {
            q[0][i] = ebq_pair_lo(lo[i], lo[i + 2]);
            q[1][i] = ebq_pair_lo(hi[i], hi[i + 2]);
            q[2][i] = ebq_pair_hi(lo[i], lo[i + 2]);
            q[3][i] = ebq_pair_hi(hi[i], hi[i + 2]);
        }
        for (uint32_t ch = 0; ch < 4; ch++) {
            const int32_t *qc = q[ch];
            const uint32_t cc = c + ch;
            int32_t a0 = b[cc], a1 = b[cc], a2 = b[cc], a3 = b[cc];
            const int8_t *wc = w + (size_t)cc * kernel;
            for (uint32_t g = 0; g < kernel; g += 4) {
                const uint32_t wv = ebq_ld32(wc + g);
                const int32_t w02 = ebq_lo02(wv), w13 = ebq_hi13(wv);
                a0 = __smlad(w13, qc[g + 1], __smlad(w02, qc[g], a0));
                a1 = __smlad(w13, qc[g + 2], __smlad(w02, qc[g + 1], a1));
                a2 = __smlad(w13, qc[g + 3], __smlad(w02, qc[g + 2], a2));
                a3 = __smlad(w13, qc[g + 4], __smlad(w02, qc[g + 3], a3));
            }
            const int32_t m = rq->m[cc], sh = rq->sh[cc];
            out[cc] = ebq_rq_sat8(a0, m, sh);
            out[dim + cc] = ebq_rq_sat8(a1, m, sh);
            out[2 * dim + cc] = ebq_rq_sat8(a2, m, sh);
            out[3 * dim + cc] = ebq_rq_sat8(a3, m, sh);
        }
    }
}

void ebq_depthwise_conv_causal_s8(uint32_t t0, uint32_t rows, uint32_t dim, uint32_t kernel,
                                  const int8_t *y, const int8_t *w, const int32_t *b,
                                  const ebq_rq_params *rq, int8_t *out)
{
    uint32_t r = 0;
    if (kernel % 4 == 0 && kernel <= EBQ_CONV_MAX_K && dim % 4 == 0)
        for (; r + 4 <= rows; r += 4)
            conv_block4(t0 + r, dim, kernel, y, w, b, rq, out + (size_t)r * dim);
    for (; r < rows; r++)
        conv_row(t0 + r, dim, kernel, y, w, b, rq, out + (size_t)r * dim);
}
#else
#include "../depthwise_conv_causal_s8.c"
#endif
