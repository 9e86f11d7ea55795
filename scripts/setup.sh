#!/usr/bin/env bash
# Everything a fresh Debian machine needs, idempotent and cached:
#   apt packages (with the i386 architecture), the Python virtualenv (.venv), pypy3's
#   virtualenv for the reference's tests (.venv-pypy), npm packages.
# Each step is skipped when its inputs have not changed since it last succeeded.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STAMPS=.venv/.stamps
log() { printf '[setup] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# --- apt ------------------------------------------------------------------
want=$(grep -v '^\s*#' scripts/apt-packages.txt | awk 'NF{print $1}')
missing=()
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! dpkg --print-foreign-architectures | grep -qx i386; then
  log "adding the i386 architecture"
  $SUDO dpkg --add-architecture i386
  need_update=1
fi
# Source packages (conformance/ builds QEMU's test-i386 and runs BusyBox's testsuite from
# them): a deb-src twin of the Debian sources file, written once.
SRC_LIST=/etc/apt/sources.list.d/x86lab-src.sources
if [ ! -f "$SRC_LIST" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
  log "adding deb-src entries ($SRC_LIST)"
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | $SUDO tee "$SRC_LIST" >/dev/null
  need_update=1
fi
if [ ${#missing[@]} -gt 0 ] || [ -n "${need_update:-}" ]; then
  log "apt-get install ${missing[*]:-}"
  $SUDO apt-get update -q || log "apt-get update reported errors (a mirror mid-sync?); trying the install anyway"
  if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# --- Python virtualenv ----------------------------------------------------
# Which CPython: $PYTHON if set, else Debian's own (/usr/bin/python3, with python3-venv
# from the apt list), else the first python3 on PATH. Debian's build ran the reference
# ~7 % fewer machine instructions a loop iteration than a pyenv build without PGO/LTO
# (callgrind, the instruction mix with blocks) and a warm tiny boot in 36.3 against
# 40.1 s of CPU, both at once (stop 22, reference/README.md).
if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
elif [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then
  PY=/usr/bin/python3
else
  PY=python3
fi
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
mkdir -p "$STAMPS"
pyhash=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$STAMPS/pip" 2>/dev/null)" != "$pyhash" ]; then
  log "pip install -e .[dev,campaign]"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev,campaign]'
  echo "$pyhash" > "$STAMPS/pip"
fi

# --- PyPy virtualenv: reference/'s tests under Debian's pypy3 (pytest only) ----
# Its stamp lives inside .venv-pypy, so a deleted venv is rebuilt and refilled.
PYPY_REQ=scripts/pypy-requirements.txt
if [ ! -x .venv-pypy/bin/python ]; then
  log "creating .venv-pypy (pypy3)"
  pypy3 -m venv .venv-pypy
fi
pypyhash=$(sha256sum "$PYPY_REQ" | cut -d' ' -f1)
if [ "$(cat .venv-pypy/.stamp-pip 2>/dev/null)" != "$pypyhash" ]; then
  log "pip install -r $PYPY_REQ (.venv-pypy)"
  .venv-pypy/bin/pip install -q --disable-pip-version-check -r "$PYPY_REQ"
  echo "$pypyhash" > .venv-pypy/.stamp-pip
fi

# --- npm packages (each folder listed in scripts/npm-dirs.txt) ------------
if [ -f scripts/npm-dirs.txt ]; then
  grep -v '^\s*#' scripts/npm-dirs.txt | awk 'NF{print $1}' | while read -r dir; do
    lock="$dir/package-lock.json"
    h=$(cat "$dir/package.json" "$lock" 2>/dev/null | sha256sum | cut -d' ' -f1)
    stamp="$STAMPS/npm-$(echo "$dir" | tr '/' '_')"
    if [ ! -d "$dir/node_modules" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$h" ]; then
      log "npm ci in $dir"
      if [ -f "$lock" ]; then (cd "$dir" && npm ci --no-audit --no-fund); else (cd "$dir" && npm install --no-audit --no-fund); fi
      echo "$h" > "$stamp"
    fi
  done
fi
log "ready"
