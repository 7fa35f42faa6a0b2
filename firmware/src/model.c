/*
 * model.c - ebq_model_load: one straight walk over the tensors the spec names (docs/int8-spec.md),
 * checking each dtype and shape against cfg.dims, plus the small accessors of ebq.h.
 * The walk's order is the blob's tensor order as hil/quant/quantize.py writes it.
 */
#include <string.h>

#include "ebq_model.h"

/* ebq.h's public storage must hold the view it stands in for. */
_Static_assert(sizeof(ebq_model_storage) >= sizeof(struct ebq_model),
               "EBQ_MODEL_STORAGE_BYTES (ebq.h) is smaller than struct ebq_model");
_Static_assert(_Alignof(ebq_model_storage) >= _Alignof(struct ebq_model),
               "ebq_model_storage (ebq.h) is less aligned than struct ebq_model");

/* Fetch `name` with the given dtype and exact shape (up to 2 dims); NULL data on failure. */
static int get(const ebq_blob *b, const char *name, int dtype, uint32_t d0, uint32_t d1,
               const void **out)
{
    const uint32_t shape[2] = {d0, d1};
    return ebq_blob_get(b, name, dtype, d1 ? 2u : 1u, shape, out, NULL);
}

/* Names like "l3.q.w": prefix + layer number + suffix, without snprintf. */
static const char *layer_name(char *buf, uint32_t layer, const char *suffix)
{
    size_t n = 0;
    buf[n++] = 'l';
    if (layer >= 10)
        buf[n++] = (char)('0' + layer / 10);
    buf[n++] = (char)('0' + layer % 10);
    buf[n++] = '.';
    const size_t sl = strlen(suffix);
    memcpy(buf + n, suffix, sl + 1);
    return buf;
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        const int rc_ = (expr);                                                                    \
        if (rc_ != EBQ_OK)                                                                         \
            return rc_;                                                                            \
    } while (0)

static int load_rq(const ebq_blob *b, char *buf, uint32_t layer, const char *m_name,
                   const char *sh_name, uint32_t count, ebq_rq_params *rq)
{
    TRY(get(b, layer_name(buf, layer, m_name), EBQ_DT_I32, count, 0, (const void **)&rq->m));
    TRY(get(b, layer_name(buf, layer, sh_name), EBQ_DT_I8, count, 0, (const void **)&rq->sh));
    for (uint32_t i = 0; i < count; i++) /* the shift range rq() is defined for */
        if (rq->sh[i] < -30 || rq->sh[i] > 31)
            return EBQ_ERR_BLOB_TENSOR;
    return EBQ_OK;
}

/* Is there a tensor called `name` (whatever its dtype and shape)? */
static int has(const ebq_blob *b, const char *name)
{
    for (uint32_t i = 0; i < b->n_tensors; i++) {
        ebq_tensor t;
        if (ebq_blob_tensor(b, i, &t) == EBQ_OK && strcmp(t.name, name) == 0)
            return 1;
    }
    return 0;
}

/* Biases within the quantizer's clip (+-2^30), so bias + dot product stays inside int32. */
static int check_bias(const int32_t *bias, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++)
        if (bias[i] < -(1 << 30) || bias[i] > (1 << 30))
            return EBQ_ERR_BLOB_TENSOR;
    return EBQ_OK;
}

static int load_layer(const ebq_blob *b, const ebq_model *m, uint32_t l, ebq_layer *w)
{
    char buf[32];
    const uint32_t d = m->dim;
    TRY(load_rq(b, buf, l, "norm.m", "norm.sh", d, &w->norm_rq));
    TRY(get(b, layer_name(buf, l, "q.w"), EBQ_DT_I8, d, d, (const void **)&w->q_w));
    TRY(get(b, layer_name(buf, l, "q.b"), EBQ_DT_I32, d, 0, (const void **)&w->q_b));
    TRY(load_rq(b, buf, l, "q.m", "q.sh", d, &w->q_rq));
    TRY(load_rq(b, buf, l, "sm.m", "sm.sh", 1, &w->sm_rq));
    TRY(get(b, layer_name(buf, l, "conv.w"), EBQ_DT_I8, d, m->kernel, (const void **)&w->conv_w));
    TRY(get(b, layer_name(buf, l, "conv.b"), EBQ_DT_I32, d, 0, (const void **)&w->conv_b));
    TRY(load_rq(b, buf, l, "conv.m", "conv.sh", d, &w->conv_rq));
    TRY(get(b, layer_name(buf, l, "silu"), EBQ_DT_I8, 256, 0, (const void **)&w->silu));
    TRY(get(b, layer_name(buf, l, "proj.w"), EBQ_DT_I8, d, d, (const void **)&w->proj_w));
    TRY(get(b, layer_name(buf, l, "proj.b"), EBQ_DT_I32, d, 0, (const void **)&w->proj_b));
    /* Spec 2: a layer with "ao.w" projects its attention context (then out.ma is per channel). */
    uint32_t na = 1;
    if (m->spec >= 2 && has(b, layer_name(buf, l, "ao.w"))) {
        TRY(get(b, layer_name(buf, l, "ao.w"), EBQ_DT_I8, d, d, (const void **)&w->ao_w));
        TRY(get(b, layer_name(buf, l, "ao.b"), EBQ_DT_I32, d, 0, (const void **)&w->ao_b));
        TRY(check_bias(w->ao_b, d));
        TRY(load_rq(b, buf, l, "ctx.m", "ctx.sh", 1, &w->ctx_rq));
        na = d;
    }
    TRY(load_rq(b, buf, l, "out.ma", "out.sha", na, &w->out_a));
    TRY(load_rq(b, buf, l, "out.mb", "out.shb", d, &w->out_b));
    return EBQ_OK;
}

static int load_dims(const ebq_blob *b, ebq_model *m)
{
    const int32_t *dims;
    TRY(get(b, "cfg.dims", EBQ_DT_I32, EBQ_DIMS_COUNT, 0, (const void **)&dims));
    for (uint32_t i = 0; i < EBQ_DIMS_COUNT; i++)
        if (dims[i] <= 0)
            return EBQ_ERR_BLOB_TENSOR;
    if ((uint32_t)dims[EBQ_DIMS_VERSION] != EBQ_SPEC_LEGACY &&
        (uint32_t)dims[EBQ_DIMS_VERSION] != EBQ_SPEC_VERSION)
        return EBQ_ERR_BLOB_VERSION;
    m->spec = (uint32_t)dims[EBQ_DIMS_VERSION];
    m->vocab_size = (uint32_t)dims[EBQ_DIMS_VOCAB];
    m->max_len = (uint32_t)dims[EBQ_DIMS_MAX_LEN];
    m->emb_dim = (uint32_t)dims[EBQ_DIMS_EMB];
    m->dim = (uint32_t)dims[EBQ_DIMS_DIM];
    m->n_layers = (uint32_t)dims[EBQ_DIMS_LAYERS];
    m->kernel = (uint32_t)dims[EBQ_DIMS_KERNEL];
    m->num_labels = (uint32_t)dims[EBQ_DIMS_LABELS];
    /* Limits the kernels' int32 accumulators and the uint16 ids are proven for. */
    if (m->n_layers > EBQ_MAX_LAYERS || m->dim > EBQ_MAX_DIM || m->dim % 4 != 0 ||
        m->vocab_size > 65536 || m->max_len > 4096 || 2 * m->emb_dim > m->dim || m->kernel > 1024)
        return EBQ_ERR_BLOB_TENSOR;
    return EBQ_OK;
}

static int load_all(ebq_model *m, const uint8_t *blob, size_t len)
{
    const ebq_blob *b = &m->blob;
    TRY(ebq_blob_parse(&m->blob, blob, len));
    TRY(load_dims(b, m));
    const uint32_t d = m->dim, e = m->emb_dim;
    TRY(get(b, "exp.hi", EBQ_DT_I16, 17, 0, (const void **)&m->exp_hi));
    TRY(get(b, "exp.lo", EBQ_DT_I16, 256, 0, (const void **)&m->exp_lo));
    TRY(get(b, "emb.tok", EBQ_DT_I8, m->vocab_size, e, (const void **)&m->tok));
    TRY(get(b, "emb.pos", EBQ_DT_I8, m->max_len, e, (const void **)&m->pos));
    TRY(get(b, "emb.tok_proj.w", EBQ_DT_I8, d, e, (const void **)&m->tok_proj_w));
    TRY(get(b, "emb.tok_proj.m", EBQ_DT_I32, d, 0, (const void **)&m->tok_proj_rq.m));
    TRY(get(b, "emb.tok_proj.sh", EBQ_DT_I8, d, 0, (const void **)&m->tok_proj_rq.sh));
    TRY(get(b, "emb.pos_proj.w", EBQ_DT_I8, d, e, (const void **)&m->pos_proj_w));
    TRY(get(b, "emb.pos_proj.m", EBQ_DT_I32, d, 0, (const void **)&m->pos_proj_rq.m));
    TRY(get(b, "emb.pos_proj.sh", EBQ_DT_I8, d, 0, (const void **)&m->pos_proj_rq.sh));
    if (m->spec >= 2) {
        TRY(get(b, "emb.seg.b", EBQ_DT_I32, d, 0, (const void **)&m->seg_b));
        TRY(check_bias(m->seg_b, d));
    }
    for (uint32_t i = 0; i < d; i++)
        if (m->tok_proj_rq.sh[i] < -30 || m->tok_proj_rq.sh[i] > 31 ||
            m->pos_proj_rq.sh[i] < -30 || m->pos_proj_rq.sh[i] > 31)
            return EBQ_ERR_BLOB_TENSOR;
    for (uint32_t k = 0; k <= 16; k++) /* the exp tables' proven range */
        if (m->exp_hi[k] < 0 || m->exp_hi[k] > 16384)
            return EBQ_ERR_BLOB_TENSOR;
    for (uint32_t r = 0; r < 256; r++)
        if (m->exp_lo[r] < 0 || m->exp_lo[r] > 16384)
            return EBQ_ERR_BLOB_TENSOR;
    if (m->exp_hi[0] != 16384 || m->exp_lo[0] != 16384) /* e(max key) = 1 keeps E >= 2^14 */
        return EBQ_ERR_BLOB_TENSOR;
    for (uint32_t l = 0; l < m->n_layers; l++)
        TRY(load_layer(b, m, l, &m->layers[l]));
    {
        /* A layer beyond n_layers means cfg.dims and the tensors disagree: refuse the blob. */
        char buf[32];
        if (ebq_blob_get(b, layer_name(buf, m->n_layers, "norm.m"), EBQ_DT_I32, 1, NULL, NULL,
                         NULL) == EBQ_OK)
            return EBQ_ERR_BLOB_TENSOR;
    }
    TRY(get(b, "cls.w", EBQ_DT_I8, m->num_labels, d, (const void **)&m->cls_w));
    TRY(get(b, "cls.b", EBQ_DT_I32, m->num_labels, 0, (const void **)&m->cls_b));
    TRY(ebq_vocab_load(&m->vocab, b));
    if (m->vocab.vocab_size != m->vocab_size) /* the tokenizer must not emit ids we reject */
        return EBQ_ERR_BLOB_TENSOR;
    return EBQ_OK;
}

int ebq_model_load(ebq_model *m, const uint8_t *blob, size_t len)
{
    if (m == NULL || blob == NULL)
        return EBQ_ERR_ARG;
    memset(m, 0, sizeof(*m));
    const int rc = load_all(m, blob, len);
    if (rc != EBQ_OK)
        memset(m, 0, sizeof(*m)); /* never leave a half-loaded model behind */
    return rc;
}

uint32_t ebq_model_num_labels(const ebq_model *m) { return m ? m->num_labels : 0; }
uint32_t ebq_model_max_len(const ebq_model *m) { return m ? m->max_len : 0; }
uint32_t ebq_model_num_layers(const ebq_model *m) { return m ? m->n_layers : 0; }
uint32_t ebq_model_vocab_size(const ebq_model *m) { return m ? m->vocab_size : 0; }
uint32_t ebq_model_id(const ebq_model *m) { return m ? m->blob.model_id : 0; }

int ebq_tokenize(const ebq_model *m, const uint8_t *text, size_t len, uint16_t *ids,
                 uint32_t max_ids, uint32_t *n_ids)
{
    if (m == NULL || ids == NULL || n_ids == NULL || max_ids == 0 || m->max_len == 0)
        return EBQ_ERR_ARG;
    /* Truncate to the model's max_len: the engine rejects longer inputs. */
    const uint32_t cap = max_ids < m->max_len ? max_ids : m->max_len;
    return ebq_vocab_tokenize(&m->vocab, text, len, ids, cap, n_ids);
}

const char *ebq_strerror(int status)
{
    switch (status) {
    case EBQ_OK: return "ok";
    case EBQ_ERR_BLOB_TRUNCATED: return "blob truncated";
    case EBQ_ERR_BLOB_MAGIC: return "not a model blob (bad magic)";
    case EBQ_ERR_BLOB_VERSION: return "unsupported blob or spec version";
    case EBQ_ERR_BLOB_CRC: return "blob checksum mismatch";
    case EBQ_ERR_BLOB_TENSOR: return "blob tensor missing or wrong dtype/shape";
    case EBQ_ERR_BAD_UTF8: return "invalid UTF-8";
    case EBQ_ERR_TOO_LONG: return "input too long";
    case EBQ_ERR_BAD_IDS: return "token id out of vocabulary";
    case EBQ_ERR_EMPTY: return "no tokens";
    case EBQ_ERR_NO_MEMORY: return "arena too small";
    case EBQ_ERR_ARG: return "bad argument";
    default: return "unknown status";
    }
}
