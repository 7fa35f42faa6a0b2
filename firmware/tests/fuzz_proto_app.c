/*
 * fuzz_proto_app.c - libFuzzer entry for the whole request path of the firmware: the fuzzer's
 * bytes are the UART, app/main.c (included as is, its main() renamed) parses, decodes, tokenizes
 * and runs the real engine on the shipped blob, and a port stub below collects what the device
 * says.
 *
 * Why include main.c: the request handling is static in the app and drives the UART through
 * port.h only, so the app's own code runs unchanged with a port that reads from the fuzz input
 * and checks the output instead of a UART. Invariants checked for any input:
 *   - every line the device writes that starts with `$` is a frame with a valid CRC;
 *   - every complete input frame (and every framing error) gets exactly one answer frame;
 *   - after the fuzz bytes, a cut-off frame and a good HELLO still get a good HELLO answer
 *     (a bad byte sequence never spoils a later good request).
 * RESET longjmps back into the harness (the device would reboot: its answer is `OK`).
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ifirmware/include \
 *       -DEBQ_ARENA_BYTES=1048576 -DEBQ_DSP=0 '-DEBQ_MODEL_FILE="/abs/model.bin"' \
 *       firmware/src/[!m]*.c firmware/src/model.c firmware/src/ops/[!d]*.c \
 *       firmware/app/model_blob.S firmware/tests/fuzz_proto_app.c
 * (benchmarks/reliability_fuzz.py builds it; tests/test_fuzz_proto.py builds the standalone
 * gcc variant with -DEBQ_FUZZ_STANDALONE and replays firmware/tests/corpus/fuzz_proto_app/.)
 */
#define main ebq_app_main_unused
#include "../app/main.c"
#undef main

#include <setjmp.h>
#include <stdlib.h>

#include "blob_fuzz_main.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static jmp_buf g_reset;
static uint64_t g_clock;
static uint8_t g_line[65536]; /* one output line; RESULT frames can exceed maxframe */
static size_t g_line_len;
static int g_line_over;
static unsigned long g_frames_out; /* answer frames (valid CRC) written by the device */
static int g_last_hello;           /* the last answer frame was a HELLO */

static void out_line(void)
{
    if (g_line_over || g_line_len == 0 || g_line[0] != '$') return;
    size_t n = g_line_len;
    if (n > 1 && g_line[n - 1] == '\r') n--;
    CHECK(n >= 10 && g_line[n - 9] == '*');
    uint32_t want = ebq_proto_crc32(0, g_line + 1, n - 10);
    uint32_t got = 0;
    for (size_t i = n - 8; i < n; i++) {
        uint8_t c = g_line[i];
        CHECK((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'));
        got = (got << 4) | (uint32_t)(c <= '9' ? c - '0' : c - 'A' + 10);
    }
    CHECK(got == want);
    g_frames_out++;
    const uint8_t *sp = memchr(g_line, ' ', n);
    g_last_hello = sp != NULL && (size_t)(g_line + n - sp) > 6 && memcmp(sp + 1, "HELLO ", 6) == 0;
}

void port_uart_write(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\n') {
            out_line();
            g_line_len = 0;
            g_line_over = 0;
        } else if (g_line_len < sizeof g_line) {
            g_line[g_line_len++] = buf[i];
        } else {
            g_line_over = 1; /* the host would report it too long; the device must not do that */
            CHECK(0);
        }
    }
}

void port_init(void) {}
const char *port_board_name(void) { return "native"; }
int port_uart_read_byte(void) { return -1; }
void port_wait_rx(void) {}
uint32_t port_uart_overruns(void) { return 0; }
uint64_t port_cycles(void) { return g_clock += 1000; }
const char *port_cycles_unit(void) { return "ns"; }
uint32_t port_clock_hz(void) { return 1000000000u; }
void port_stack_paint(void) {}
size_t port_stack_peak(void) { return 0; }
size_t port_flash_used(void) { return 0; }
size_t port_ram_used(void) { return 0; }
void port_test_fault(void) { abort(); }
void port_reset(void) { longjmp(g_reset, 1); }

/* Feeds bytes as the UART would; returns how many events (answers owed) they completed. */
static unsigned long feed(const uint8_t *data, size_t size)
{
    unsigned long events = 0;
    for (size_t i = 0; i < size; i++) {
        ebq_event ev;
        if (ebq_parser_feed(&g.parser, data[i], &ev) != EBQ_EV_NONE) {
            events++;
            handle(&ev);
        }
    }
    return events;
}

static int g_loaded;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static volatile size_t consumed;
    static volatile unsigned long owed;
    if (!g_loaded) { /* the blob walk runs once; it is not what this target fuzzes */
        load_model();
        CHECK(g.model_ok);
        g_loaded = 1;
    }
    ebq_parser_init(&g.parser);
    g.requests = g.errors = 0;
    g_line_len = 0;
    g_line_over = 0;
    g_frames_out = 0;
    consumed = 0;
    owed = 0;
    if (setjmp(g_reset) != 0) { /* RESET: its OK was the answer; the "rebooted" device goes on */
        owed = g_frames_out;
        ebq_parser_init(&g.parser);
        consumed++;
    }
    for (size_t i = consumed; i < size; i++) {
        ebq_event ev;
        consumed = i;
        if (ebq_parser_feed(&g.parser, data[i], &ev) != EBQ_EV_NONE) {
            owed++;
            handle(&ev);
            CHECK(g_frames_out == owed); /* exactly one answer per event */
        }
    }
    /* Afterwards: a newline ends whatever frame is open, then a good HELLO gets a HELLO. */
    static const uint8_t good[] = "\n$7 HELLO*";
    char crc[10];
    uint32_t c = ebq_proto_crc32(0, (const uint8_t *)"7 HELLO", 7);
    for (int i = 0; i < 8; i++) crc[i] = "0123456789ABCDEF"[(c >> (28 - 4 * i)) & 15u];
    crc[8] = '\n';
    unsigned long before = g_frames_out;
    unsigned long ev = feed(good, sizeof good - 1);
    ev += feed((const uint8_t *)crc, 9);
    CHECK(ev >= 1 && g_frames_out == before + ev && g_last_hello);
    return 0;
}
