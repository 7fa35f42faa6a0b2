#!/usr/bin/env bash
# The Robot Framework acceptance suite (tests/acceptance), as .ci/run calls it after pytest.
# Robot's exit code is the number of failed tests (skipped ones do not count): 0 = pass.
# Arguments go to robot, e.g. `bash scripts/robot.sh --suite nrf52840`; results in
# $CI_ARTIFACTS/robot when set (.ci/run sets it), else hil-runs/robot: never the repository root
# (a bare `python3 -m robot tests/acceptance` writes output.xml, log.html and report.html there).
set -euo pipefail
cd "$(dirname "$0")/.."
out=hil-runs/robot
[ -z "${CI_ARTIFACTS:-}" ] || out=$CI_ARTIFACTS/robot
python3 -m robot --outputdir "$out" "$@" tests/acceptance
