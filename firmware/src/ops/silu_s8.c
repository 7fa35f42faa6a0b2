/* silu_s8.c - SiLU by a 256-entry int8 table (built by the quantizer for this layer's scales). */
#include "ebq_ops.h"

void ebq_silu_s8(uint32_t dim, const int8_t *in, const int8_t *table, int8_t *out)
{
    for (uint32_t i = 0; i < dim; i++)
        out[i] = table[(int32_t)in[i] + 128];
}
