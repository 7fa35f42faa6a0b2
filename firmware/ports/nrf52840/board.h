/* nrf52840: nRF52840-DK at 64 MHz; serial = UART0 @0x40002000 (TX P0.06, RX P0.08), IRQ 2. */
#define BOARD_NAME "nrf52840"
#define BOARD_CLOCK_HZ 64000000u
#define BOARD_UART_IRQ 2
#include "board_api.h"
