*** Comments ***
hil.robot's keywords inside a renode-test run, next to Renode's own, on the one machine that
Renode (started by renode-test) runs. Run it with Renode's own test runner:
    renode-test renode/tests/stm32f4-hil.robot
    renode-test renode/tests/stm32f4-hil.robot --variable ELF:/abs/path/firmware.elf
after `hil build --board stm32f4` (it prints the ELF's path first), with hil installed for
`python3` (`pip install -e .`, or scripts/setup.sh). .ci/run's renode-test part runs it.

How hil's keywords get here. renode-test runs Robot Framework 6.1 from Renode's own venv, which
has none of hil's dependencies (numpy, tokenizers, pyserial, ...), may be read-only, and is not
this project's to change. So hil's keywords run as a Robot *remote library*: the Suite Setup
starts `python3 -m hil.robot.remote` (the Python hil is installed in, with this checkout first
on PYTHONPATH) with Robot's Process library and imports Robot's standard `Remote` library from
it as `hil`. Nothing is installed into Renode. The Python is ${HIL_PYTHON} when given, else the
first python3 on PATH outside renode-test's venv (the renode-test launcher puts its venv first);
with ${HIL_REMOTE} (a URI) the suite uses a server you started yourself instead:
    python3 -m hil.robot.remote --port 8270 &
    renode-test renode/tests/stm32f4-hil.robot --variable HIL_REMOTE:http://127.0.0.1:8270

How hil reaches the machine. Renode's keywords create it (Execute Command, Execute Script) and
watch its UART (Create Terminal Tester); one more monitor command puts that UART on a local TCP
port (a server socket terminal, `emulation CreateServerSocketTerminal PORT "hil" false` and
`connector Connect`), and `hil.Attach Board` connects hil's board session to it instead of
starting a Renode of its own (hil/targets/renode_attach.py). The terminal tester and hil then
see the same bytes: hil's requests' answers show up in `Wait For Line On Uart` too, and Renode's
`Write Line To Uart` reaches the firmware hil talks to. A socket, not a pty: a pty terminal
disposed of by renode-test's `Reset Emulation` kills Renode 1.15.1 with an unhandled EIO; the
socket terminal is disposed of cleanly, with hil connected or not (checked on 1.15.1).

Setup and teardown: renode-test supplies Setup, Teardown, Reset Emulation and Test Teardown
(renode-keywords.robot) only where a suite has none (tests/robot_tests_provider.py in
renode/renode), so this suite's own call Renode's first or last.


*** Settings ***
Suite Setup       Setup Renode And hil
Suite Teardown    Teardown hil And Renode
Test Teardown     Detach hil Then Test Teardown


*** Variables ***
${ELF}           ${CURDIR}/../../firmware/build/stm32f4/firmware.elf
${RESC}          ${CURDIR}/../stm32f4.resc
${UART}          sysbus.usart2
${BOARD}         stm32f4
${ROOT}          ${CURDIR}/../..
${HIL_PYTHON}    ${EMPTY}
${HIL_REMOTE}    ${EMPTY}
${HIL_STARTED}   ${FALSE}
# "show alarms" is a known sentence of the shipped nlu_scenario model (the model `hil build`
# puts in by default; tests/acceptance/known/nlu_scenario.yaml): label 0, alarm.
${KNOWN}         show alarms
# A frame with a wrong CRC (docs/protocol.md): the firmware answers `$7 ERROR code=BAD_FRAME`.
${BAD_CRC}       $7 HELLO*00000000


*** Keywords ***
Setup Renode And hil
    Setup    # renode-keywords.robot: Renode's own Remote library, the one Renode renode-test started
    IF    $HIL_REMOTE
        Import Library    Remote    ${HIL_REMOTE}    WITH NAME    hil
        RETURN
    END
    ${python}=        Python With hil
    ${port_file}=     Set Variable    ${RESULTS_DIRECTORY}/hil-remote.port
    Remove File       ${port_file}
    Start Process     ${python}    -m    hil.robot.remote    --port    0    --port-file    ${port_file}
    ...               --output-dir    ${RESULTS_DIRECTORY}
    ...               cwd=${ROOT}    env:PYTHONPATH=${ROOT}    alias=hil-remote
    ...               stdout=${RESULTS_DIRECTORY}/hil-remote.log    stderr=STDOUT
    Set Suite Variable    ${HIL_STARTED}    ${TRUE}
    Wait For hil      ${python}    ${port_file}
    ${port}=          Get File    ${port_file}
    Import Library    Remote    http://127.0.0.1:${port.strip()}    WITH NAME    hil

Python With hil
    [Documentation]    ${HIL_PYTHON}, else the first python3 on PATH outside renode-test's venv.
    IF    $HIL_PYTHON    RETURN    ${HIL_PYTHON}
    ${venv}=      Evaluate    os.path.realpath(os.environ.get('VIRTUAL_ENV') or '/nonexistent')    modules=os
    ${dirs}=      Evaluate    os.get_exec_path()    modules=os
    FOR    ${dir}    IN    @{dirs}
        ${python}=    Set Variable    ${dir}/python3
        ${real}=      Evaluate    os.path.realpath($dir)    modules=os
        ${ok}=        Evaluate    os.access($python, os.X_OK) and not ($real + '/').startswith($venv + '/')    modules=os
        IF    ${ok}    RETURN    ${python}
    END
    Fail    no python3 on PATH outside renode-test's venv: pass --variable HIL_PYTHON:/path/to/python3

Wait For hil
    [Arguments]    ${python}    ${port_file}
    FOR    ${i}    IN RANGE    600
        ${listening}=    Run Keyword And Return Status    File Should Exist    ${port_file}
        IF    ${listening}    RETURN
        ${running}=      Is Process Running    hil-remote
        IF    not ${running}
            ${log}=    Get File    ${RESULTS_DIRECTORY}/hil-remote.log
            Fail    ${python} -m hil.robot.remote exited before listening (hil and its dependencies installed for that Python? or pass HIL_PYTHON); it said:\n${log}
        END
        Sleep    0.1s
    END
    Fail    ${python} -m hil.robot.remote did not listen within 60 s (its output: ${RESULTS_DIRECTORY}/hil-remote.log)

Teardown hil And Renode
    IF    $HIL_STARTED
        Run Keyword And Ignore Error    hil.Stop Board
        Terminate Process    hil-remote
    END
    Teardown    # renode-keywords.robot

Detach hil Then Test Teardown
    Run Keyword And Ignore Error    hil.Stop Board    # lets go of the UART; Renode stays
    Test Teardown    # renode-keywords.robot: a failed test's snapshot and log, Reset Emulation

Free Local Port
    ${port}=    Evaluate    (lambda s: [s.bind(('127.0.0.1', 0)), s.getsockname()[1], s.close()][1])(socket.socket())    modules=socket
    RETURN    ${port}

Boot The Board And Attach hil
    [Documentation]    Renode's keywords make and start the machine; hil attaches to its UART.
    Execute Command           $bin=@${ELF}
    Execute Script            ${RESC}
    ${port}=                  Free Local Port
    Execute Command           emulation CreateServerSocketTerminal ${port} "hil" false
    Execute Command           connector Connect ${UART} hil
    Create Terminal Tester    ${UART}    timeout=60
    Start Emulation
    Wait For Line On Uart     ^\\$0 HELLO proto=1 fw=\\S+ board=${BOARD} model=[0-9A-F]{8} .*\\*[0-9A-F]{8}$    treatAsRegex=true
    ${hello}=                 hil.Attach Board    ${BOARD}    ${ELF}    127.0.0.1:${port}
    Should Be Equal           ${hello.board}    ${BOARD}

Logits Text
    [Arguments]    ${answer}
    ${text}=    Evaluate    ','.join(str(v) for v in $answer['logits'])
    RETURN    ${text}


*** Test Cases ***
hil Classifies Bit-Exact What Renode's Terminal Tester Sees
    [Tags]    stm32f4    renode    hil
    Boot The Board And Attach hil
    hil.Versions Should Match Host
    ${r}=                     hil.Classify    ${KNOWN}
    hil.Prediction Should Be    alarm
    hil.Device Should Agree With Reference
    # The same answer on Renode's side of the UART, logits and count as hil judged them
    ${logits}=                Logits Text    ${r}
    Wait For Line On Uart     RESULT label=${r.label} logits=${logits} tokens=${r.tokens} cycles=${r.cycles_raw}    timeout=120

Renode's Instruction Count Covers The Device's DWT Count
    [Tags]    stm32f4    renode    hil
    Boot The Board And Attach hil
    ${before}=                Execute Command    sysbus.cpu ExecutedInstructions
    ${r}=                     hil.Classify    wake me up at seven am
    ${after}=                 Execute Command    sysbus.cpu ExecutedInstructions
    hil.Device Should Agree With Reference
    # The firmware's DWT CYCCNT counts executed instructions (hil/targets/renode_scripts.py):
    # one CLASSIFY's count fits inside Renode's own count around the whole request.
    ${spent}=                 Evaluate    int($after.strip(), 0) - int($before.strip(), 0)
    Should Be True            0 < ${r.cycles} <= ${spent}    DWT ${r.cycles}, Renode ${spent} instructions
    hil.Cycles Should Be Below    ${spent + 1}

Renode's UART Keywords And hil Share The Link
    [Tags]    stm32f4    renode    hil
    Boot The Board And Attach hil
    # A damaged frame typed with Renode's keywords; the firmware's answer reaches hil and Renode
    Write Line To Uart        ${BAD_CRC}    waitForEcho=false
    Send Key To Uart          0x0A
    ${e}=                     hil.Last Error Should Be    BAD_FRAME
    Should Be Equal As Integers    ${e.seq}    7
    Wait For Line On Uart     $7 ERROR code=BAD_FRAME
    # and a whole scenario streamed by hil's runner through the same UART, judged bit-exact
    ${s}=                     hil.Run Scenario    nlu_smoke    limit=4
    Should Be Equal As Numbers    ${s.agreement}    1.0
    hil.Classify              ${KNOWN}
    hil.Prediction Should Be    alarm
