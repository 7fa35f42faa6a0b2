#!/usr/bin/env bash
# Installs labgrid (coordinator, exporter, client) into its own venv and ser2net from apt, for the
# `labgrid` target and tests/test_labgrid.py; called by .ci/run's setup, and usable alone.
#
#   bash scripts/install-labgrid.sh [--force]
#
# Why a venv of its own: labgrid pins its own pyserial fork, which must not replace the pyserial
# hil's `serial` target uses. hil never imports labgrid: it drives `labgrid-client` as a program
# and opens the exported port with pyserial's rfc2217 client (hil/targets/labgrid.py).
#
# Environment: LABGRID_VERSION (default 26.0.1), LABGRID_VENV (default /opt/labgrid),
# LABGRID_BIN_DIR (default /usr/local/bin: labgrid-client, -exporter, -coordinator linked there).
# Idempotent (an installed version is kept) and never fatal: offline or without root it says
# what is missing and exits 0; the labgrid tests then skip, saying why.
set -uo pipefail

VERSION=${LABGRID_VERSION:-26.0.1}
VENV=${LABGRID_VENV:-/opt/labgrid}
BIN_DIR=${LABGRID_BIN_DIR:-/usr/local/bin}
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-labgrid: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=$(command -v sudo || true); fi

if command -v ser2net >/dev/null 2>&1; then
  echo "install-labgrid: ser2net $(ser2net -v 2>&1 | head -n 1)"
elif command -v apt-get >/dev/null 2>&1; then
  echo "install-labgrid: installing ser2net (apt)"
  { $SUDO apt-get install -y --no-install-recommends ser2net ||
    { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends ser2net; }; } \
    >/tmp/install-labgrid-apt.log 2>&1 ||
    echo "install-labgrid: could not install ser2net (see /tmp/install-labgrid-apt.log)" >&2
else
  echo "install-labgrid: no apt-get; install ser2net (>= 4) by hand" >&2
fi

have=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("labgrid"))' 2>/dev/null || true)
if [ "$have" = "$VERSION" ] && [ "$FORCE" = 0 ]; then
  echo "install-labgrid: labgrid $have in $VENV"
else
  echo "install-labgrid: installing labgrid==$VERSION into $VENV"
  if ! { [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"; } ||
     ! "$VENV/bin/pip" install -q "labgrid==$VERSION" 2> >(grep -v "^WARNING: Location" >&2); then
    echo "install-labgrid: could not install labgrid==$VERSION (offline? no rights on $VENV?);" \
         "the labgrid target and its tests will say it is missing" >&2
    exit 0
  fi
fi

for tool in labgrid-client labgrid-exporter labgrid-coordinator; do
  if [ -x "$VENV/bin/$tool" ] && [ ! -e "$BIN_DIR/$tool" ]; then
    $SUDO ln -sf "$VENV/bin/$tool" "$BIN_DIR/$tool" 2>/dev/null ||
      echo "install-labgrid: could not link $BIN_DIR/$tool; set LABGRID_CLIENT=$VENV/bin/labgrid-client" >&2
  fi
done
echo "install-labgrid: ready: $(command -v labgrid-client || echo "$VENV/bin/labgrid-client"), ser2net $(command -v ser2net || echo missing)"
exit 0
