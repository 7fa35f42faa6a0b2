*** Settings ***
Documentation     Acceptance of board native on native: the firmware as a host process on a pty (ns from the host clock).
Resource          resources/board.resource
Suite Setup       Start Board Or Skip    ${BOARD}    ${TARGET}
Suite Teardown    Stop Board
Test Timeout      2 minutes
Test Tags         native    host


*** Variables ***
${BOARD}           native
${TARGET}          native
${UNIT}            ns
${STACK_LIMIT}     16 KiB
${ARENA_LIMIT}     1 MiB
${CYCLE_BUDGET}    2000000000


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
