/*
 * dsp/combine_s8.c - Cortex-M4 twin of ../combine_s8.c (same bits).
 *
 * When both shifts are >= 2 (the usual case) each term is SMMLA + ASR in 32 bits (exactly the
 * int64 formula, see ebq_rq in ../ebq_ops.h), then one SUB and one SSAT. Channels outside,
 * rows inside: each channel's M and shift are loaded once for up to 4 rows.
 */
#if defined(__ARM_FEATURE_DSP)
#include "../ebq_ops.h"
#include "ebq_dsp.h"

#define rq32_fast ebq_rq32_fast

/* 4 rows, both shifts >= 2 for channel o (checked by the caller for a); inlined with dim
 * constant when it is 128 so the row offsets become immediates. */
static inline __attribute__((always_inline)) void combine4(uint32_t dim, const int32_t *attn,
                                                           const int32_t *h, int32_t ma,
                                                           int32_t rnda, int32_t s1a,
                                                           const int32_t *mb, const int8_t *shb,
                                                           int8_t *out)
{
    for (const int8_t *end = shb + dim; shb != end; attn++, h++, out++, mb++, shb++) {
        const int32_t m = *mb, sh = *shb;
        if (sh < 2) {
            for (uint32_t r = 0; r < 4; r++)
                out[r * dim] = ebq_rq2_sat8(attn[r * dim], ma, s1a + 1, h[r * dim], m, sh, -1);
            continue;
        }
        const int32_t rnd = (int32_t)1 << (sh - 2), s1 = sh - 1;
        out[0] = (int8_t)__ssat(rq32_fast(attn[0], ma, rnda, s1a) - rq32_fast(h[0], m, rnd, s1), 8);
        out[dim] = (int8_t)__ssat(rq32_fast(attn[dim], ma, rnda, s1a) -
                                  rq32_fast(h[dim], m, rnd, s1), 8);
        out[2 * dim] = (int8_t)__ssat(rq32_fast(attn[2 * dim], ma, rnda, s1a) -
                                      rq32_fast(h[2 * dim], m, rnd, s1), 8);
        out[3 * dim] = (int8_t)__ssat(rq32_fast(attn[3 * dim], ma, rnda, s1a) -
                                      rq32_fast(h[3 * dim], m, rnd, s1), 8);
    }
}

void ebq_combine_s8(uint32_t rows, uint32_t dim, const int32_t *attn, const int32_t *h,
                    const ebq_rq_params *a, const ebq_rq_params *b, int8_t *out)
{
    const int32_t ma = a->m[0], sha = a->sh[0];
    if (rows == 4 && sha >= 2) {
        const int32_t rnda = (int32_t)1 << (sha - 2), s1a = sha - 1;
        if (dim == 128)
            combine4(128, attn, h, ma, rnda, s1a, b->m, b->sh, out);
        else
            combine4(dim, attn, h, ma, rnda, s1a, b->m, b->sh, out);
        return;
    }
    for (uint32_t o = 0; o < dim; o++) { /* any rows: per channel, rows inside */
        const int32_t mb = b->m[o], shb = b->sh[o];
        if (sha >= 2 && shb >= 2) {
            const int32_t rnda = (int32_t)1 << (sha - 2), rndb = (int32_t)1 << (shb - 2);
            for (uint32_t r = 0; r < rows; r++) {
                const size_t i = (size_t)r * dim + o;
                out[i] = (int8_t)__ssat(rq32_fast(attn[i], ma, rnda, sha - 1) -
                                            rq32_fast(h[i], mb, rndb, shb - 1),
                                        8);
            }
        } else {
            for (uint32_t r = 0; r < rows; r++) {
                const size_t i = (size_t)r * dim + o;
                out[i] = ebq_rq2_sat8(attn[i], ma, sha, h[i], mb, shb, -1);
            }
        }
    }
}

/* One tile of ebq_mm22_rows: the 4 projections + bias, combined with attn. */
typedef struct {
    const int32_t *attn;
    int8_t *out;
    int32_t ma, rnda, s1a;
} pc_ctx;

static inline __attribute__((always_inline)) void pc_tile(const int32_t a[4],
                                                          const ebq_pair_rq *p, uint32_t r,
                                                          uint32_t o, const void *ctx)
{
    const pc_ctx *c = ctx;
    const size_t i = (size_t)r * 128 + o;
    const int32_t *at = c->attn + i;
    int8_t *oo = c->out + i;
    const int32_t ma = c->ma, rnda = c->rnda, s1a = c->s1a;
#define EBQ_PC(off, k, q)                                                                        \
    oo[off] = (int8_t)__ssat(rq32_fast(at[off], ma, rnda, s1a) -                                  \
                                 rq32_fast(a[k] + p->b[q], p->m[q], p->rnd[q], p->s1[q]),        \
                             8)
    EBQ_PC(0, 0, 0);
    EBQ_PC(1, 1, 1);
    EBQ_PC(128, 2, 0);
    EBQ_PC(129, 3, 1);
#undef EBQ_PC
}

void ebq_project_combine_s8(const ebq_context *ctx, const ebq_project_combine_params *p,
                            uint32_t rows, const int8_t *c, const int32_t *attn, int8_t *out)
{
    const uint32_t dim = p->proj.out_dim;
    const int8_t *w = p->proj.w;
    const int32_t *b = p->proj.b;
    const ebq_rq_params *a = p->out_a, *bq = p->out_b;
    /* D = 128, every shift >= 2 and room for the output pair and 8 row pairs: the 2x2 kernel
     * on the even rows, straight into the combination (no int32 h), all of the buffer its
     * widened rows. */
    void *work = ctx->buf;
    const size_t work_bytes = ctx->size, pair = 4 * (size_t)dim;
    int fast = dim == 128 && rows >= 8 && a->sh[0] >= 2 && work_bytes >= 5 * pair;
    for (uint32_t o = 0; fast && o < dim; o++)
        fast = bq->sh[o] >= 2;
    if (fast) {
        const uint32_t even = rows & ~1u;
        const uint32_t chunk = (uint32_t)((work_bytes - pair) / pair) * 2;
        const pc_ctx tile = {attn, out, a->m[0], (int32_t)1 << (a->sh[0] - 2), a->sh[0] - 1};
        ebq_mm22_rows(even, chunk, dim, c, w, b, bq->m, bq->sh, work, pc_tile, &tile);
        c += (size_t)even * dim, attn += (size_t)even * dim, out += (size_t)even * dim;
        rows -= even;
    }
    ebq_project_combine_rows_s8(ctx, p, rows, c, attn, out); /* the other rows (rows_s8.c) */
}
#else
#include "../combine_s8.c"
#endif
