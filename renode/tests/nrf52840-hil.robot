*** Comments ***
hil.robot's keywords inside renode-test on the nRF52840-DK (uart0, the UARTE with EasyDMA): the tests and keywords are
renode/tests/hil-interop.resource's (how hil reaches Renode's machine, and why a remote library);
this file holds what differs per board. Run it with Renode's own test runner,
    renode-test renode/tests/nrf52840-hil.robot --variable ELF:/abs/path/firmware.elf
after `hil build --board nrf52840` (it prints the ELF's path first).


*** Settings ***
Resource          hil-interop.resource
Suite Setup       Setup Renode And hil
Suite Teardown    Teardown hil And Renode
Test Teardown     Detach hil Then Test Teardown


*** Variables ***
${ELF}           ${CURDIR}/../../firmware/build/nrf52840/firmware.elf
${RESC}          ${CURDIR}/../nrf52840.resc
${UART}          sysbus.uart0
${BOARD}         nrf52840


*** Test Cases ***
hil Classifies Bit-Exact What Renode's Terminal Tester Sees
    [Tags]    nrf52840    renode    hil
    Classify Bit-Exact As Renode's Terminal Tester Sees

Renode's Instruction Count Covers The Device's DWT Count
    [Tags]    nrf52840    renode    hil
    Renode's Instruction Count Should Cover The DWT Count

Renode's UART Keywords And hil Share The Link
    [Tags]    nrf52840    renode    hil
    Renode's UART Keywords And hil Should Share The Link
