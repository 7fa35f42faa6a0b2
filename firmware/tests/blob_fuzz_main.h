/*
 * blob_fuzz_main.h - a plain main() for the libFuzzer entries, so they run without libFuzzer too
 * (host gcc + ASan/UBSan, driven by tests/test_blob_fuzz.py). Built only with
 * -DEBQ_FUZZ_STANDALONE; under clang -fsanitize=fuzzer libFuzzer supplies main().
 *
 * stdin: records of u32 little-endian length + bytes; each is copied into a heap buffer of
 * exactly that length and passed to LLVMFuzzerTestOneInput. Prints "fuzz ok <n>" at the end.
 */
#ifndef EBQ_BLOB_FUZZ_MAIN_H
#define EBQ_BLOB_FUZZ_MAIN_H
#ifdef EBQ_FUZZ_STANDALONE
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int main(int argc, char **argv)
{
    uint8_t h[4];
    unsigned long n = 0;
    LLVMFuzzerInitialize(&argc, &argv);
    while (fread(h, 1, 4, stdin) == 4) {
        size_t len = (size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16 | (size_t)h[3] << 24;
        uint8_t *p = malloc(len ? len : 1);
        if (p == NULL || fread(p, 1, len, stdin) != len)
            return 2;
        LLVMFuzzerTestOneInput(p, len);
        free(p);
        n++;
    }
    printf("fuzz ok %lu\n", n);
    return 0;
}
#endif
#endif
