*** Comments ***
Renode-native smoke suite for the nrf52840 firmware: run it with Renode's own test runner,
    renode-test renode/tests/nrf52840.robot
    renode-test renode/tests/nrf52840.robot --variable ELF:/abs/path/firmware.elf
after `hil build --board nrf52840` (or `make -C firmware BOARD=nrf52840 MODEL=...`).

renode-test (Robot Framework 6.1) adds Renode's renode-keywords.robot itself, with its Setup,
Teardown, "Reset Emulation" before and "Test Teardown" after each test (tests/robot_tests_provider.py
in renode/renode), so this file has no Settings, like Renode's own tests/platforms/*.robot.
Every keyword and monitor command below exists in Renode 1.15, checked against:
  - src/Renode/RobotFrameworkEngine/RenodeKeywords.cs: Execute Command, Execute Script,
    Start Emulation, Reset Emulation
  - src/Renode/RobotFrameworkEngine/UartKeywords.cs: Create Terminal Tester (uart, timeout=),
    Wait For Line On Uart (content, timeout=, treatAsRegex=), Write Line To Uart (content,
    waitForEcho=), Send Key To Uart (byte)
  - renode-infrastructure src/Emulator/Main/Testing/TerminalTester.cs: WriteLine sends the text
    and a carriage return (0x0D) only, so the frame's newline is sent with Send Key To Uart 0x0A
    (docs/protocol.md: a \r right before the \n is ignored); received lines end at \n and a \r
    is dropped (EndLineOption.TreatLineFeedAsEndLine, the default)
  - the machine is built from renode/nrf52840-hil.repl (the overlay hil.targets.renode
    generates, the same one renode/nrf52840.resc inlines) with `mach create`,
    `machine LoadPlatformDescription` and `sysbus LoadELF`. The .resc is not used here: its
    `emulation CreateUartPtyTerminal` opens a host pty nobody reads under renode-test, and
    Renode 1.15.1 then died now and then at a test's "Reset Emulation" (AntShell
    StreamIOSource.Read: EIO on the pty, a FATAL UNHANDLED EXCEPTION; the test body had
    passed, its teardown failed with "Connection reset by peer"; 2 of 5 runs here). The
    Terminal Tester reads the UART itself, so this suite needs no pty.


*** Variables ***
${ELF}           ${CURDIR}/../../firmware/build/nrf52840/firmware.elf
${REPL}          ${CURDIR}/../nrf52840-hil.repl
${UART}          sysbus.uart0
${BOARD}         nrf52840
# Frames are "$<seq> <TYPE> <payload>*<CRC-32 of the body, 8 upper-case hex digits>"
# (docs/protocol.md). Computed with:
#   python3 -c "import zlib; b=b'1 CLASSIFY show alarms'; print('$%s*%08X' % (b.decode(), zlib.crc32(b)))"
# "show alarms" is a known sentence of the shipped nlu_scenario model
# (tests/acceptance/known/nlu_scenario.yaml): the integer reference predicts label 0 (alarm).
${CLASSIFY}      $1 CLASSIFY show alarms*1DF6D256
${BAD_CRC}       $7 HELLO*00000000


*** Keywords ***
Boot The Board
    Execute Command           mach create "${BOARD}"
    Execute Command           machine LoadPlatformDescription @${REPL}
    Execute Command           sysbus LoadELF @${ELF}
    Create Terminal Tester    ${UART}    timeout=60
    Start Emulation
    Wait For Line On Uart     embbert-hil fw
    Wait For Line On Uart     ^\\$0 HELLO proto=1 fw=\\S+ board=${BOARD} model=[0-9A-F]{8} .*\\*[0-9A-F]{8}$    treatAsRegex=true

Send Frame
    [Arguments]    ${frame}
    Write Line To Uart        ${frame}    waitForEcho=false
    Send Key To Uart          0x0A


*** Test Cases ***
Should Boot And Say Hello
    [Tags]    nrf52840    renode    smoke
    Boot The Board

Should Classify A Known Sentence
    [Tags]    nrf52840    renode    smoke
    Boot The Board
    Send Frame    ${CLASSIFY}
    Wait For Line On Uart     ^\\$1 RESULT label=0 logits=[-0-9,]+ tokens=4 cycles=\\d+ .*\\*[0-9A-F]{8}$    treatAsRegex=true    timeout=120

Should Refuse A Frame With A Bad CRC
    [Tags]    nrf52840    renode    smoke
    Boot The Board
    Send Frame    ${BAD_CRC}
    Wait For Line On Uart     $7 ERROR code=BAD_FRAME
    Send Frame    ${CLASSIFY}
    Wait For Line On Uart     ^\\$1 RESULT label=0     treatAsRegex=true    timeout=120
