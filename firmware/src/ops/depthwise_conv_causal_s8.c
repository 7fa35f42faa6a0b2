/* depthwise_conv_causal_s8.c - output rows of the causal depthwise convolution. */
#include "ebq_ops.h"

static void conv_row(uint32_t t, uint32_t dim, uint32_t kernel, const int8_t *y, const int8_t *w,
                     const int32_t *b, const ebq_rq_params *rq, const int8_t *silu, int8_t *out)
{
    /* Tap k reads row t-K+1+k; taps before row 0 read the zero padding, so they are skipped. */
    const uint32_t k0 = (t + 1 >= kernel) ? 0 : kernel - 1 - t;
    for (uint32_t c = 0; c < dim; c++) {
        int32_t acc = b[c]; /* + K * 2^14 */
        const int8_t *wc = w + (size_t)c * kernel;
        for (uint32_t k = k0; k < kernel; k++)
            acc += (int32_t)wc[k] * y[(size_t)(t + 1 + k - kernel) * dim + c];
        const int8_t v = ebq_rq_sat8(acc, rq->m[c], rq->sh[c]);
        out[c] = silu ? silu[v + 128] : v;
    }
}

void ebq_depthwise_conv_causal_s8(uint32_t t0, uint32_t rows, uint32_t dim, uint32_t kernel,
                                  const int8_t *y, const int8_t *w, const int32_t *b,
                                  const ebq_rq_params *rq, const int8_t *silu, int8_t *out)
{
    for (uint32_t r = 0; r < rows; r++)
        conv_row(t0 + r, dim, kernel, y, w, b, rq, silu, out + (size_t)r * dim);
}
