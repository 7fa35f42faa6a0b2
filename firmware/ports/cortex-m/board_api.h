/*
 * board_api.h - what a Cortex-M board file provides to ports/cortex-m/cortexm.c.
 * Each ports/<board>/board.h defines BOARD_NAME, BOARD_CLOCK_HZ, BOARD_UART_IRQ, then includes
 * this file.
 */
#ifndef EBQ_BOARD_API_H
#define EBQ_BOARD_API_H

#include <stdint.h>

#define REG32(a) (*(volatile uint32_t *)(a))

void board_clock_init(void);    /* core clock to BOARD_CLOCK_HZ (bounded waits, never hangs) */
void board_uart_init(void);     /* 115200 8N1, receive interrupt enabled                     */
void board_uart_putc(uint8_t c); /* blocking                                                  */
void board_uart_irq(void);      /* UART interrupt: cortexm_rx_push() every received byte     */

void cortexm_rx_push(uint8_t c); /* ports/cortex-m/cortexm.c */

#endif
