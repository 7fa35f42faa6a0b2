/*
 * board.c - mps2-an386 (QEMU -M mps2-an386). The clock is fixed at 25 MHz; QEMU has no DWT, so
 * time is SysTick. CMSDK APB UART: QEMU refuses to move bytes while BAUDDIV < 16.
 */
#include "board.h"

#define UART_BASE 0x40004000u
#define UART_DATA REG32(UART_BASE + 0x00u)
#define UART_STATE REG32(UART_BASE + 0x04u)
#define UART_CTRL REG32(UART_BASE + 0x08u)
#define UART_INTCLR REG32(UART_BASE + 0x0Cu)
#define UART_BAUDDIV REG32(UART_BASE + 0x10u)
#define STATE_TXFULL 1u
#define STATE_RXFULL 2u

void board_clock_init(void)
{
}

void board_uart_init(void)
{
    UART_BAUDDIV = BOARD_CLOCK_HZ / 115200u;
    UART_CTRL = 1u | 2u | 8u; /* TX enable, RX enable, RX interrupt */
}

void board_uart_putc(uint8_t c)
{
    while (UART_STATE & STATE_TXFULL) {
    }
    UART_DATA = c;
}

void board_uart_irq(void)
{
    /* Clear first, then drain: a byte landing after the last RXFULL check raises the interrupt
     * again. (Clearing after the drain can swallow that byte's interrupt; the UART then holds it
     * in DATA forever and refuses every later byte.) */
    UART_INTCLR = 2u; /* RX interrupt */
    while (UART_STATE & STATE_RXFULL) cortexm_rx_push((uint8_t)UART_DATA);
}
