/*
 * rows_s8.c - one output row of the embedding and of the causal conv, and the projection +
 * combination by EBQ_MICRO rows, in plain C. The portable kernels are these loops; the DSP twins
 * (dsp/) use them for the shapes and tails their fast paths do not take. This file has no twin,
 * so both kernel sets link it (and ebq_project_combine_rows_s8 / _pc_s8 call whichever
 * ebq_fully_connected_s32 / ebq_combine_s8 the build has; ebq_combine_pc_s8 is att_output_s8.c).
 */
#include "ebq_ops.h"

void ebq_embedding_row_s8(const ebq_model *m, uint32_t id, uint32_t t, int8_t *out)
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

void ebq_depthwise_conv_causal_row_s8(const ebq_conv_params *p, uint32_t t, const int8_t *y,
                                      int8_t *out)
{
    const uint32_t dim = p->dim, kernel = p->kernel;
    const int8_t *w = p->w, *silu = p->silu;
    const int32_t *b = p->b, *m = p->rq->m;
    const int8_t *sh = p->rq->sh;
    /* Tap k reads row t-K+1+k; taps before row 0 read the zero padding, so they are skipped. */
    const uint32_t k0 = (t + 1 >= kernel) ? 0 : kernel - 1 - t;
    for (uint32_t c = 0; c < dim; c++) {
        int32_t acc = b[c]; /* + K * 2^14 */
        const int8_t *wc = w + (size_t)c * kernel;
        for (uint32_t k = k0; k < kernel; k++)
            acc += (int32_t)wc[k] * y[(size_t)(t + 1 + k - kernel) * dim + c];
        const int8_t v = ebq_rq_sat8(acc, m[c], sh[c]);
        out[c] = silu ? silu[v + 128] : v;
    }
}

/* The combination applied after the projection: spec 1's (one attention multiplier) or spec
 * 2's (one per channel, after att_output). */
typedef void combine_fn(uint32_t rows, uint32_t dim, const int32_t *attn, const int32_t *h,
                        const ebq_rq_params *a, const ebq_rq_params *b, int8_t *out);

static void project_combine(const ebq_context *ctx, const ebq_project_combine_params *p,
                            uint32_t rows, const int8_t *c, const int32_t *attn, int8_t *out,
                            combine_fn *combine)
{
    /* The buffer: h (EBQ_MICRO rows, int32), then the projection's own scratch. */
    const uint32_t dim = p->proj.out_dim;
    const size_t h_bytes = (size_t)EBQ_MICRO * dim * sizeof(int32_t);
    int32_t *h = ctx->buf;
    const ebq_context fc = {(uint8_t *)ctx->buf + h_bytes, ctx->size - h_bytes};
    for (uint32_t r0 = 0; r0 < rows; r0 += EBQ_MICRO) {
        const uint32_t nu = (rows - r0 < EBQ_MICRO) ? rows - r0 : EBQ_MICRO;
        ebq_fully_connected_s32(&fc, &p->proj, nu, c + (size_t)r0 * dim, h);
        combine(nu, dim, attn + (size_t)r0 * dim, h, p->out_a, p->out_b, out + (size_t)r0 * dim);
    }
}

void ebq_project_combine_rows_s8(const ebq_context *ctx, const ebq_project_combine_params *p,
                                 uint32_t rows, const int8_t *c, const int32_t *attn, int8_t *out)
{
    project_combine(ctx, p, rows, c, attn, out, ebq_combine_s8);
}

void ebq_project_combine_pc_s8(const ebq_context *ctx, const ebq_project_combine_params *p,
                               uint32_t rows, const int8_t *c, const int32_t *ao, int8_t *out)
{
    project_combine(ctx, p, rows, c, ao, out, ebq_combine_pc_s8);
}

void ebq_layer_rows_generic_s8(const ebq_context *ctx, const ebq_layer_rows_params *p,
                               uint32_t t0, uint32_t rows, int8_t *x)
{
    /* The buffer: attn (EBQ_MICRO rows, int32), then every kernel's scratch in turn. */
    const uint32_t dim = p->att.dim;
    const size_t a_bytes = ebq_a8((size_t)EBQ_MICRO * dim * 4u);
    int32_t *attn = ctx->buf;
    const ebq_context scratch = {(uint8_t *)ctx->buf + a_bytes, ctx->size - a_bytes};
    for (uint32_t r0 = 0; r0 < rows; r0 += EBQ_MICRO) {
        const uint32_t nu = (rows - r0 < EBQ_MICRO) ? rows - r0 : EBQ_MICRO;
        int8_t *xt = x + (size_t)(t0 + r0) * dim;
        ebq_attention_rows_s8(&scratch, &p->att, nu, xt, attn);
        if (p->ao.fc.w != NULL) { /* spec 2: context -> int8 (queries used) -> att_output */
            ebq_context_s8(nu * dim, attn, p->ao.ctx, xt);
            ebq_fully_connected_s32(&scratch, &p->ao.fc, nu, xt, attn);
        }
        ebq_depthwise_conv_causal_s8(&p->conv, t0 + r0, nu, p->att.y, xt); /* queries used */
        if (p->ao.fc.w != NULL)
            ebq_project_combine_pc_s8(&scratch, &p->pc, nu, xt, attn, xt);
        else
            ebq_project_combine_s8(&scratch, &p->pc, nu, xt, attn, xt); /* in place */
    }
}
