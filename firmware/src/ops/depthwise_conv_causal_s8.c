/* depthwise_conv_causal_s8.c - output rows of the causal depthwise convolution. */
#include "ebq_ops.h"

void ebq_depthwise_conv_causal_s8(const ebq_conv_params *p, uint32_t t0, uint32_t rows,
                                  const int8_t *y, int8_t *out)
{
    for (uint32_t r = 0; r < rows; r++) /* the row loop itself is in rows_s8.c */
        ebq_depthwise_conv_causal_row_s8(p, t0 + r, y, out + (size_t)r * p->dim);
}
