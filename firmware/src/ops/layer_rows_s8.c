/* layer_rows_s8.c - attention, conv + SiLU, projection and combination of a layer's rows. */
#include "ebq_ops.h"

size_t ebq_layer_rows_s8_get_buffer_size(uint32_t n, uint32_t dim, int att_output)
{
    (void)att_output; /* the att_output accumulators take the attention's place */
    return ebq_layer_rows_generic_s8_get_buffer_size(n, dim);
}

void ebq_layer_rows_s8(const ebq_context *ctx, const ebq_layer_rows_params *p, uint32_t rows,
                       int8_t *x)
{
    ebq_layer_rows_generic_s8(ctx, p, 0, rows, x);
}
