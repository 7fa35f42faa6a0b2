*** Settings ***
Documentation     Acceptance of one board on its target, the same seven checks for every board:
...               the board's facts come from a variable file, `boards/<board>.yaml`, as
...               twister's platform files give its tests theirs. `bash scripts/robot.sh` runs
...               this suite once per board and merges the results; one board:
...               `bash scripts/robot.sh stm32f4`. A target that cannot run here skips with
...               the reason (a Renode skip fails CI on machines that have Renode).
Resource          resources/board.resource
Suite Setup       Start Board Or Skip    ${BOARD}    ${TARGET}
Suite Teardown    Stop Board
Test Timeout      ${TEST_TIMEOUT}
Test Tags         ${BOARD}    ${TARGET}    ${KIND}


*** Variables ***
# Overridden by boards/<board>.yaml; these defaults let the suite run alone on the native board.
${BOARD}           native
${TARGET}          native
${UNIT}            ns
${KIND}            host
${STACK_LIMIT}     16 KiB
${ARENA_LIMIT}     1 MiB
${CYCLE_BUDGET}    2000000000
${TEST_TIMEOUT}    2 minutes


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
