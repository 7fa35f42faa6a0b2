#!/usr/bin/env bash
# The Robot Framework acceptance suite, tests/acceptance/board.robot, once per board (its facts
# from tests/acceptance/boards/<board>.yaml, as twister's platform files), then merged by rebot
# into one output.xml, log.html, report.html and an xUnit file for CI reporters.
#
#   bash scripts/robot.sh                  every board in tests/acceptance/boards/
#   bash scripts/robot.sh stm32f4 native   these boards
#
# Results go to $CI_ARTIFACTS/robot when set (.ci/run sets it), else hil-runs/robot: never the
# repository root or the package.
# The exit status is non-zero when any test of any board failed (skips do not count).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=hil-runs/robot
[ -z "${CI_ARTIFACTS:-}" ] || OUT=$CI_ARTIFACTS/robot
boards=("$@")
if [ "${#boards[@]}" -eq 0 ]; then
  for vf in tests/acceptance/boards/*.yaml; do boards+=("$(basename "$vf" .yaml)"); done
fi
rm -rf "$OUT"
mkdir -p "$OUT"
rc=0
outputs=()
for board in "${boards[@]}"; do
  vf="tests/acceptance/boards/$board.yaml"
  if [ ! -f "$vf" ]; then
    echo "robot.sh: no board $board (known: $(ls tests/acceptance/boards | sed 's/\.yaml//' | tr '\n' ' '))" >&2
    exit 2
  fi
  python3 -m robot --variablefile "$vf" --name "$board" --outputdir "$OUT/$board" \
    --log NONE --report NONE tests/acceptance/board.robot || rc=1
  outputs+=("$OUT/$board/output.xml")
done
python3 -m robot.rebot --name acceptance --outputdir "$OUT" --output output.xml \
  --xunit xunit.xml --nostatusrc "${outputs[@]}"
exit "$rc"
