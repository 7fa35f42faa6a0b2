/* embedding_s8.c - Nano Embedder: per token two small projections, summed in x0's scale. */
#include "ebq_ops.h"

void ebq_embedding_s8(const ebq_context *ctx, const ebq_model *m, const uint16_t *ids,
                      uint32_t t0, uint32_t rows, int8_t *out)
{
    (void)ctx;
    for (uint32_t r = 0; r < rows; r++) /* the row loop itself is in rows_s8.c */
        ebq_embedding_row_s8(m, ids[t0 + r], t0 + r, out + (size_t)r * m->dim);
}
