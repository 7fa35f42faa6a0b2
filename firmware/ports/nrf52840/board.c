/*
 * board.c - nrf52840 (nRF52840-DK). Serial is UARTE0 @0x40002000 with EasyDMA (the DK's VCOM:
 * TX P0.06, RX P0.08), which is also what Renode's nrf52840.repl `uart0` models
 * (`easyDMA: true`: the legacy TXD/RXD registers 0x51C/0x518 do not exist there). Time is DWT
 * CYCCNT (Renode needs the DWT overlay, see docs/design.md, "Emulator facts").
 *
 * EasyDMA only reads and writes Data RAM, so both directions go through static RAM buffers:
 * a byte from a flash string is copied to tx_dma before TXD.PTR points at it.
 *
 * Transmit: one byte per DMA transaction. board_uart_putc() waits for the previous ENDTX (the
 * buffer is free again once the DMA has read it), copies the byte, and starts the next
 * transaction without waiting for it, so the CPU prepares byte n+1 while byte n shifts out.
 * The waits poll (no interrupt), so the fault report works with interrupts off. port_reset()'s
 * ~4 ms delay covers the last byte still in flight.
 *
 * Receive: one byte per DMA transaction (RXD.MAXCNT = 1) into rx_dma, re-armed by the ENDRX
 * interrupt, which moves the byte into the shared receive ring (ports/cortex-m). The ring, not
 * the DMA buffer, is what absorbs a request burst while the engine computes: the interrupt
 * preempts the inference, so no byte waits for the main loop.
 *   - Real chip: after ENDRX the receiver keeps running and parks incoming bytes in its RX
 *     FIFO (a few bytes: the PS has it take up to 4 more after STOPRX) until the next STARTRX
 *     gives EasyDMA a buffer; this is the scheme of Zephyr's interrupt-driven UARTE driver
 *     (1-byte buffer; clear ENDRX, read, STARTRX). The handler clears ENDRX and triggers
 *     STARTRX a few instructions after the event, well inside the ~4 byte times (~350 us at
 *     115200) the FIFO buys, so nothing is lost even mid-inference (the only other handler,
 *     SysTick, is a few instructions; the interrupts-off sections of ports/cortex-m are short).
 *     The ENDRX_STARTRX shortcut is deliberately not used: with a 1-byte buffer it would
 *     restart DMA into rx_dma before the handler has read it (one byte time of slack, not
 *     four). Clear-then-start is the order the chip needs: starting first could let EasyDMA
 *     finish the next byte before the clear, and that ENDRX would be wiped.
 *   - Renode 1.15.1 (renode-infrastructure NRF52840_UART.cs, e72d6fe2) differs: while ENDRX is
 *     set it leaves incoming bytes in its queue (good); STARTRX resets AMOUNT and moves one
 *     queued byte only if ENDRX is clear; and once ENDRX is cleared, a byte arriving before the
 *     next STARTRX is written past the buffer (AMOUNT becomes MAXCNT+1, no ENDRX any more, and
 *     every later byte follows it). Clear-then-start therefore has a window, between two stores,
 *     where a byte delivered at that Renode sync point would corrupt RAM and be lost. Its
 *     order instead is start (ENDRX still set: nothing moves, AMOUNT = 0), clear (a byte now
 *     lands in rx_dma and sets ENDRX again), then start once more if ENDRX is still clear,
 *     which pulls the next queued byte, if any; every window leaves the byte in rx_dma
 *     with ENDRX set, which the handler loop then reads. The model also has no SHORTS register
 *     (reads as 0; three "unhandled" warnings at boot) while on the chip it reads back, and
 *     that is how board_uart_init() tells the two apart (rx_model_queues).
 *   Tradeoff: an interrupt per received byte (as the legacy UART would), instead of larger DMA
 *   buffers, which on the chip would need a timer counting RXDRDY over PPI to see a partial
 *   buffer (RXD.AMOUNT is only valid after ENDRX); Renode 1.15.1's UARTE sends no events to PPI.
 *   Errors (framing, break, overrun) latch ERRORSRC; the handler clears them (no interrupt of
 *   their own) and the protocol's CRC rejects whatever frame they spoiled.
 */
#include "board.h"

#define CLOCK_HFCLKSTART REG32(0x40000000u)
#define CLOCK_HFCLKSTARTED REG32(0x40000100u)

#define UARTE_BASE 0x40002000u
#define UARTE_TASKS_STARTRX REG32(UARTE_BASE + 0x000u)
#define UARTE_TASKS_STARTTX REG32(UARTE_BASE + 0x008u)
#define UARTE_EVENTS_ENDRX REG32(UARTE_BASE + 0x110u)
#define UARTE_EVENTS_ENDTX REG32(UARTE_BASE + 0x120u)
#define UARTE_EVENTS_ERROR REG32(UARTE_BASE + 0x124u)
#define UARTE_SHORTS REG32(UARTE_BASE + 0x200u)
#define UARTE_INTENSET REG32(UARTE_BASE + 0x304u)
#define UARTE_INTENCLR REG32(UARTE_BASE + 0x308u)
#define UARTE_ERRORSRC REG32(UARTE_BASE + 0x480u)
#define UARTE_ENABLE REG32(UARTE_BASE + 0x500u)
#define UARTE_PSEL_RTS REG32(UARTE_BASE + 0x508u)
#define UARTE_PSEL_TXD REG32(UARTE_BASE + 0x50Cu)
#define UARTE_PSEL_CTS REG32(UARTE_BASE + 0x510u)
#define UARTE_PSEL_RXD REG32(UARTE_BASE + 0x514u)
#define UARTE_BAUDRATE REG32(UARTE_BASE + 0x524u)
#define UARTE_RXD_PTR REG32(UARTE_BASE + 0x534u)
#define UARTE_RXD_MAXCNT REG32(UARTE_BASE + 0x538u)
#define UARTE_TXD_PTR REG32(UARTE_BASE + 0x544u)
#define UARTE_TXD_MAXCNT REG32(UARTE_BASE + 0x548u)
#define UARTE_CONFIG REG32(UARTE_BASE + 0x56Cu)

#define UARTE_ENABLE_UARTE 8u         /* 4 would be the legacy UART */
#define UARTE_BAUD_115200 0x01D7E000u
#define UARTE_INT_ENDRX (1u << 4)
#define UARTE_INT_ALL 0x005A0397u /* every INTEN bit the UARTE has (PS), none reserved */
#define UARTE_SHORTS_ENDRX_STARTRX (1u << 5)
#define PSEL_DISCONNECTED 0xFFFFFFFFu

#define GPIO_OUTSET REG32(0x50000508u)
#define GPIO_DIRSET REG32(0x50000518u)
#define GPIO_PIN_CNF(n) REG32(0x50000700u + 4u * (n))
#define PIN_TX 6u
#define PIN_RX 8u

/* About 15 ms at 64 MHz: one byte takes ~87 us at 115200, so only a dead UARTE runs it out. */
#define TX_WAIT_LIMIT 1000000u

/* EasyDMA buffers: .bss, i.e. Data RAM (never flash). rx_dma has room for one byte only. */
static volatile uint8_t tx_dma;
static volatile uint8_t rx_dma;
static int tx_pending;      /* a transaction was started and its ENDTX not yet consumed */
static int rx_model_queues; /* Renode 1.15.1's model, see the header comment */

void board_clock_init(void)
{
    /* The 64 MHz crystal for an accurate baud rate; the core runs at 64 MHz either way. */
    CLOCK_HFCLKSTARTED = 0;
    CLOCK_HFCLKSTART = 1;
    for (uint32_t i = 0; i < 200000u && !CLOCK_HFCLKSTARTED; i++) {
    }
}

/* Gives EasyDMA rx_dma again after an ENDRX (or at boot), in the order the UARTE needs. */
static void rx_rearm(void)
{
    if (rx_model_queues) {
        UARTE_TASKS_STARTRX = 1;
        UARTE_EVENTS_ENDRX = 0;
        if (!UARTE_EVENTS_ENDRX) UARTE_TASKS_STARTRX = 1;
    } else {
        UARTE_EVENTS_ENDRX = 0;
        (void)UARTE_EVENTS_ENDRX; /* the clear reaches the peripheral before the task */
        UARTE_TASKS_STARTRX = 1;
    }
}

void board_uart_init(void)
{
    GPIO_OUTSET = 1u << PIN_TX; /* TX idles high, as an output (PS: pin configuration) */
    GPIO_DIRSET = 1u << PIN_TX;
    GPIO_PIN_CNF(PIN_RX) = 0;   /* input, input buffer connected, no pull */
    UARTE_ENABLE = 0;
    UARTE_PSEL_TXD = PIN_TX;
    UARTE_PSEL_RXD = PIN_RX;
    UARTE_PSEL_RTS = PSEL_DISCONNECTED;
    UARTE_PSEL_CTS = PSEL_DISCONNECTED;
    UARTE_BAUDRATE = UARTE_BAUD_115200;
    UARTE_CONFIG = 0; /* 8N1, no flow control */

    /* SHORTS probe: a real UARTE reads it back; Renode 1.15.1 has no such register. No
     * shortcut is used either way. */
    UARTE_SHORTS = UARTE_SHORTS_ENDRX_STARTRX;
    rx_model_queues = (UARTE_SHORTS & UARTE_SHORTS_ENDRX_STARTRX) == 0;
    UARTE_SHORTS = 0;

    UARTE_INTENCLR = UARTE_INT_ALL;
    UARTE_EVENTS_ERROR = 0;
    UARTE_EVENTS_ENDTX = 0;
    UARTE_ENABLE = UARTE_ENABLE_UARTE;
    tx_pending = 0;

    UARTE_RXD_PTR = (uint32_t)(uintptr_t)&rx_dma;
    UARTE_RXD_MAXCNT = 1;
    rx_rearm();
    UARTE_INTENSET = UARTE_INT_ENDRX; /* the NVIC line is enabled by port_init() */
}

void board_uart_putc(uint8_t c)
{
    if (tx_pending) {
        for (uint32_t i = 0; i < TX_WAIT_LIMIT && !UARTE_EVENTS_ENDTX; i++) {
        }
    }
    UARTE_EVENTS_ENDTX = 0;
    tx_dma = c;
    __asm volatile("dsb" ::: "memory"); /* the byte is in RAM before EasyDMA is told to read */
    UARTE_TXD_PTR = (uint32_t)(uintptr_t)&tx_dma;
    UARTE_TXD_MAXCNT = 1;
    UARTE_TASKS_STARTTX = 1;
    tx_pending = 1;
}

void board_uart_irq(void)
{
    if (UARTE_EVENTS_ERROR) {
        UARTE_EVENTS_ERROR = 0;
        UARTE_ERRORSRC = UARTE_ERRORSRC; /* write 1 to clear */
    }
    while (UARTE_EVENTS_ENDRX) {
        uint8_t c = rx_dma;
        rx_rearm();
        cortexm_rx_push(c);
    }
}
