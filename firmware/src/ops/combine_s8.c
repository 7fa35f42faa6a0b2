/* combine_s8.c - the differential combination a*attn - b*conv, a and b folded into the rq's. */
#include "ebq_ops.h"

void ebq_combine_s8(uint32_t rows, uint32_t dim, const int32_t *attn, const int32_t *h,
                    const ebq_rq_params *a, const ebq_rq_params *b, int8_t *out)
{
    const int32_t ma = a->m[0], sha = a->sh[0];
    for (uint32_t i = 0; i < rows * dim; i++)
        out[i] = ebq_rq2_sat8(attn[i], ma, sha, h[i], b->m[i % dim], b->sh[i % dim], -1);
}

void ebq_project_combine_s8(uint32_t rows, uint32_t dim, const int8_t *c, const int8_t *w,
                            const int32_t *b, const int32_t *attn, const ebq_rq_params *a,
                            const ebq_rq_params *bq, int16_t *wide, int32_t *h, void *work,
                            size_t work_bytes, int8_t *out)
{
    (void)work, (void)work_bytes;
    for (uint32_t r0 = 0; r0 < rows; r0 += EBQ_MICRO) {
        const uint32_t nu = (rows - r0 < EBQ_MICRO) ? rows - r0 : EBQ_MICRO;
        ebq_fully_connected_s32(nu, dim, dim, c + (size_t)r0 * dim, w, b, wide, h);
        ebq_combine_s8(nu, dim, attn + (size_t)r0 * dim, h, a, bq, out + (size_t)r0 * dim);
    }
}
