/*
 * dsp/embedding_s8.c - Cortex-M4 twin of ../embedding_s8.c (same bits).
 *
 * Four tokens at a time: their table rows (and the 4 consecutive position rows) are widened to
 * int16 once, then both projections run through ebq_mm4 (4 tokens per weight load).
 */
#if defined(__ARM_FEATURE_DSP)
#include "../ebq_ops.h"
#include "ebq_dsp.h"

#define EBQ_EMB_MAX_E 64u

void ebq_embedding_s8(const ebq_context *ctx, const ebq_model *m, const uint16_t *ids,
                      uint32_t t0, uint32_t rows, int8_t *out)
{
    int16_t *wide = ctx->buf;
    const uint32_t e_dim = m->emb_dim, d = m->dim;
    if (rows > EBQ_MICRO || e_dim % 8 != 0 || e_dim > EBQ_EMB_MAX_E ||
        (rows < EBQ_MICRO && ctx->size < ebq_embedding_s8_get_buffer_size(e_dim, d))) {
        for (uint32_t r = 0; r < rows; r++)
            ebq_embedding_row_s8(m, ids[t0 + r], t0 + r, out + (size_t)r * d);
        return;
    }
    /* Fewer than 4 rows (the tail): zero rows fill the block and the 4 output rows go to the
     * buffer, of which `rows` are copied out. */
    int8_t *dst = out;
    if (rows < EBQ_MICRO)
        out = (int8_t *)ctx->buf + 4u * EBQ_MICRO * e_dim;
    int8_t tok[EBQ_MICRO * EBQ_EMB_MAX_E] __attribute__((aligned(4)));
    int8_t pos[EBQ_MICRO * EBQ_EMB_MAX_E] __attribute__((aligned(4)));
    for (uint32_t r = 0; r < EBQ_MICRO; r++)
        for (uint32_t e = 0; e < e_dim; e += 4) { /* E % 8 == 0: rows are word aligned */
            if (r < rows) {
                __builtin_memcpy(tok + r * e_dim + e, m->tok + (size_t)ids[t0 + r] * e_dim + e, 4);
                __builtin_memcpy(pos + r * e_dim + e, m->pos + (size_t)(t0 + r) * e_dim + e, 4);
            } else {
                __builtin_memset(tok + r * e_dim + e, 0, 4);
                __builtin_memset(pos + r * e_dim + e, 0, 4);
            }
        }
    int16_t *wt = wide, *wp = wide + EBQ_MICRO * e_dim;
    ebq_widen_rows(EBQ_MICRO, e_dim, tok, wt);
    ebq_widen_rows(EBQ_MICRO, e_dim, pos, wp);
    if (e_dim % 16 != 0) { /* rows == 4 here or out is the buffer */
        for (uint32_t o = 0; o < d; o++) {
            int32_t at[4] = {0, 0, 0, 0}, ap[4] = {0, 0, 0, 0};
            ebq_dot4_s8(e_dim, m->tok_proj_w + (size_t)o * e_dim, wt, at);
            ebq_dot4_s8(e_dim, m->pos_proj_w + (size_t)o * e_dim, wp, ap);
            const int32_t mt = m->tok_proj_rq.m[o], st = m->tok_proj_rq.sh[o];
            const int32_t mp = m->pos_proj_rq.m[o], sp = m->pos_proj_rq.sh[o];
            for (uint32_t r = 0; r < EBQ_MICRO; r++)
                out[(size_t)r * d + o] = ebq_rq2_sat8(at[r], mt, st, ap[r], mp, sp, 1);
        }
        if (out != dst)
            __builtin_memcpy(dst, out, (size_t)rows * d);
        return;
    }
    /* E % 16 == 0: both projections by the micro-kernel, 16 outputs per call. */
    int32_t rt[4 * 16], rp[4 * 16];
    /* Locals: the int8 stores may alias anything, so fields of *m would be reloaded. */
    const int32_t *tm = m->tok_proj_rq.m, *pm = m->pos_proj_rq.m;
    const int8_t *tsh = m->tok_proj_rq.sh, *psh = m->pos_proj_rq.sh;
    for (uint32_t o0 = 0; o0 < d; o0 += 16) {
        const uint32_t no = d - o0 < 16 ? d - o0 : 16;
        ebq_mm4(m->tok_proj_w + (size_t)o0 * e_dim, wt, e_dim, no, rt);
        ebq_mm4(m->pos_proj_w + (size_t)o0 * e_dim, wp, e_dim, no, rp);
        for (uint32_t i = 0; i < no; i++) {
            const uint32_t o = o0 + i;
            const int32_t mt = tm[o], st = tsh[o], mp = pm[o], sp = psh[o];
            if (st < 2 || sp < 2) {
                for (uint32_t r = 0; r < EBQ_MICRO; r++)
                    out[(size_t)r * d + o] =
                        ebq_rq2_sat8(rt[4 * i + r], mt, st, rp[4 * i + r], mp, sp, 1);
                continue;
            }
            const int32_t rt2 = (int32_t)1 << (st - 2), rp2 = (int32_t)1 << (sp - 2);
            const int32_t st1 = st - 1, sp1 = sp - 1;
            const int32_t *at = rt + 4 * i, *ap = rp + 4 * i;
            int8_t *oo = out + o;
#define EBQ_EMB(k)                                                                               \
    oo[(k) * d] = (int8_t)__ssat(ebq_rq32_fast(at[k], mt, rt2, st1) +                            \
                                     ebq_rq32_fast(ap[k], mp, rp2, sp1),                         \
                                 8)
            EBQ_EMB(0);
            EBQ_EMB(1);
            EBQ_EMB(2);
            EBQ_EMB(3);
#undef EBQ_EMB
        }
    }
    if (out != dst)
        __builtin_memcpy(dst, out, (size_t)rows * d);
}
#else
#include "../embedding_s8.c"
#endif
