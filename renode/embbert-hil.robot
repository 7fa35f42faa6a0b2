*** Comments ***
Boot the EmbBERT-Q firmware on Renode's own nRF52840 and STM32F4-Discovery platforms, through the
same scripts `hil run` uses (renode/<board>.resc: hil overlay with DWT, clocks, offline init), and
check the first protocol exchanges on the UART with Renode's line-based keywords.

Build first, then run with Renode's test runner:
    make -C firmware BOARD=nrf52840 MODEL=$PWD/hil/models/nlu_scenario/model.bin
    make -C firmware BOARD=stm32f4 MODEL=$PWD/hil/models/nlu_scenario/model.bin
    renode-test renode/embbert-hil.robot
The numbers (bit-exact answers on 300 sentences, cycles) come from `hil run --board nrf52840`;
this suite is the quick "does it boot and speak" check, in the style of Renode's own suites.


*** Settings ***
Suite Setup         Setup
Suite Teardown      Teardown
Test Setup          Reset Emulation
Test Teardown       Test Teardown
Test Timeout        120 seconds
Resource            ${RENODEKEYWORDS}


*** Variables ***
${ROOT}             ${CURDIR}/..
# One frame each (docs/protocol.md): `$<body>*<CRC-32 of body, 8 upper-case hex>\n`.
${HELLO}            $1 HELLO*93B2E785\n
${CLASSIFY}         $2 CLASSIFY set an alarm for seven am*F3AB0A0E\n
${BAD_CRC}          $3 HELLO*00000000\n


*** Keywords ***
Boot Board
    [Arguments]    ${board}    ${uart}
    Execute Command    $bin=@${ROOT}/firmware/build/${board}/firmware.elf
    Execute Command    $pty="${OUTPUT DIR}/${board}-uart"
    Execute Script    ${CURDIR}/${board}.resc
    Create Terminal Tester    ${uart}    timeout=60
    Start Emulation
    Wait For Line On Uart    embbert-hil fw
    Wait For Line On Uart    $0 HELLO proto\=1 fw\=
    Wait For Line On Uart    board\=${board}

Speaks The Protocol
    Write To Uart    ${HELLO}
    Wait For Line On Uart    $1 HELLO proto\=1
    Write To Uart    ${CLASSIFY}
    Wait For Line On Uart    $2 RESULT label\=0
    Write To Uart    ${BAD_CRC}
    Wait For Line On Uart    ERROR code\=BAD_FRAME


*** Test Cases ***
Boots And Answers On nRF52840
    Boot Board    nrf52840    sysbus.uart0
    Speaks The Protocol

Boots And Answers On STM32F4 Discovery
    Boot Board    stm32f4    sysbus.usart2
    Speaks The Protocol
