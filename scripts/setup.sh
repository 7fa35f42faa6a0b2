#!/usr/bin/env bash
# Installs everything embbert-hil needs on a fresh Debian/Ubuntu machine: the Arm toolchain,
# QEMU, clang (fuzzing), and the Python package with its training and test extras.
# Idempotent: re-running only checks. Needs root (or sudo) for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=0
# chromium: the HTML report test opens the report in a real browser; tmux: console screenshots.
for tool in arm-none-eabi-gcc qemu-system-arm clang chromium tmux; do
  command -v "$tool" >/dev/null 2>&1 || need_apt=1
done
# newlib and the clang runtime (libFuzzer, sanitizers) are libraries: ask dpkg.
for pkg in libnewlib-arm-none-eabi libclang-rt-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt=1
done
if [ "$need_apt" = 1 ]; then
  $SUDO apt-get update -qq
  # --no-install-recommends: without it QEMU pulls ~3 GB; newlib must be named explicitly.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm clang libclang-rt-dev make chromium tmux >/dev/null
fi

PIP="python3 -m pip"
# torch pinned: an unpinned torch pulls a multi-GB CUDA build.
$PIP install -q --disable-pip-version-check "torch==2.13.0"
$PIP install -q --disable-pip-version-check -e ".[train,dev,distill]"
