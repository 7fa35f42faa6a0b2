/* embedding_s8.c - Nano Embedder for one token: two small projections, summed in x0's scale. */
#include "ebq_ops.h"

static void embed_row(const ebq_model *m, uint32_t id, uint32_t t, int8_t *out)
{
    const uint32_t e_dim = m->emb_dim;
    const int8_t *tok = m->tok + (size_t)id * e_dim; /* (E,) */
    const int8_t *pos = m->pos + (size_t)t * e_dim;  /* (E,) */
    for (uint32_t o = 0; o < m->dim; o++) {
        const int8_t *wt = m->tok_proj_w + (size_t)o * e_dim;
        const int8_t *wp = m->pos_proj_w + (size_t)o * e_dim;
        int32_t at = 0, ap = 0; /* |acc| <= E * 2^14 */
        for (uint32_t e = 0; e < e_dim; e++) {
            at += (int32_t)tok[e] * wt[e];
            ap += (int32_t)pos[e] * wp[e];
        }
        out[o] = ebq_rq2_sat8(at, m->tok_proj_rq.m[o], m->tok_proj_rq.sh[o], ap,
                              m->pos_proj_rq.m[o], m->pos_proj_rq.sh[o], 1);
    }
}

void ebq_embedding_s8(const ebq_model *m, const uint16_t *ids, uint32_t t0, uint32_t rows,
                      int16_t *wide, int8_t *out)
{
    (void)wide;
    for (uint32_t r = 0; r < rows; r++)
        embed_row(m, ids[t0 + r], t0 + r, out + (size_t)r * m->dim);
}
