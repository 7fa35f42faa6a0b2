/*
 * blob_tool.c - host test driver for blob.c, run by tests/test_blob.py under ASan/UBSan.
 *
 * Reads records from stdin: u32 little-endian length, then that many blob bytes. Each record is
 * copied into a heap buffer of exactly its length (so the sanitizer catches any read past it),
 * parsed, and reported on stdout as text lines:
 *   B <status> <model_id> <n_tensors> <total_len>
 *   T <name> <dtype> <ndim> <s0> <s1> <s2> <s3> <offset> <nbytes> <get_status> <hex bytes|->
 *   E
 * `get_status` is ebq_blob_get's result for the tensor's own dtype/shape, after checking that a
 * wrong dtype, a wrong ndim and a wrong extent are refused (it prints a negative code otherwise).
 * argv[1] == "misalign" places each blob at an odd address (expect EBQ_ERR_ARG).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebq_blob.h"

static int read_exact(uint8_t *p, size_t n)
{
    return fread(p, 1, n, stdin) == n;
}

/* ebq_blob_get must accept the tensor as described and refuse every mismatch. */
static int check_get(const ebq_blob *b, const ebq_tensor *t)
{
    const void *p = NULL;
    uint32_t shape[4] = {0, 0, 0, 0}, got[4] = {9, 9, 9, 9};
    for (uint32_t d = 0; d < 4; d++)
        shape[d] = t->shape[d];
    int rc = ebq_blob_get(b, t->name, (int)t->dtype, t->ndim, shape, &p, got);
    if (rc != EBQ_OK)
        return rc;
    if (p != t->data || memcmp(got, t->shape, sizeof got) != 0)
        return -100;
    if (ebq_blob_get(b, t->name, (int)t->dtype % 6 + 1, t->ndim, shape, NULL, NULL) !=
        EBQ_ERR_BLOB_TENSOR)
        return -101;
    if (t->ndim < 4 &&
        ebq_blob_get(b, t->name, (int)t->dtype, t->ndim + 1, NULL, NULL, NULL) !=
            EBQ_ERR_BLOB_TENSOR)
        return -102;
    if (t->ndim > 0) {
        shape[0] += 1;
        if (ebq_blob_get(b, t->name, (int)t->dtype, t->ndim, shape, NULL, NULL) !=
            EBQ_ERR_BLOB_TENSOR)
            return -103;
        shape[0] = EBQ_DIM_ANY;
        if (ebq_blob_get(b, t->name, (int)t->dtype, t->ndim, shape, NULL, NULL) != EBQ_OK)
            return -104;
    }
    return EBQ_OK;
}

int main(int argc, char **argv)
{
    int misalign = argc > 1 && strcmp(argv[1], "misalign") == 0;
    uint8_t hdr[4];
    while (read_exact(hdr, 4)) {
        size_t len = (size_t)hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 |
                     (size_t)hdr[3] << 24;
        uint8_t *mem = malloc(len + (size_t)misalign + 1);
        if (mem == NULL || !read_exact(mem + misalign, len))
            return 2;
        uint8_t *copy = mem + misalign;
        uint8_t *exact = misalign ? copy : realloc(mem, len ? len : 1);
        if (exact == NULL)
            return 2;
        if (!misalign)
            mem = exact;
        ebq_blob b;
        int rc = ebq_blob_parse(&b, exact, len);
        printf("B %d %lu %lu %lu\n", rc, (unsigned long)b.model_id, (unsigned long)b.n_tensors,
               (unsigned long)b.len);
        for (uint32_t i = 0; rc == EBQ_OK && i < b.n_tensors; i++) {
            ebq_tensor t;
            if (ebq_blob_tensor(&b, i, &t) != EBQ_OK)
                return 3;
            printf("T %s %lu %lu %lu %lu %lu %lu %lu %lu %d ", t.name, (unsigned long)t.dtype,
                   (unsigned long)t.ndim, (unsigned long)t.shape[0], (unsigned long)t.shape[1],
                   (unsigned long)t.shape[2], (unsigned long)t.shape[3],
                   (unsigned long)((const uint8_t *)t.data - b.data), (unsigned long)t.nbytes,
                   check_get(&b, &t));
            const uint8_t *p = t.data;
            for (uint32_t k = 0; k < t.nbytes; k++)
                printf("%02x", p[k]);
            printf(t.nbytes ? "\n" : "-\n");
        }
        if (rc == EBQ_OK && (ebq_blob_get(&b, "no.such.tensor", EBQ_DT_U8, 1, NULL, NULL,
                                          NULL) != EBQ_ERR_BLOB_TENSOR ||
                             ebq_blob_tensor(&b, b.n_tensors, &(ebq_tensor){0}) != EBQ_ERR_ARG))
            return 4;
        printf("E\n");
        fflush(stdout);
        free(mem);
    }
    return 0;
}
