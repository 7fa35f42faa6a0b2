/*
 * board.c - nrf52840 (nRF52840-DK). UART0 in legacy (non-DMA) mode, as Renode's nrf52840.repl
 * `uart0` models it. Time is DWT CYCCNT (Renode needs the DWT overlay, see design.md).
 */
#include "board.h"

#define CLOCK_HFCLKSTART REG32(0x40000000u)
#define CLOCK_HFCLKSTARTED REG32(0x40000100u)
#define UART_BASE 0x40002000u
#define UART_STARTRX REG32(UART_BASE + 0x000u)
#define UART_STARTTX REG32(UART_BASE + 0x008u)
#define UART_RXDRDY REG32(UART_BASE + 0x108u)
#define UART_TXDRDY REG32(UART_BASE + 0x11Cu)
#define UART_ERROR REG32(UART_BASE + 0x124u)
#define UART_INTENSET REG32(UART_BASE + 0x304u)
#define UART_ERRORSRC REG32(UART_BASE + 0x480u)
#define UART_ENABLE REG32(UART_BASE + 0x500u)
#define UART_PSEL_RTS REG32(UART_BASE + 0x508u)
#define UART_PSEL_TXD REG32(UART_BASE + 0x50Cu)
#define UART_PSEL_CTS REG32(UART_BASE + 0x510u)
#define UART_PSEL_RXD REG32(UART_BASE + 0x514u)
#define UART_RXD REG32(UART_BASE + 0x518u)
#define UART_TXD REG32(UART_BASE + 0x51Cu)
#define UART_BAUDRATE REG32(UART_BASE + 0x524u)
#define UART_CONFIG REG32(UART_BASE + 0x56Cu)
#define GPIO_OUTSET REG32(0x50000508u)
#define GPIO_DIRSET REG32(0x50000518u)
#define PIN_TX 6u
#define PIN_RX 8u

/* Set once a TXDRDY wait ran out: the model does not raise it, stop waiting for it. */
static int txdrdy_missing;

void board_clock_init(void)
{
    /* The 64 MHz crystal for an accurate baud rate; the core runs at 64 MHz either way. */
    CLOCK_HFCLKSTARTED = 0;
    CLOCK_HFCLKSTART = 1;
    for (uint32_t i = 0; i < 200000u && !CLOCK_HFCLKSTARTED; i++) {
    }
}

void board_uart_init(void)
{
    GPIO_OUTSET = 1u << PIN_TX;
    GPIO_DIRSET = 1u << PIN_TX;
    UART_PSEL_TXD = PIN_TX;
    UART_PSEL_RXD = PIN_RX;
    UART_PSEL_RTS = 0xFFFFFFFFu;
    UART_PSEL_CTS = 0xFFFFFFFFu;
    UART_BAUDRATE = 0x01D7E000u; /* 115200 */
    UART_CONFIG = 0;
    UART_ENABLE = 4u;
    UART_RXDRDY = 0;
    UART_INTENSET = 1u << 2; /* RXDRDY */
    UART_STARTRX = 1;
    UART_STARTTX = 1;
}

void board_uart_putc(uint8_t c)
{
    UART_TXDRDY = 0;
    UART_TXD = c;
    if (txdrdy_missing) return;
    uint32_t i = 0;
    while (!UART_TXDRDY) {
        if (++i == 1000000u) {
            txdrdy_missing = 1;
            return;
        }
    }
}

void board_uart_irq(void)
{
    if (UART_ERROR) {
        UART_ERROR = 0;
        UART_ERRORSRC = UART_ERRORSRC; /* write 1 to clear */
    }
    while (UART_RXDRDY) {
        UART_RXDRDY = 0;
        cortexm_rx_push((uint8_t)UART_RXD);
    }
}
