#!/usr/bin/env bash
# The Robot Framework acceptance suite (tests/acceptance), as .ci/run calls it after pytest.
# Robot's exit code is the number of failed tests (skipped ones do not count): 0 = pass.
# Arguments go to robot, e.g. `bash scripts/robot.sh --suite nrf52840`; results in
# $CI_ARTIFACTS/robot (default .ci-artifacts/robot).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m robot --outputdir "${CI_ARTIFACTS:-.ci-artifacts}/robot" "$@" tests/acceptance
