/* attention_rows_s8.c - softmax(q y^T / sqrt(D)) y for a block of query rows; no n x n matrix. */
#include "ebq_ops.h"

#define EBQ_EXP_ZMIN (-16 * 256)

static void attention_row(uint32_t n, uint32_t dim, const int8_t *q, const int8_t *y,
                          const uint16_t *ids, const ebq_rq_params *sm, const int16_t *exp_hi,
                          const int16_t *exp_lo, int32_t *scratch, int32_t *attn)
{
    /* 1. scores s_j = q . y_j over real keys, and their max (|s| <= D * 2^14). */
    int32_t smax = INT32_MIN;
    for (uint32_t j = 0; j < n; j++) {
        if (ids[j] == 0)
            continue;
        const int8_t *yj = y + (size_t)j * dim;
        int32_t s = 0;
        for (uint32_t i = 0; i < dim; i++)
            s += (int32_t)q[i] * yj[i];
        scratch[j] = s;
        if (s > smax)
            smax = s;
    }
    for (uint32_t c = 0; c < dim; c++)
        attn[c] = 0;
    if (smax == INT32_MIN) /* no real key: attention contributes 0 */
        return;
    /* 2. e_j = exp((s_j - max) * scale) in Q14 by table; E = sum e_j in [2^14, n 2^14]. */
    int32_t big_e = 0;
    for (uint32_t j = 0; j < n; j++) {
        if (ids[j] == 0)
            continue;
        int64_t z = ebq_rq(scratch[j] - smax, sm->m[0], sm->sh[0]);
        if (z < EBQ_EXP_ZMIN)
            z = EBQ_EXP_ZMIN;
        if (z > 0)
            z = 0;
        scratch[j] = ebq_exp_q14_inline((int32_t)z, exp_hi, exp_lo);
        big_e += scratch[j];
    }
    /* 3. acc_c = sum_j e_j y_jc (|acc| <= 2^29), then attn_c = acc_c / E in Q16. */
    for (uint32_t j = 0; j < n; j++) {
        if (ids[j] == 0)
            continue;
        const int32_t e = scratch[j];
        const int8_t *yj = y + (size_t)j * dim;
        for (uint32_t c = 0; c < dim; c++)
            attn[c] += e * yj[c];
    }
    const int64_t inv = ((int64_t)1 << 46) / big_e; /* <= 2^32 */
    for (uint32_t c = 0; c < dim; c++)
        attn[c] = (int32_t)((attn[c] * inv + ((int64_t)1 << 29)) >> 30);
}

void ebq_attention_rows_s8(const ebq_context *ctx, const ebq_attention_params *p, uint32_t nq,
                           const int8_t *q, int32_t *attn)
{
    /* The scores of one query (n int32) after the widened rows the DSP twin keeps first. */
    int32_t *scores = (int32_t *)(void *)((uint8_t *)ctx->buf +
                                          ebq_fully_connected_s8_get_buffer_size(p->dim));
    for (uint32_t r = 0; r < nq; r++)
        attention_row(p->n, p->dim, q + (size_t)r * p->dim, p->y, p->ids, p->sm, p->exp_hi,
                      p->exp_lo, scores, attn + (size_t)r * p->dim);
}
