#!/usr/bin/env bash
# Installs Renode 1.15.1 when it is missing (no `renode` on PATH and $RENODE unset); called by
# scripts/setup.sh, and usable alone. Never fails for lack of Renode: where no way works (no
# network, no root) it says how to get Renode and exits 0, and the Renode tests then skip.
#
#   bash scripts/install-renode.sh [--force]
#
# The ways, in order:
#   1. ../shared/tools/renode/install.sh beside this repository, where it exists (the offline
#      Mono build of 1.15.1 on the project's machines; /opt/renode-1.15.1, linked in
#      /usr/local/bin).
#   2. Antmicro's Linux portable package (self-contained, no Mono needed) from builds.renode.io
#      or the GitHub release, into $RENODE_PREFIX (default /opt/renode), with a venv for
#      renode-test's Python requirements, and `renode` / `renode-test` in /usr/local/bin.
#   3. `renode-run download`, where renode-run is installed (it fetches the latest nightly).
#
# Environment: RENODE_VERSION (default 1.15.1), RENODE_PREFIX (default /opt/renode),
# RENODE_BIN_DIR (default /usr/local/bin), RENODE_URL (the portable package from elsewhere: a
# mirror, or file:///path), RENODE_SHA256 (checks the downloaded package).
# Idempotent: when Renode is already there it only prints its version.
set -euo pipefail

VERSION=${RENODE_VERSION:-1.15.1}
PREFIX=${RENODE_PREFIX:-/opt/renode}
BIN_DIR=${RENODE_BIN_DIR:-/usr/local/bin}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED_INSTALL="$(dirname "$REPO")/shared/tools/renode/install.sh"
BUILDS_URL="https://builds.renode.io/renode-$VERSION.linux-portable.tar.gz"
GITHUB_URL="https://github.com/renode/renode/releases/download/v$VERSION/renode-$VERSION.linux-portable.tar.gz"
URLS=("$BUILDS_URL" "$GITHUB_URL")
if [ -n "${RENODE_URL:-}" ]; then URLS=("$RENODE_URL"); fi
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-renode: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

log() { printf 'install-renode: %s\n' "$*"; }
SUDO=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO=(sudo -n); else SUDO=(false); fi
fi
as_root() { [ "${SUDO[*]}" != false ] && "${SUDO[@]}" "$@"; }

how_to_get_renode() {
  cat <<EOF
install-renode: Renode is not installed, and none of the ways to install it worked here.
  The Renode tests will skip with that reason; everything else works without Renode.
  To get Renode $VERSION (it is not packaged for Debian or PyPI):
    - on a machine with internet access, as root: bash scripts/install-renode.sh
      (downloads $BUILDS_URL)
    - or by hand: mkdir -p $PREFIX && curl -L $GITHUB_URL | tar xz -C $PREFIX --strip-components=1
      && python3 -m pip install -r $PREFIX/tests/requirements.txt && export PATH=$PREFIX:\$PATH
    - or: pipx install git+https://github.com/antmicro/renode-run && renode-run download
  then put \`renode\` on PATH or set RENODE=/path/to/renode.
EOF
}

renode_version() {  # first line of `renode --version`, or nothing
  timeout 120 "$1" --version </dev/null 2>/dev/null | head -n 1 || true
}

# 0. Already there? ---------------------------------------------------------------------------
if [ "$FORCE" != 1 ]; then
  if [ -n "${RENODE:-}" ]; then
    if [ -x "$RENODE" ]; then
      log "Renode found: RENODE=$RENODE ($(renode_version "$RENODE"))"
    else
      log "warning: RENODE=$RENODE is not an executable file; fix or unset RENODE" >&2
    fi
    exit 0
  fi
  if command -v renode >/dev/null 2>&1; then
    log "Renode found: $(command -v renode) ($(renode_version renode))"
    command -v renode-test >/dev/null 2>&1 ||
      log "warning: renode-test is not on PATH (the renode-test suites in renode/tests cannot run)" >&2
    exit 0
  fi
fi

installed() { command -v renode >/dev/null 2>&1 && [ -n "$(renode_version renode)" ]; }

# 1. The offline build in ../shared -------------------------------------------------------------
if [ -f "$SHARED_INSTALL" ]; then
  log "installing Renode from $SHARED_INSTALL"
  if bash "$SHARED_INSTALL" && installed; then
    log "Renode installed: $(command -v renode) ($(renode_version renode))"
    exit 0
  fi
  if [ -x /usr/local/bin/renode ] && [ -n "$(renode_version /usr/local/bin/renode)" ]; then
    log "Renode installed as /usr/local/bin/renode, but /usr/local/bin is not on PATH: add it" >&2
    exit 0
  fi
  log "warning: $SHARED_INSTALL did not give a working renode; trying the portable package" >&2
fi

# 2. Antmicro's Linux portable package ------------------------------------------------------------
download() {  # url, file
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --connect-timeout 20 --max-time 900 --retry 2 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q --timeout=60 --tries=2 -O "$2" "$1"
  else
    python3 - "$1" "$2" <<'EOF'
import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=60) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f)
EOF
  fi
}

# Wrappers rather than symlinks: the portable launchers locate their folder from $0.
write_wrapper() {  # name, command line
  local tmp; tmp=$(mktemp)
  printf '#!/usr/bin/env bash\n# Written by embbert-hil scripts/install-renode.sh: Renode %s in %s\n%s\n' \
    "$VERSION" "$PREFIX" "$2" > "$tmp"
  chmod 755 "$tmp"
  as_root mkdir -p "$BIN_DIR" && as_root mv -f "$tmp" "$BIN_DIR/$1"
}

install_portable() {
  local work pkg url new
  case "$PREFIX" in /?*) ;; *) log "RENODE_PREFIX must be an absolute path" >&2; return 1 ;; esac
  if [ -n "$(ls -A "$PREFIX" 2>/dev/null)" ] && [ ! -e "$PREFIX/.installed-by-embbert-hil" ] &&
     [ "$FORCE" != 1 ]; then
    log "$PREFIX is not empty and was not installed by this script; not touching it (--force replaces it)" >&2
    return 1
  fi
  as_root mkdir -p "$(dirname "$PREFIX")" || { log "no root (or sudo) to write $PREFIX" >&2; return 1; }
  work=$(mktemp -d)
  pkg="$work/renode.tar.gz"
  for url in "${URLS[@]}"; do
    log "downloading $url"
    if download "$url" "$pkg" 2>"$work/err"; then break; fi
    log "  failed: $(tail -n 1 "$work/err")" >&2
    rm -f "$pkg"
  done
  [ -s "$pkg" ] || { rm -rf "$work"; return 1; }
  if [ -n "${RENODE_SHA256:-}" ] && [ "$(sha256sum "$pkg" | cut -d' ' -f1)" != "$RENODE_SHA256" ]; then
    log "checksum of the downloaded package does not match RENODE_SHA256" >&2; rm -rf "$work"; return 1
  fi
  new="$work/tree"
  mkdir "$new"
  tar -xzf "$pkg" -C "$new" --strip-components=1 --no-same-owner || { rm -rf "$work"; return 1; }
  [ -x "$new/renode" ] || { log "the package has no renode launcher" >&2; rm -rf "$work"; return 1; }
  touch "$new/.installed-by-embbert-hil"
  as_root rm -rf "$PREFIX" && as_root mv "$new" "$PREFIX" && as_root chmod 755 "$PREFIX"
  rm -rf "$work"
  # Under sudo the tree is given to the user, so the venv below uses the user's python3 (sudo
  # would pick the system one, which may lack venv or refuse pip: PEP 668).
  [ "$(id -u)" = 0 ] || as_root chown -R "$(id -u):$(id -g)" "$PREFIX"

  # renode-test's Python requirements (Robot Framework 6.1, psutil, ...) in a private venv, so
  # they do not pin this project's own robotframework.
  if [ -f "$PREFIX/tests/requirements.txt" ]; then
    if python3 -m venv "$PREFIX/venv" &&
       "$PREFIX/venv/bin/python3" -m pip install -q --disable-pip-version-check \
         -r "$PREFIX/tests/requirements.txt"; then
      write_wrapper renode-test "PATH=\"$PREFIX/venv/bin:\$PATH\" exec \"$PREFIX/renode-test\" \"\$@\""
    else
      log "warning: no venv for renode-test; installing its requirements into $(command -v python3)" >&2
      python3 -m pip install -q --disable-pip-version-check -r "$PREFIX/tests/requirements.txt" ||
        log "warning: renode-test's Python requirements did not install" >&2
      write_wrapper renode-test "exec \"$PREFIX/renode-test\" \"\$@\""
    fi
  fi
  write_wrapper renode "exec \"$PREFIX/renode\" \"\$@\""
  hash -r
  installed
}

if install_portable; then
  log "Renode installed: $(command -v renode) ($(renode_version renode))"
  exit 0
fi

# 3. renode-run, where the user has it ------------------------------------------------------------
if command -v renode-run >/dev/null 2>&1; then
  log "trying renode-run download (latest nightly, not necessarily $VERSION)"
  if renode-run download; then
    dir=$(cat "${XDG_CONFIG_HOME:-$HOME/.config}/renode/renode-run.path" 2>/dev/null || true)
    if [ -n "$dir" ] && [ -x "$dir/renode" ]; then
      write_wrapper renode "exec \"$dir/renode\" \"\$@\"" || true
      [ -x "$dir/renode-test" ] && { write_wrapper renode-test "exec \"$dir/renode-test\" \"\$@\"" || true; }
    fi
    if installed; then
      log "Renode installed: $(command -v renode) ($(renode_version renode))"
      exit 0
    fi
  fi
fi

how_to_get_renode
exit 0
