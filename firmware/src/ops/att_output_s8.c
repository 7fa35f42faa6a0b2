/*
 * att_output_s8.c - the steps spec 2 adds (docs/int8-spec.md): the segment bias in the
 * embedding, the attention context to int8, and the combination with a per-channel attention
 * multiplier. No DSP twin: the heavy parts are calls to the kernels that have one
 * (ebq_fully_connected_s32), so both kernel sets link this file; the DSP layer rows fuse their
 * own combination (dsp/layer_rows_s8.c) and come here only for the rows they do not fuse.
 */
#include "ebq_ops.h"

void ebq_embedding_seg_s8(const ebq_context *ctx, const ebq_model *m, const uint16_t *ids,
                          uint32_t t0, uint32_t rows, int8_t *out)
{
    /* The buffer: gathered token rows, the two accumulators, the projections' scratch. */
    const uint32_t e_dim = m->emb_dim, d = m->dim;
    const size_t tok_bytes = ((size_t)EBQ_MICRO * e_dim + 7u) & ~(size_t)7u,
                 acc_bytes = (size_t)EBQ_MICRO * d * sizeof(int32_t);
    int8_t *tok = ctx->buf;
    int32_t *at = (int32_t *)(void *)((uint8_t *)ctx->buf + tok_bytes);
    int32_t *ap = at + (size_t)EBQ_MICRO * d;
    const ebq_context fc = {(uint8_t *)ctx->buf + tok_bytes + 2 * acc_bytes,
                            ctx->size - tok_bytes - 2 * acc_bytes};
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t e = 0; e < e_dim; e++)
            tok[(size_t)r * e_dim + e] = m->tok[(size_t)ids[t0 + r] * e_dim + e];
    const ebq_fc_params pt = {e_dim, d, m->tok_proj_w, NULL, NULL},
                        pp = {e_dim, d, m->pos_proj_w, m->seg_b, NULL};
    ebq_fully_connected_s32(&fc, &pt, rows, tok, at);
    ebq_fully_connected_s32(&fc, &pp, rows, m->pos + (size_t)t0 * e_dim, ap);
    const int32_t *tm = m->tok_proj_rq.m, *pm = m->pos_proj_rq.m;
    const int8_t *tsh = m->tok_proj_rq.sh, *psh = m->pos_proj_rq.sh;
    for (uint32_t r = 0; r < rows; r++)
        for (uint32_t o = 0; o < d; o++) {
            const size_t i = (size_t)r * d + o;
            out[i] = ebq_rq2_sat8(at[i], tm[o], tsh[o], ap[i], pm[o], psh[o], 1);
        }
}

void ebq_context_s8(uint32_t count, const int32_t *attn, const ebq_rq_params *rq, int8_t *out)
{
    const int32_t m = rq->m[0], sh = rq->sh[0]; /* locals: the stores may alias rq */
    for (uint32_t i = 0; i < count; i++)
        out[i] = ebq_rq_sat8(attn[i], m, sh);
}

void ebq_combine_pc_s8(uint32_t rows, uint32_t dim, const int32_t *ao, const int32_t *h,
                       const ebq_rq_params *a, const ebq_rq_params *b, int8_t *out)
{
    for (uint32_t r = 0; r < rows; r++, ao += dim, h += dim, out += dim)
        for (uint32_t o = 0; o < dim; o++)
            out[o] = ebq_rq2_sat8(ao[o], a->m[o], a->sh[o], h[o], b->m[o], b->sh[o], -1);
}
