/*
 * tokenizer.c - WordPiece exactly as docs/tokenizer.md (and hil/quant/tokenizer.py) says.
 *
 * Steps: validate the whole input as strict UTF-8; then walk it once: skip ASCII whitespace,
 * take each ASCII punctuation byte as a word, take any other run of bytes as a word; a word of
 * more than max_chars code points is [UNK]; otherwise split it greedily into the longest
 * vocabulary pieces (word-initial table first, then the "##" table), and if some position has
 * no piece the whole word is [UNK]. The longest match is found by narrowing the byte-sorted
 * table one input byte at a time (two binary searches per byte), remembering the last depth at
 * which an entry ended exactly on a code-point boundary.
 */
#include "ebq_tokenizer.h"

enum { CFG_VOCAB, CFG_UNK, CFG_CLS, CFG_PAD, CFG_MAXCH, CFG_NINIT, CFG_N, CFG_LEN };

static int is_space(uint8_t c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0D); /* \t \n \v \f \r */
}

static int is_punct(uint8_t c)
{
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
}

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

static uint32_t ent_start(const ebq_vocab *v, uint32_t i)
{
    return v->off16 != NULL ? v->off16[i] : v->off32[i];
}

static uint32_t ent_len(const ebq_vocab *v, uint32_t i)
{
    return ent_start(v, i + 1) - ent_start(v, i);
}

/* Sort key of entry i at depth d within a range sharing a d-byte prefix: -1 if the entry ends
 * there (it sorts first), else its byte d. Non-decreasing over such a range. */
static int32_t key(const ebq_vocab *v, uint32_t i, uint32_t d)
{
    return ent_len(v, i) > d ? (int32_t)v->bytes[ent_start(v, i) + d] : -1;
}

/* First i in [lo, hi) with key(i, d) > k (so k = c - 1 gives the first with key >= c). */
static uint32_t first_above(const ebq_vocab *v, uint32_t lo, uint32_t hi, uint32_t d, int32_t k)
{
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (key(v, mid, d) > k)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Longest entry of [lo, hi) equal to lower(text[p..p+len)) with p+len <= end on a code-point
 * boundary; returns len (0: none) and its id in *id. */
static uint32_t longest_match(const ebq_vocab *v, uint32_t lo, uint32_t hi, const uint8_t *text,
                              size_t p, size_t end, uint16_t *id)
{
    uint32_t best = 0;
    for (uint32_t d = 0;; d++) {
        if (d > 0 && lo < hi && ent_len(v, lo) == d && (p + d == end || (text[p + d] & 0xC0u) != 0x80u)) {
            best = d;
            *id = v->ids[lo];
        }
        if (p + d == end)
            break;
        int32_t c = lower(text[p + d]);
        uint32_t nlo = first_above(v, lo, hi, d, c - 1);
        uint32_t nhi = first_above(v, nlo, hi, d, c);
        if (nlo == nhi)
            break;
        lo = nlo;
        hi = nhi;
    }
    return best;
}

/* memcmp-order comparison of entries i and j: <0, 0, >0. */
static int ent_cmp(const ebq_vocab *v, uint32_t i, uint32_t j)
{
    uint32_t li = ent_len(v, i), lj = ent_len(v, j);
    const uint8_t *a = v->bytes + ent_start(v, i), *b = v->bytes + ent_start(v, j);
    for (uint32_t k = 0; k < li && k < lj; k++)
        if (a[k] != b[k])
            return a[k] < b[k] ? -1 : 1;
    return li < lj ? -1 : (li > lj ? 1 : 0);
}

int ebq_vocab_load(ebq_vocab *v, const ebq_blob *b)
{
    if (v == NULL || b == NULL)
        return EBQ_ERR_ARG;
    ebq_vocab z = {0};
    *v = z;
    const void *cfg_p, *bytes_p, *ids_p, *off_p;
    uint32_t cfg_shape = CFG_LEN, shape[4];
    if (ebq_blob_get(b, "tok.cfg", EBQ_DT_I32, 1, &cfg_shape, &cfg_p, NULL) != EBQ_OK)
        return EBQ_ERR_BLOB_TENSOR;
    const int32_t *cfg = cfg_p;
    if (cfg[CFG_VOCAB] < 1 || cfg[CFG_VOCAB] > 65536 || cfg[CFG_MAXCH] < 1 || cfg[CFG_N] < 0 ||
        cfg[CFG_NINIT] < 0 || cfg[CFG_NINIT] > cfg[CFG_N])
        return EBQ_ERR_BLOB_TENSOR;
    for (int k = CFG_UNK; k <= CFG_PAD; k++)
        if (cfg[k] < 0 || cfg[k] >= cfg[CFG_VOCAB])
            return EBQ_ERR_BLOB_TENSOR;
    uint32_t n = (uint32_t)cfg[CFG_N], n_off = n + 1;
    if (ebq_blob_get(b, "tok.bytes", EBQ_DT_U8, 1, NULL, &bytes_p, shape) != EBQ_OK ||
        ebq_blob_get(b, "tok.ids", EBQ_DT_U16, 1, &n, &ids_p, NULL) != EBQ_OK)
        return EBQ_ERR_BLOB_TENSOR;
    uint32_t n_bytes = shape[0];
    if (ebq_blob_get(b, "tok.offsets", EBQ_DT_U16, 1, &n_off, &off_p, NULL) == EBQ_OK)
        v->off16 = off_p;
    else if (ebq_blob_get(b, "tok.offsets", EBQ_DT_U32, 1, &n_off, &off_p, NULL) == EBQ_OK)
        v->off32 = off_p;
    else
        return EBQ_ERR_BLOB_TENSOR;
    v->bytes = bytes_p;
    v->ids = ids_p;
    v->n_init = (uint32_t)cfg[CFG_NINIT];
    v->n_entries = n;
    v->vocab_size = (uint32_t)cfg[CFG_VOCAB];
    v->unk = (uint16_t)cfg[CFG_UNK];
    v->cls = (uint16_t)cfg[CFG_CLS];
    v->pad = (uint16_t)cfg[CFG_PAD];
    v->max_chars = (uint32_t)cfg[CFG_MAXCH];
    /* Offsets first (every entry non-empty and inside tok.bytes), then, with all of them
     * known sane, both tables strictly sorted: the binary searches rely on it. */
    int ok = ent_start(v, 0) == 0 && ent_start(v, n) == n_bytes;
    for (uint32_t i = 0; ok && i < n; i++)
        ok = ent_start(v, i + 1) > ent_start(v, i) && v->ids[i] < v->vocab_size;
    for (uint32_t i = 1; ok && i < n; i++)
        ok = i == v->n_init || ent_cmp(v, i - 1, i) < 0;
    if (!ok) {
        *v = z;
        return EBQ_ERR_BLOB_TENSOR;
    }
    return EBQ_OK;
}

int ebq_utf8_check(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        uint32_t need;
        uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the first continuation byte */
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* no overlong 3-byte forms */
            else if (c == 0xED)
                hi = 0x9F; /* no surrogates U+D800..U+DFFF */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90; /* no overlong 4-byte forms */
            else if (c == 0xF4)
                hi = 0x8F; /* nothing above U+10FFFF */
        } else {
            return EBQ_ERR_BAD_UTF8; /* continuation byte, C0/C1 overlong lead, F5..FF */
        }
        if (len - i <= need)
            return EBQ_ERR_BAD_UTF8;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return EBQ_ERR_BAD_UTF8;
        for (uint32_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0u) != 0x80u)
                return EBQ_ERR_BAD_UTF8;
        i += need + 1;
    }
    return EBQ_OK;
}

int ebq_vocab_tokenize(const ebq_vocab *v, const uint8_t *text, size_t len, uint16_t *ids,
                       uint32_t max_ids, uint32_t *n_ids)
{
    if (n_ids != NULL)
        *n_ids = 0;
    if (v == NULL || v->ids == NULL || ids == NULL || n_ids == NULL || max_ids == 0 ||
        (text == NULL && len > 0))
        return EBQ_ERR_ARG;
    if (ebq_utf8_check(text, len) != EBQ_OK)
        return EBQ_ERR_BAD_UTF8;
    uint32_t n = 0;
    ids[n++] = v->cls;
    size_t i = 0;
    while (i < len && n < max_ids) {
        if (is_space(text[i])) {
            i++;
            continue;
        }
        size_t start = i, end = i + 1;
        uint32_t chars = 1;
        if (!is_punct(text[i])) {
            while (end < len && !is_space(text[end]) && !is_punct(text[end])) {
                chars += (text[end] & 0xC0u) != 0x80u;
                end++;
            }
        }
        i = end;
        uint32_t word_n = n; /* ids before this word: the rollback point for [UNK] */
        int unk = chars > v->max_chars;
        for (size_t p = start; !unk && p < end;) {
            uint16_t id = 0;
            uint32_t m = p == start ? longest_match(v, 0, v->n_init, text, p, end, &id)
                                    : longest_match(v, v->n_init, v->n_entries, text, p, end, &id);
            if (m == 0)
                unk = 1;
            else if (n < max_ids) /* past max_ids keep matching: a miss still means [UNK] */
                ids[n++] = id;
            p += m;
        }
        if (unk) {
            n = word_n;
            ids[n++] = v->unk;
        }
    }
    *n_ids = n;
    return EBQ_OK;
}
