/* combine_s8.c - the differential combination a*attn - b*conv, a and b folded into the rq's. */
#include "ebq_ops.h"

void ebq_combine_s8(uint32_t dim, const int32_t *attn, const int32_t *h, const ebq_rq_params *a,
                    const ebq_rq_params *b, int8_t *out)
{
    const int32_t ma = a->m[0], sha = a->sh[0];
    for (uint32_t o = 0; o < dim; o++)
        out[o] = ebq_rq2_sat8(attn[o], ma, sha, h[o], b->m[o], b->sh[o], -1);
}
