/*
 * forward.c - the EmbBERT-Q integer forward pass (docs/int8-spec.md), one comment per step.
 *
 * Memory: the arena holds x (n,D) int8 and y (n,D) int8 plus `work`, the kernels' scratch
 * (arena_sizes). Each layer computes y = RMSNorm(x) for all rows, after which x is dead: it
 * first receives the queries of every row (the projection may use all of `work`), then
 * ebq_layer_rows_s8 turns them, block by block, into the layer's output (its buffer is `work`).
 * The last layer computes row 0 ([CLS]) only.
 */
#include <string.h>

#include "ebq_model.h"
#include "ops/ebq_ops.h"

static size_t align_up(size_t n)
{
    return (n + EBQ_ARENA_ALIGN - 1) & ~(size_t)(EBQ_ARENA_ALIGN - 1);
}

/* Arena layout for n tokens: x, y, then `work`, every size rounded up to EBQ_ARENA_ALIGN;
 * ebq_arena_bytes is the sum. `work` is the largest buffer any step asks for: the layer rows
 * (ebq_layer_rows_s8_get_buffer_size, per kernel set), the embedding's and the classifier's. */
typedef struct {
    size_t xy;   /* (n,D) int8, each of x and y */
    size_t work; /* every kernel's buffer        */
} arena_sizes;

static arena_sizes arena_sizes_of(const ebq_model *m, uint32_t n)
{
    arena_sizes z;
    z.xy = align_up((size_t)n * m->dim);
    int att_output = 0;
    for (uint32_t l = 0; l < m->n_layers; l++)
        att_output |= m->layers[l].ao_w != NULL;
    size_t w = ebq_layer_rows_s8_get_buffer_size(n, m->dim, att_output);
    const size_t fc = ebq_fully_connected_s8_get_buffer_size(m->dim),
                 emb = m->seg_b ? ebq_embedding_seg_s8_get_buffer_size(m->emb_dim, m->dim)
                                : ebq_embedding_s8_get_buffer_size(m->emb_dim, m->dim);
    w = w > fc ? w : fc;
    z.work = align_up(w > emb ? w : emb);
    return z;
}

size_t ebq_arena_bytes(const ebq_model *m, uint32_t n)
{
    if (m == NULL)
        return 0;
    const arena_sizes z = arena_sizes_of(m, n);
    return 2 * z.xy + z.work;
}

size_t ebq_arena_bytes_upto(const ebq_model *m, uint32_t n)
{
    size_t most = 0;
    for (uint32_t k = 1; k <= n; k++) {
        const size_t b = ebq_arena_bytes(m, k);
        most = b > most ? b : most;
    }
    return most;
}

void ebq_arena_init(ebq_arena *a, void *mem, size_t size)
{
    /* Start at an 8-aligned address so the sizes ebq_arena_bytes adds up are the exact peak. */
    const uintptr_t p = (uintptr_t)mem;
    const size_t skip = (size_t)((EBQ_ARENA_ALIGN - (p & (EBQ_ARENA_ALIGN - 1))) &
                                 (EBQ_ARENA_ALIGN - 1));
    a->base = (uint8_t *)mem + (skip <= size ? skip : size);
    a->size = skip <= size ? size - skip : 0;
    a->used = 0;
    a->peak = 0;
}

static void *arena_alloc(ebq_arena *a, size_t bytes)
{
    void *p = a->base + a->used;
    a->used += align_up(bytes);
    if (a->used > a->peak)
        a->peak = a->used;
    return p;
}

static void stage(const ebq_hooks *hooks, uint32_t s, int end)
{
    if (hooks != NULL && hooks->stage != NULL)
        hooks->stage(hooks->ctx, s, end);
}

int ebq_forward(const ebq_model *m, ebq_arena *arena, const uint16_t *ids, uint32_t n,
                int32_t *logits, const ebq_hooks *hooks)
{
    if (m == NULL || arena == NULL || ids == NULL || logits == NULL || arena->base == NULL)
        return EBQ_ERR_ARG;
    if (n == 0)
        return EBQ_ERR_EMPTY;
    if (n > m->max_len)
        return EBQ_ERR_TOO_LONG;
    for (uint32_t t = 0; t < n; t++)
        if (ids[t] >= m->vocab_size)
            return EBQ_ERR_BAD_IDS;
    if (arena->used > arena->size || arena->size - arena->used < ebq_arena_bytes(m, n))
        return EBQ_ERR_NO_MEMORY;

    const uint32_t d = m->dim;
    const size_t start = arena->used;
    const arena_sizes z = arena_sizes_of(m, n);
    int8_t *x = arena_alloc(arena, z.xy); /* hidden states, then queries, then the output */
    int8_t *y = arena_alloc(arena, z.xy); /* normalised hidden states = keys = values     */
    const ebq_context work = {arena_alloc(arena, z.work), z.work};

    /* Stage 0 - Nano Embedder: x[t] = sat8(rq(tok_proj tok[id_t]) + rq(pos_proj pos[t] + seg))
     * (spec 2: seg, the segment embedding folded into a bias; spec 1: no seg). */
    stage(hooks, 0, 0);
    for (uint32_t t0 = 0; t0 < n; t0 += EBQ_MICRO) {
        const uint32_t nr = (n - t0 < EBQ_MICRO) ? n - t0 : EBQ_MICRO;
        if (m->seg_b != NULL)
            ebq_embedding_seg_s8(&work, m, ids, t0, nr, x + (size_t)t0 * d);
        else
            ebq_embedding_s8(&work, m, ids, t0, nr, x + (size_t)t0 * d);
    }
    stage(hooks, 0, 1);

    for (uint32_t l = 0; l < m->n_layers; l++) {
        const ebq_layer *w = &m->layers[l];
        const uint32_t rows = (l + 1 == m->n_layers) ? 1 : n; /* last layer: [CLS] only */
        const ebq_fc_params q = {d, d, w->q_w, w->q_b, &w->q_rq};
        const ebq_layer_rows_params lr = {
            {n, d, y, ids, &w->sm_rq, m->exp_hi, m->exp_lo},
            {d, m->kernel, w->conv_w, w->conv_b, &w->conv_rq, w->silu},
            {{d, d, w->proj_w, w->proj_b, NULL}, &w->out_a, &w->out_b},
            {{d, d, w->ao_w, w->ao_b, NULL}, &w->ctx_rq}};
        stage(hooks, l + 1, 0);
        /* y = RMSNorm(x) for every row: y is the keys and values of every query. */
        ebq_rmsnorm_s8(n, d, x, w->norm_rq.m, w->norm_rq.sh, y);
        /* x <- q = sat8(rq(W_q y + b_q)) for the rows we output (x is dead now). */
        ebq_fully_connected_s8(&work, &q, rows, y, x);
        /* Attention over all real keys (spec 2: -> int8 context -> att_output, int32), causal
         * conv -> SiLU, projection h = W c + b and x[t] = sat8(rq(attn, a) - rq(h, b)), block
         * by block over the query rows. */
        ebq_layer_rows_s8(&work, &lr, rows, x);
        stage(hooks, l + 1, 1);
    }

    /* Classifier on [CLS]: the raw int32 accumulators are the logits (one weight scale). */
    stage(hooks, m->n_layers + 1, 0);
    const ebq_fc_params cls = {d, m->num_labels, m->cls_w, m->cls_b, NULL};
    ebq_fully_connected_s32(&work, &cls, 1, x, logits);
    stage(hooks, m->n_layers + 1, 1);

    arena->used = start;
    return EBQ_OK;
}

uint32_t ebq_argmax(const int32_t *logits, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}
