/*
 * fuzz_tokenizer.c - libFuzzer entry: any bytes as tokenizer input. Byte 0 picks max_ids
 * (1..256), the rest is the text. Checks the invariants the device relies on: status is OK or
 * BAD_UTF8, ids[0] = [CLS], 1 <= n <= max_ids, every id < vocab_size; never out of bounds.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ifirmware/include \
 *       firmware/src/blob.c firmware/src/tokenizer.c firmware/tests/fuzz_tokenizer.c
 * The vocabulary is the blob named by $EBQ_FUZZ_VOCAB (e.g. a shipped model blob); without it,
 * a small built-in vocabulary (below) is used.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ebq_tokenizer.h"
#include "blob_fuzz_main.h"

/* Built-in vocabulary: word-initial "a" "ab" "b" "un" "\xc3\xa9"(e-acute) "\xe6\x97\xa5",
 * continuation (## removed) "a" "b" "ble" "c" "\xc3\xa9". Sorted by bytes within each group. */
static const uint8_t tiny_bytes[] = "aabbun\xc3\xa9\xe6\x97\xa5"
                                    "abblec\xc3\xa9";
static const uint16_t tiny_off[] = {0, 1, 3, 4, 6, 8, 11, 12, 13, 16, 17, 19};
static const uint16_t tiny_ids[] = {5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static ebq_vocab vocab;
static uint8_t *vocab_blob;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *path = getenv("EBQ_FUZZ_VOCAB");
    if (path != NULL) {
        FILE *f = fopen(path, "rb");
        long size = 0;
        ebq_blob b;
        if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) <= 0 ||
            fseek(f, 0, SEEK_SET) != 0 || (vocab_blob = malloc((size_t)size)) == NULL ||
            fread(vocab_blob, 1, (size_t)size, f) != (size_t)size ||
            ebq_blob_parse(&b, vocab_blob, (size_t)size) != EBQ_OK ||
            ebq_vocab_load(&vocab, &b) != EBQ_OK) {
            fprintf(stderr, "fuzz_tokenizer: cannot load vocabulary from %s\n", path);
            exit(2);
        }
        fclose(f);
        return 0;
    }
    vocab.bytes = tiny_bytes;
    vocab.off16 = tiny_off;
    vocab.ids = tiny_ids;
    vocab.n_init = 6;
    vocab.n_entries = 11;
    vocab.vocab_size = 16;
    vocab.unk = 1;
    vocab.cls = 2;
    vocab.pad = 0;
    vocab.max_chars = 100;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint16_t ids[256];
    uint32_t max_ids = size > 0 ? (uint32_t)data[0] + 1u : 256u, n = 0;
    const uint8_t *text = size > 0 ? data + 1 : data;
    size_t len = size > 0 ? size - 1 : 0;
    int rc = ebq_vocab_tokenize(&vocab, text, len, ids, max_ids, &n);
    int valid = ebq_utf8_check(text, len) == EBQ_OK;
    if (valid ? (rc != EBQ_OK || n < 1 || n > max_ids || ids[0] != vocab.cls)
              : (rc != EBQ_ERR_BAD_UTF8 || n != 0))
        __builtin_trap();
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] >= vocab.vocab_size)
            __builtin_trap();
    return 0;
}
