/* combine_s8.c - the differential combination a*attn - b*conv, a and b folded into the rq's. */
#include "ebq_ops.h"

void ebq_combine_s8(uint32_t rows, uint32_t dim, const int32_t *attn, const int32_t *h,
                    const ebq_rq_params *a, const ebq_rq_params *b, int8_t *out)
{
    const int32_t ma = a->m[0], sha = a->sh[0];
    for (uint32_t i = 0; i < rows * dim; i++)
        out[i] = ebq_rq2_sat8(attn[i], ma, sha, h[i], b->m[i % dim], b->sh[i % dim], -1);
}

void ebq_project_combine_s8(const ebq_context *ctx, const ebq_project_combine_params *p,
                            uint32_t rows, const int8_t *c, const int32_t *attn, int8_t *out)
{
    ebq_project_combine_rows_s8(ctx, p, rows, c, attn, out);
}
