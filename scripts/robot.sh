#!/usr/bin/env bash
# The Robot Framework acceptance suite (tests/acceptance), as .ci/run calls it after pytest.
# Robot's exit code is the number of failed tests (skipped ones do not count): 0 = pass.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m robot --outputdir .ci-artifacts/robot tests/acceptance
