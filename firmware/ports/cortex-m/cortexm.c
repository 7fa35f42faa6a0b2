/*
 * cortexm.c - what every Cortex-M4 board shares: vector table, reset, fault report, SysTick,
 * the cycle counter (DWT CYCCNT or SysTick, chosen by the board), the UART receive ring, stack
 * painting and reset. A board file (ports/<board>/board.c) adds clocks and its UART registers.
 *
 * Board contract (board.h): BOARD_NAME, BOARD_CLOCK_HZ, BOARD_UART_IRQ, and functions
 * board_clock_init(), board_uart_init(), board_uart_putc(), board_uart_irq() (which calls
 * cortexm_rx_push() for every received byte).
 */
#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "port.h"

#define REG(a) (*(volatile uint32_t *)(a))

/* System control block, SysTick, DWT. */
#define SCB_ICSR REG(0xE000ED04u)
#define SCB_VTOR REG(0xE000ED08u)
#define SCB_AIRCR REG(0xE000ED0Cu)
#define SCB_CCR REG(0xE000ED14u)
#define SCB_SHCSR REG(0xE000ED24u)
#define SCB_CFSR REG(0xE000ED28u)
#define SCB_HFSR REG(0xE000ED2Cu)
#define SCB_MMFAR REG(0xE000ED34u)
#define SCB_BFAR REG(0xE000ED38u)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define NVIC_ISER(n) REG(0xE000E100u + 4u * (n))
#define DEMCR REG(0xE000EDFCu)
#define DWT_CTRL REG(0xE0001000u)
#define DWT_CYCCNT REG(0xE0001004u)

#define ICSR_PENDSTSET (1u << 26)
#define STACK_PAINT 0xA5A5A5A5u

/* Linker symbols (ports/cortex-m/sections.ld). */
extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _sstack[], _estack[];
extern uint8_t __ebq_flash_used[], __ebq_ram_used[];

int main(void);

/* ---- UART receive ring (filled by the board's UART interrupt) ----------------------------- */

#define RX_RING 4096u /* power of two; holds more than one maximum frame */
static volatile uint8_t rx_buf[RX_RING];
static volatile uint32_t rx_head, rx_tail, rx_overruns;

void cortexm_rx_push(uint8_t c)
{
    uint32_t h = rx_head;
    if (h - rx_tail >= RX_RING) {
        rx_overruns++;
        return;
    }
    rx_buf[h & (RX_RING - 1u)] = c;
    rx_head = h + 1u;
}

int port_uart_read_byte(void)
{
    uint32_t t = rx_tail;
    if (t == rx_head) return -1;
    int c = rx_buf[t & (RX_RING - 1u)];
    rx_tail = t + 1u;
    return c;
}

void port_wait_rx(void)
{
    /* Interrupts masked around the check so a byte arriving between the check and WFI still
     * wakes the core (a pending interrupt ends WFI even with PRIMASK set). */
    __asm volatile("cpsid i" ::: "memory");
    if (rx_tail == rx_head) __asm volatile("dsb\n wfi" ::: "memory");
    __asm volatile("cpsie i\n isb" ::: "memory");
}

uint32_t port_uart_overruns(void)
{
    return rx_overruns;
}

void port_uart_write(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) board_uart_putc(buf[i]);
}

/* ---- time ----------------------------------------------------------------------------------- */

static volatile uint32_t systick_wraps; /* SysTick reloads (every 2^24 core cycles) */
#ifdef EBQ_CYCLES_DWT
static volatile uint32_t dwt_hi, dwt_last; /* software high word of CYCCNT */
#endif

uint64_t port_cycles(void)
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
#ifdef EBQ_CYCLES_DWT
    uint32_t now = DWT_CYCCNT;
    if (now < dwt_last) dwt_hi++; /* SysTick calls us every 2^24 cycles: at most one wrap */
    dwt_last = now;
    uint64_t v = ((uint64_t)dwt_hi << 32) | now;
#else
    uint32_t w = systick_wraps;
    uint32_t cv = SYST_CVR;
    if (SCB_ICSR & ICSR_PENDSTSET) { /* wrapped, handler not run yet: count it here */
        cv = SYST_CVR;
        w++;
    }
    uint64_t v = ((uint64_t)w << 24) + (0xFFFFFFu - cv);
#endif
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
    return v;
}

const char *port_cycles_unit(void)
{
#ifdef EBQ_CYCLES_DWT
    return "dwt";
#else
    return "systick";
#endif
}

uint32_t port_clock_hz(void)
{
    return BOARD_CLOCK_HZ;
}

static void SysTick_Handler(void)
{
    systick_wraps++;
#ifdef EBQ_CYCLES_DWT
    (void)port_cycles(); /* keeps the DWT high word in step even when nobody asks for time */
#endif
}

static void time_init(void)
{
#ifdef EBQ_CYCLES_DWT
    DEMCR |= 1u << 24; /* TRCENA */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;    /* CYCCNTENA */
#endif
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt, enable */
}

/* ---- memory --------------------------------------------------------------------------------- */

static uint32_t *current_sp(void)
{
    uint32_t *sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

void port_stack_paint(void)
{
    uint32_t *end = current_sp() - 16; /* stay clear of this function's own frame */
    for (volatile uint32_t *p = _sstack; p < end; p++) *p = STACK_PAINT;
}

size_t port_stack_peak(void)
{
    const uint32_t *p = _sstack;
    while (p < _estack && *p == STACK_PAINT) p++;
    return (size_t)((const uint8_t *)_estack - (const uint8_t *)p);
}

size_t port_flash_used(void)
{
    return (size_t)__ebq_flash_used;
}

size_t port_ram_used(void)
{
    return (size_t)__ebq_ram_used;
}

void port_reset(void)
{
    /* Let the UART shift out the OK frame's last bytes (~87 us each at 115200 baud): the
     * transmit routines only wait for room in the data register. ~4 ms at any clock here. */
    for (volatile uint32_t i = 0; i < BOARD_CLOCK_HZ / 1000u; i++) {
    }
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = (0x5FAu << 16) | (1u << 2); /* VECTKEY | SYSRESETREQ */
    __asm volatile("dsb" ::: "memory");
    for (;;) __asm volatile("nop");
}

void port_test_fault(void)
{
    __asm volatile(".short 0xDE00"); /* UDF #0: UsageFault (UNDEFINSTR) */
}

/* ---- faults ----------------------------------------------------------------------------------- */

static void put_str(const char *s)
{
    while (*s) board_uart_putc((uint8_t)*s++);
}

static void put_hex(uint32_t v)
{
    static const char hex[] = "0123456789ABCDEF";
    put_str("0x");
    for (int i = 0; i < 8; i++) board_uart_putc((uint8_t)hex[(v >> (28 - 4 * i)) & 15u]);
}

/* Called with the exception stack frame (r0-r3, r12, lr, pc, xpsr). Prints one plain line the
 * host logs, then stops: a fault is a bug, retrying would only hide it. */
__attribute__((used, noreturn)) void cortexm_fault(const uint32_t *frame, uint32_t exc)
{
    static const char *const names[] = {"?", "?", "NMI", "HardFault", "MemManage", "BusFault",
                                        "UsageFault"};
    __asm volatile("cpsid i" ::: "memory");
    put_str("\nFAULT ");
    put_str(exc < 7 ? names[exc] : "IRQ");
    put_str(" pc=");
    put_hex(frame[6]);
    put_str(" lr=");
    put_hex(frame[5]);
    put_str(" cfsr=");
    put_hex(SCB_CFSR);
    put_str(" hfsr=");
    put_hex(SCB_HFSR);
    put_str(" mmfar=");
    put_hex(SCB_MMFAR);
    put_str(" bfar=");
    put_hex(SCB_BFAR);
    put_str(" exc=");
    put_hex(exc);
    put_str("\n");
    for (;;) __asm volatile("wfi");
}

/* Picks the stack the frame was pushed on (MSP or PSP) and passes the exception number. */
__attribute__((naked)) static void Fault_Handler(void)
{
    __asm volatile("tst lr, #4\n"
                   "ite eq\n"
                   "mrseq r0, msp\n"
                   "mrsne r0, psp\n"
                   "mrs r1, ipsr\n"
                   "b cortexm_fault\n");
}

/* ---- reset and vector table ----------------------------------------------------------------- */

__attribute__((noreturn)) void Reset_Handler(void)
{
    for (uint32_t *s = _sidata, *d = _sdata; d < _edata;) *d++ = *s++;
    for (uint32_t *d = _sbss; d < _ebss;) *d++ = 0;
    port_stack_paint();
    main();
    for (;;) __asm volatile("wfi");
}

void port_init(void)
{
    extern const void *const cortexm_vectors[];
    SCB_VTOR = (uint32_t)(uintptr_t)cortexm_vectors;
    SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18); /* MemManage, BusFault, UsageFault */
    SCB_CCR |= 1u << 4;                                 /* trap divide by zero */
    board_clock_init();
    time_init();
    board_uart_init();
    NVIC_ISER(BOARD_UART_IRQ / 32u) = 1u << (BOARD_UART_IRQ % 32u);
    __asm volatile("cpsie i" ::: "memory");
}

const char *port_board_name(void)
{
    return BOARD_NAME;
}

#define N_IRQ 96
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init" /* the UART slot overrides the default range */
__attribute__((used, section(".isr_vector"))) const void *const cortexm_vectors[16 + N_IRQ] = {
    [0] = _estack,
    [1] = (const void *)Reset_Handler,
    [2] = (const void *)Fault_Handler,  /* NMI */
    [3] = (const void *)Fault_Handler,  /* HardFault */
    [4] = (const void *)Fault_Handler,  /* MemManage */
    [5] = (const void *)Fault_Handler,  /* BusFault */
    [6] = (const void *)Fault_Handler,  /* UsageFault */
    [7 ... 14] = (const void *)Fault_Handler, /* reserved, SVC, DebugMon, PendSV: unused */
    [15] = (const void *)SysTick_Handler,
    [16 ... 16 + N_IRQ - 1] = (const void *)Fault_Handler, /* unexpected IRQ: exc >= 16 */
    [16 + BOARD_UART_IRQ] = (const void *)board_uart_irq,
};
#pragma GCC diagnostic pop
