*** Comments ***
hil.robot's keywords inside renode-test on the STM32F4 Discovery (USART2): the tests and keywords are
renode/tests/hil-interop.resource's (how hil reaches Renode's machine, and why a remote library);
this file holds what differs per board. Run it with Renode's own test runner,
    renode-test renode/tests/stm32f4-hil.robot --variable ELF:/abs/path/firmware.elf
after `hil build --board stm32f4` (it prints the ELF's path first).


*** Settings ***
Resource          hil-interop.resource
Suite Setup       Setup Renode And hil
Suite Teardown    Teardown hil And Renode
Test Teardown     Detach hil Then Test Teardown


*** Variables ***
${ELF}           ${CURDIR}/../../firmware/build/stm32f4/firmware.elf
${RESC}          ${CURDIR}/../stm32f4.resc
${UART}          sysbus.usart2
${BOARD}         stm32f4


*** Test Cases ***
hil Classifies Bit-Exact What Renode's Terminal Tester Sees
    [Tags]    stm32f4    renode    hil
    Classify Bit-Exact As Renode's Terminal Tester Sees

Renode's Instruction Count Covers The Device's DWT Count
    [Tags]    stm32f4    renode    hil
    Renode's Instruction Count Should Cover The DWT Count

Renode's UART Keywords And hil Share The Link
    [Tags]    stm32f4    renode    hil
    Renode's UART Keywords And hil Should Share The Link
