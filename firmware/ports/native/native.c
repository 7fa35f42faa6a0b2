/*
 * native.c - the `native` board: the firmware as a host process whose UART is stdin/stdout
 * (the host side hands it the slave end of a pty, like Zephyr's native_sim). Time is the host's
 * monotonic clock in ns. Used for fast tests, sanitizers (FLAVOUR=asan) and fuzzing.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "port.h"

#define STACK_PAINT 0xA5u
#define STACK_WATCH (256u * 1024u) /* bytes below the boot stack pointer that are watched */

static char **g_argv;
static uint8_t rx_buf[4096];
static size_t rx_len, rx_pos;
static uint8_t *stack_top; /* stack pointer at port_init (the stack grows down from here) */
static uint64_t boot_ns;   /* port_cycles() counts from port_init */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Keep the argv for port_reset's re-exec; called by the C runtime before main. */
__attribute__((constructor)) static void save_args(int argc, char **argv)
{
    (void)argc;
    g_argv = argv;
}

/* The native twin of the Cortex-M fault report: one FAULT line on the "UART", then stop.
 * SIGSEGV is left to ASan in the sanitizer build (its report is more useful). */
static void on_fault(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    static const char hex[] = "0123456789ABCDEF";
    char line[80] = "\nFAULT ";
    size_t n = 7;
    const char *name = sig == SIGILL ? "SIGILL" : sig == SIGFPE ? "SIGFPE" : sig == SIGBUS ?
                       "SIGBUS" : "SIGSEGV";
    while (*name) line[n++] = *name++;
    memcpy(line + n, " pc=0x", 6);
    n += 6;
    uintptr_t pc = (uintptr_t)si->si_addr;
    for (int i = (int)sizeof pc * 2 - 1; i >= 0; i--) line[n++] = hex[(pc >> (4 * i)) & 15u];
    memcpy(line + n, " lr=0x0 cfsr=0x0\n", 17);
    n += 17;
    port_uart_write((const uint8_t *)line, n);
    _exit(128 + sig);
}

void port_init(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGILL, &sa, NULL);
    sigaction(SIGFPE, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    /* tcsetattr from a background process group of the terminal's session would stop us with
     * SIGTTOU (a pty the host opened may be its controlling terminal): ignore it. */
    signal(SIGTTOU, SIG_IGN);
    if (isatty(STDIN_FILENO)) { /* raw: no echo, no line editing, no \n -> \r\n */
        struct termios t;
        if (tcgetattr(STDIN_FILENO, &t) == 0) {
            cfmakeraw(&t);
            tcsetattr(STDIN_FILENO, TCSANOW, &t);
        }
    }
    boot_ns = now_ns();
    stack_top = (uint8_t *)__builtin_frame_address(0);
    port_stack_paint();
}

const char *port_board_name(void)
{
    return "native";
}

void port_uart_write(const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = write(STDOUT_FILENO, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) _exit(0); /* the host is gone */
        buf += n;
        len -= (size_t)n;
    }
}

int port_uart_read_byte(void)
{
    if (rx_pos == rx_len) {
        struct pollfd p = {STDIN_FILENO, POLLIN, 0};
        if (poll(&p, 1, 0) <= 0) return -1;
        ssize_t n = read(STDIN_FILENO, rx_buf, sizeof rx_buf);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) _exit(0); /* EOF: host gone */
        if (n <= 0) return -1;
        rx_len = (size_t)n;
        rx_pos = 0;
    }
    return rx_buf[rx_pos++];
}

void port_wait_rx(void)
{
    struct pollfd p = {STDIN_FILENO, POLLIN, 0};
    (void)poll(&p, 1, -1);
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL) && !(p.revents & POLLIN)) _exit(0);
}

uint32_t port_uart_overruns(void)
{
    return 0;
}

uint64_t port_cycles(void)
{
    return now_ns() - boot_ns;
}

const char *port_cycles_unit(void)
{
    return "ns";
}

uint32_t port_clock_hz(void)
{
    return 1000000000u; /* the ns counter */
}

/* Stack painting below the live stack pointer of the main thread. Linux grows the main stack
 * on demand, so the watched window is ordinary memory; the sanitizers must not check it. */
__attribute__((no_sanitize("address"), noinline)) void port_stack_paint(void)
{
    volatile uint8_t *sp = (volatile uint8_t *)__builtin_frame_address(0) - 256;
    for (volatile uint8_t *p = stack_top - STACK_WATCH; p < sp; p++) *p = STACK_PAINT;
}

__attribute__((no_sanitize("address"), noinline)) size_t port_stack_peak(void)
{
    const volatile uint8_t *p = stack_top - STACK_WATCH;
    while (p < stack_top && *p == STACK_PAINT) p++;
    return (size_t)(stack_top - p);
}

size_t port_flash_used(void)
{
    return 0;
}

size_t port_ram_used(void)
{
    return 0;
}

void port_test_fault(void)
{
    __builtin_trap(); /* SIGILL on x86 and Arm hosts */
}

void port_reset(void)
{
    execv("/proc/self/exe", g_argv);
    _exit(3); /* exec failed: let the host see the process end */
}
