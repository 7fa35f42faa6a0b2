*** Settings ***
Documentation     Acceptance of board nrf52840 on renode: Renode with an instruction-counting DWT overlay (counts are executed instructions). Skipped where Renode is not installed.
Resource          resources/board.resource
Suite Setup       Start Board Or Skip    ${BOARD}    ${TARGET}
Suite Teardown    Stop Board
Test Timeout      5 minutes
Test Tags         nrf52840    renode    emulated


*** Variables ***
${BOARD}           nrf52840
${TARGET}          renode
${UNIT}            dwt
${STACK_LIMIT}     8 KiB
${ARENA_LIMIT}     192 KiB
${CYCLE_BUDGET}    200000000


*** Test Cases ***
Hello And Versions
    Hello And Versions Should Be Right    ${BOARD}    ${UNIT}

Known Sentences Of The Shipped Model
    Known Sentences Should Be Predicted

Known Sentences Of The Other Shipped Models
    Other Shipped Models Should Predict Known Sentences    ${KNOWN_DIR}

Agreement With The Reference Over A Scenario
    Scenario Should Agree With Reference

Memory Within The Board's Limits
    Memory Should Stay Within Limits    ${STACK_LIMIT}    ${ARENA_LIMIT}    ${CYCLE_BUDGET}

Errors For Bad Input
    Bad Input Should Be Refused

Recovery After A Reset
    Device Should Recover After Reset    ${RESET_SENTENCE}
