#!/usr/bin/env bash
# One-command environment for refersplat_ros on a machine without a ROS distribution or a GPU.
#   1. Debian packages the Python wheels need (libusb-1.0-0 for open3d), only when missing;
#   2. .venv with every Python dependency in one pip command (torch==2.13.0 pinned alongside
#      everything that depends on it), the ROS 2 Kilted wheels and the interface build tools;
#   3. the wheels' cmake path fix (docs/SETUP.md#cmake-path-fix);
#   4. cmake build + symlink install of the package and its interfaces into .venv;
#   5. env.sh (scripts/write_env.sh): venv, AMENT_PREFIX_PATH, loopback-only discovery, the
#      Fast DDS loopback profile, ROS_LOG_DIR in the checkout.
# Idempotent: a run with nothing to do takes a few seconds (pip is skipped while the requirement
# files are unchanged; the cmake build is incremental).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${REFERSPLAT_VENV:-$ROOT/.venv}
BUILD_DIR=$ROOT/build/venv
STAMP=$VENV/.refersplat-requirements.sha256
START=$(date +%s)
cd "$ROOT"

log() { printf '[setup] %s\n' "$*"; }

# --- 1. Debian packages -------------------------------------------------------------------------
missing=()
ldconfig -p | grep -q 'libusb-1.0.so.0' || missing+=(libusb-1.0-0)
for tool in cmake make g++; do
  command -v "$tool" >/dev/null || missing+=("$( [ "$tool" = g++ ] && echo g++ || echo "$tool")")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=''
  [ "$(id -u)" -eq 0 ] || SUDO='sudo'
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  }
fi

# --- 2. virtual environment and Python packages ------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
PY=$VENV/bin/python
want=$(cat requirements/venv.txt requirements/nodeps.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  log 'installing Python packages (one pip command; first run takes a few minutes)'
  "$PY" -m pip install -q --disable-pip-version-check -r requirements/venv.txt 2>&1 \
    | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
  "$PY" -m pip install -q --disable-pip-version-check --no-deps -r requirements/nodeps.txt 2>&1 \
    | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
  # --- 3. the msg wheels' cmake exports point at manylinux build paths: rewrite them ----------
  PYINC=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  NPINC=$("$PY" -c 'import numpy; print(numpy.get_include())')
  grep -rl /opt/python/cp311-cp311 "$VENV/share" --include='*.cmake' 2>/dev/null | xargs -r sed -i \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NPINC#g" \
    -e "s#/opt/python/cp311-cp311/include/python3.11#$PYINC#g" || true
  echo "$want" > "$STAMP"
fi

# --- 4. build and install the package with its interfaces into the venv ------------------------
export AMENT_PREFIX_PATH=$VENV
export PATH=$VENV/bin:$PATH
mkdir -p "$BUILD_DIR"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  log 'configuring the interface build'
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_PREFIX_PATH="$VENV" -DCMAKE_INSTALL_PREFIX="$VENV" \
    -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF -DAMENT_CMAKE_SYMLINK_INSTALL=ON \
    -DCMAKE_BUILD_TYPE=Release >"$ROOT/build/venv-configure.log" 2>&1 || {
    cat "$ROOT/build/venv-configure.log"; exit 1; }
fi
cmake --build "$BUILD_DIR" -j2 >"$ROOT/build/venv-build.log" 2>&1 || {
  tail -n 60 "$ROOT/build/venv-build.log"; exit 1; }
(cd "$BUILD_DIR" && cmake --install .) >"$ROOT/build/venv-install.log" 2>&1 || {
  tail -n 30 "$ROOT/build/venv-install.log"; exit 1; }

# --- 5. environment file ---------------------------------------------------------------------------
bash "$ROOT/scripts/write_env.sh" "$ROOT" "$VENV"
log "ready in $(( $(date +%s) - START )) s; use it with: . env.sh"
