/*
 * fuzz_blob.c - libFuzzer entry: any bytes as a model blob. Parses, walks and looks up every
 * tensor, loads the vocabulary if there is one and tokenizes a few fixed texts with it. Must
 * never crash, hang or read out of bounds (ASan), whatever the table or tok.* tensors claim.
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ifirmware/include \
 *       firmware/src/blob.c firmware/src/tokenizer.c firmware/tests/fuzz_blob.c -o fuzz_blob
 * Seeds: blobs from hil.quant.blob.write_blob (one holding vocab_tensors is the best seed).
 * A CRC would stop almost every mutation at the checksum, so each input is also tried with its
 * CRC re-stamped: then mutations reach the table and vocabulary checks.
 */
#include <string.h>

#include "ebq_tokenizer.h"
#include "blob_fuzz_main.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static const char *const texts[] = {"Hello, World! don't", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac",
                                    "", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa x"};

static void exercise(const uint8_t *data, size_t size)
{
    ebq_blob b;
    if (ebq_blob_parse(&b, data, size) != EBQ_OK)
        return;
    for (uint32_t i = 0; i < b.n_tensors; i++) {
        ebq_tensor t;
        const void *p;
        uint32_t shape[4];
        if (ebq_blob_tensor(&b, i, &t) != EBQ_OK ||
            ebq_blob_get(&b, t.name, (int)t.dtype, t.ndim, t.shape, &p, shape) != EBQ_OK ||
            p != t.data)
            __builtin_trap();
        const volatile uint8_t *q = t.data; /* touch every byte the table promises */
        for (uint32_t k = 0; k < t.nbytes; k++)
            (void)q[k];
    }
    ebq_vocab v;
    if (ebq_vocab_load(&v, &b) != EBQ_OK)
        return;
    uint16_t ids[64];
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        uint32_t n = 0;
        int rc = ebq_vocab_tokenize(&v, (const uint8_t *)texts[k], strlen(texts[k]), ids, 64, &n);
        if (rc != EBQ_OK || n < 1 || n > 64)
            __builtin_trap();
        for (uint32_t j = 0; j < n; j++)
            if (ids[j] >= v.vocab_size)
                __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* As given (exercises header, length and CRC checks)... */
    uint8_t *copy = NULL;
    if (size >= 16 && size <= (1u << 20)) {
        /* ...and with its CRC re-stamped, so mutations reach the table and the vocabulary. */
        static uint8_t buf[(1u << 20) + 4] __attribute__((aligned(8)));
        memcpy(buf, data, size);
        uint32_t total = (uint32_t)buf[8] | (uint32_t)buf[9] << 8 | (uint32_t)buf[10] << 16 |
                         (uint32_t)buf[11] << 24;
        if (total >= 16 && total <= size) {
            uint32_t crc = ebq_crc32(0, buf + 16, total - 16);
            buf[12] = (uint8_t)crc;
            buf[13] = (uint8_t)(crc >> 8);
            buf[14] = (uint8_t)(crc >> 16);
            buf[15] = (uint8_t)(crc >> 24);
            copy = buf;
        }
    }
    exercise(data, size);
    if (copy != NULL)
        exercise(copy, size);
    return 0;
}
