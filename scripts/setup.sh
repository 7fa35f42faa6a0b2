#!/usr/bin/env bash
# Installs everything embbert-hil needs on a fresh Debian/Ubuntu machine: the Arm toolchain,
# QEMU, clang (fuzzing), Renode (scripts/install-renode.sh) and the Python package with its
# training and test extras.
# Idempotent: re-running only checks. Needs root (or sudo) for apt-get and for Renode.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# The Debian packages that are missing, found by command (tool:package) or, for libraries,
# by dpkg (newlib and the clang runtime with libFuzzer and the sanitizers).
# chromium: the HTML report test opens the report in a real browser (chromium-browser or
# google-chrome do as well); tmux: console screenshots; openocd: `hil flash` (its failure paths
# are tested here, where no board is plugged in).
missing=()
for pair in arm-none-eabi-gcc:gcc-arm-none-eabi qemu-system-arm:qemu-system-arm clang:clang \
            make:make tmux:tmux openocd:openocd; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 &&
   ! command -v google-chrome >/dev/null 2>&1; then
  missing+=(chromium)
fi
for pkg in libnewlib-arm-none-eabi libclang-rt-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  # --no-install-recommends: without it QEMU pulls ~3 GB.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# Renode (the nrf52840 and stm32f4 boards): from ../shared where it is, else Antmicro's
# portable package. Never fails: without Renode the Renode tests skip and say why.
bash scripts/install-renode.sh || echo "setup: warning: scripts/install-renode.sh failed; continuing without Renode" >&2

PIP="python3 -m pip"
# torch pinned: an unpinned torch pulls a multi-GB CUDA build.
$PIP install -q --disable-pip-version-check "torch==2.13.0"
$PIP install -q --disable-pip-version-check -e ".[train,dev,distill]"
