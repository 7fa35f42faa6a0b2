/* fully_connected_s8.c - y = W x + b for a block of rows, int32 or requantized int8 out. */
#include "ebq_ops.h"

static int32_t dot_s8(uint32_t len, const int8_t *a, const int8_t *b)
{
    int32_t acc = 0;
    for (uint32_t i = 0; i < len; i++)
        acc += (int32_t)a[i] * b[i];
    return acc;
}

/* The params are read into locals once: the stores to acc/out could alias them otherwise. */
void ebq_fully_connected_s32(const ebq_context *ctx, const ebq_fc_params *p, uint32_t rows,
                             const int8_t *x, int32_t *acc)
{
    (void)ctx;
    const uint32_t in_dim = p->in_dim, out_dim = p->out_dim;
    const int8_t *w = p->w;
    const int32_t *b = p->b;
    for (uint32_t r = 0; r < rows; r++, x += in_dim, acc += out_dim)
        for (uint32_t o = 0; o < out_dim; o++)
            acc[o] = (b ? b[o] : 0) + dot_s8(in_dim, x, w + (size_t)o * in_dim);
}

void ebq_fully_connected_s8(const ebq_context *ctx, const ebq_fc_params *p, uint32_t rows,
                            const int8_t *x, int8_t *out)
{
    (void)ctx;
    const uint32_t in_dim = p->in_dim, out_dim = p->out_dim;
    const int8_t *w = p->w;
    const int32_t *b = p->b, *m = p->rq->m;
    const int8_t *sh = p->rq->sh;
    for (uint32_t r = 0; r < rows; r++, x += in_dim, out += out_dim)
        for (uint32_t o = 0; o < out_dim; o++) {
            const int32_t acc = b[o] + dot_s8(in_dim, x, w + (size_t)o * in_dim);
            out[o] = ebq_rq_sat8(acc, m[o], sh[o]);
        }
}
