/*
 * engine_main.c - host test driver of the engine: loads a blob file, then reads token-id
 * sequences from stdin, one per line (decimal ids separated by spaces), and prints one line each:
 *     OK <arena peak bytes> <logit 0> <logit 1> ...
 *     ERR <status> <ebq_strerror(status)>
 * A load failure prints "LOAD <status> <message>" and exits 2. Built by tests/test_engine*.py with
 * -fsanitize=address,undefined; the logits must equal hil/quant/reference.py bit for bit.
 * An empty line is the empty sequence (n = 0). A line "ARENA <bytes>" sets the arena size used for
 * the following lines (to test EBQ_ERR_NO_MEMORY); the default is the whole static buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ebq.h"
#include "ebq_model.h"

#define MAX_IDS 8192
#define ARENA_MAX (4u << 20)

static uint8_t g_arena[ARENA_MAX] __attribute__((aligned(8)));
static uint16_t g_ids[MAX_IDS];
static char g_line[MAX_IDS * 8];

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    /* 8-aligned copy: the blob reader needs an aligned start. */
    uint8_t *buf = aligned_alloc(8, ((size_t)n + 7) / 8 * 8 + 8);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.bin < ids.txt\n", argv[0]);
        return 2;
    }
    size_t len = 0;
    uint8_t *blob = read_file(argv[1], &len);
    if (blob == NULL) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    static ebq_model model;
    const int rc = ebq_model_load(&model, blob, len);
    if (rc != EBQ_OK) {
        printf("LOAD %d %s\n", rc, ebq_strerror(rc));
        free(blob);
        return 2;
    }
    size_t arena_size = ARENA_MAX;
    int32_t logits[1024];
    while (fgets(g_line, sizeof(g_line), stdin) != NULL) {
        if (strncmp(g_line, "ARENA ", 6) == 0) {
            arena_size = strtoul(g_line + 6, NULL, 10);
            if (arena_size > ARENA_MAX)
                arena_size = ARENA_MAX;
            continue;
        }
        uint32_t n = 0;
        char *p = g_line;
        int bad = 0;
        for (;;) {
            char *end;
            const long v = strtol(p, &end, 10);
            if (end == p)
                break;
            if (n >= MAX_IDS) {
                bad = 1;
                break;
            }
            /* ids >= 65536 cannot be uint16: mark them as the largest id (out of vocab). */
            g_ids[n++] = (v < 0 || v > 65535) ? 65535 : (uint16_t)v;
            p = end;
        }
        if (bad) {
            printf("ERR %d %s\n", EBQ_ERR_TOO_LONG, ebq_strerror(EBQ_ERR_TOO_LONG));
            continue;
        }
        ebq_arena arena;
        ebq_arena_init(&arena, g_arena, arena_size);
        const int st = ebq_forward(&model, &arena, g_ids, n, logits, NULL);
        if (st != EBQ_OK) {
            printf("ERR %d %s\n", st, ebq_strerror(st));
            continue;
        }
        if (arena.peak != ebq_arena_bytes(&model, n) || arena.used != 0) {
            printf("ERR 99 arena peak %zu != ebq_arena_bytes %zu\n", arena.peak,
                   ebq_arena_bytes(&model, n));
            continue;
        }
        printf("OK %zu", arena.peak);
        for (uint32_t i = 0; i < ebq_model_num_labels(&model); i++)
            printf(" %ld", (long)logits[i]);
        printf("\n");
    }
    free(blob);
    return 0;
}
