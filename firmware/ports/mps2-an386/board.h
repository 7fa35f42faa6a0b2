/* mps2-an386: Cortex-M4 FPGA image at 25 MHz; serial = CMSDK UART0 @0x40004000, RX IRQ 0. */
#define BOARD_NAME "mps2-an386"
#define BOARD_CLOCK_HZ 25000000u
#define BOARD_UART_IRQ 0
#include "board_api.h"
