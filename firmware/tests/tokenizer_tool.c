/*
 * tokenizer_tool.c - host test driver for tokenizer.c, run by tests/test_c_tokenizer.py under
 * ASan/UBSan. argv[1] is a model blob holding the tok.* tensors.
 *
 * stdout (binary, little-endian): i32 status of ebq_blob_parse + ebq_vocab_load, then per input
 * record: i32 status, u32 n, n x u16 ids.
 * stdin: records of u32 max_ids, u32 len, len bytes of text. The text and the id buffer are
 * heap copies of exactly their size, so the sanitizer sees any out-of-bounds access.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebq_tokenizer.h"

static int read_exact(void *p, size_t n)
{
    return fread(p, 1, n, stdin) == n;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint32_t x)
{
    uint8_t b[4] = {(uint8_t)x, (uint8_t)(x >> 8), (uint8_t)(x >> 16), (uint8_t)(x >> 24)};
    fwrite(b, 1, 4, stdout);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL)
        return 2;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *blob_mem = malloc(size > 0 ? (size_t)size : 1);
    if (blob_mem == NULL || fread(blob_mem, 1, (size_t)size, f) != (size_t)size)
        return 2;
    fclose(f);
    ebq_blob blob;
    ebq_vocab vocab;
    int rc = ebq_blob_parse(&blob, blob_mem, (size_t)size);
    if (rc == EBQ_OK)
        rc = ebq_vocab_load(&vocab, &blob);
    put32((uint32_t)rc);
    fflush(stdout);
    if (rc != EBQ_OK) {
        free(blob_mem);
        return 0;
    }
    uint8_t hdr[8];
    while (read_exact(hdr, 8)) {
        uint32_t max_ids = le32(hdr), len = le32(hdr + 4);
        uint8_t *text = malloc(len ? len : 1);
        uint16_t *ids = malloc(max_ids ? (size_t)max_ids * 2 : 1);
        if (text == NULL || ids == NULL || !read_exact(text, len))
            return 2;
        uint32_t n = 12345;
        rc = ebq_vocab_tokenize(&vocab, len ? text : NULL, len, ids, max_ids, &n);
        put32((uint32_t)rc);
        put32(n);
        for (uint32_t i = 0; i < n; i++) {
            uint8_t b[2] = {(uint8_t)ids[i], (uint8_t)(ids[i] >> 8)};
            fwrite(b, 1, 2, stdout);
        }
        free(text);
        free(ids);
    }
    fflush(stdout);
    free(blob_mem);
    return 0;
}
