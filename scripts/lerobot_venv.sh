#!/usr/bin/env bash
# Creates .venv-lerobot: a venv of its own holding LeRobot (the version pinned in requirements/lerobot.txt), used only
# as a separate interpreter by tools/lerobot/ to write and read LeRobotDataset folders with LeRobot's own code.
# LeRobot never goes into the ROS venv (.venv): it pins torch, numpy and others differently and needs Python >= 3.12.
#
#   scripts/lerobot_venv.sh            # idempotent: returns in seconds when the venv matches the pin
#   SO101_LEROBOT_PYTHON=/path/python3.13 scripts/lerobot_venv.sh    # choose the interpreter
#
# Exit 0: ready (the last line is the venv's python). Exit 3: the venv cannot be built here; the last line is
# "cannot build the LeRobot venv because <reason>" (no Python >= 3.12, no package registry). Exit 1: the install
# itself failed (pip's output above says why).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SO101_LEROBOT_VENV:-$ROOT/.venv-lerobot}"
REQUIREMENTS="$ROOT/requirements/lerobot.txt"
STAMP="$VENV/.so101-lerobot-requirements"
# Newest first: the Pythons LeRobot >= 0.5 supports (requires_python >= 3.12).
PYTHON_VERSIONS=(3.13 3.12)
CANNOT_BUILD=3

cannot_build() {
  echo "cannot build the LeRobot venv because $*"
  exit "$CANNOT_BUILD"
}

# True when "$1" runs and is Python >= 3.12 (a pyenv shim for a version not selected does not run).
usable_python() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

# Sets PYTHON: SO101_LEROBOT_PYTHON, else the newest X.Y that runs, as pythonX.Y on PATH or under pyenv's root.
find_python() {
  if [ -n "${SO101_LEROBOT_PYTHON:-}" ]; then
    usable_python "$SO101_LEROBOT_PYTHON" && PYTHON="$(command -v "$SO101_LEROBOT_PYTHON")" && return 0
    cannot_build "SO101_LEROBOT_PYTHON=$SO101_LEROBOT_PYTHON does not run as Python >= 3.12"
  fi
  local pyenv_root version candidate
  pyenv_root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
  for version in "${PYTHON_VERSIONS[@]}"; do
    for candidate in "$(command -v "python$version")" \
      "$(ls -d "$pyenv_root"/versions/"$version".*/bin/"python$version" 2>/dev/null | sort -V | tail -n 1)"; do
      [ -n "$candidate" ] && usable_python "$candidate" && PYTHON="$candidate" && return 0
    done
  done
  cannot_build "no Python >= 3.12 runs here (looked for $(printf 'python%s ' "${PYTHON_VERSIONS[@]}")on PATH and" \
    "under pyenv's root; set SO101_LEROBOT_PYTHON to one)"
}

requirements_hash() { sha256sum "$REQUIREMENTS" | cut -d' ' -f1; }

# Already built for this pin: nothing to do.
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(requirements_hash)" ] &&
  "$VENV/bin/python" -c "import lerobot" 2>/dev/null; then
  echo "$VENV/bin/python"
  exit 0
fi

find_python
PIN="$(grep -E '^[[:space:]]*lerobot' "$REQUIREMENTS" | head -n 1 | sed 's/\[[^]]*\]//; s/[[:space:]]//g')"
[ -n "$PIN" ] || { echo "lerobot venv: no lerobot pin in $REQUIREMENTS" >&2; exit 1; }
echo "lerobot venv: $VENV with $("$PYTHON" -V 2>&1) ($PYTHON), $PIN and its dependencies (a few GB, minutes)"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV" || cannot_build "$PYTHON cannot create a venv (python -m venv failed)"
fi
# The registry must answer for the pinned LeRobot before the long install (a quick, small download).
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
if ! probe_log="$("$VENV/bin/python" -m pip download --no-deps --quiet --timeout 20 --retries 1 --dest "$probe" \
  "$PIN" 2>&1)"; then
  reason="$(printf '%s\n' "$probe_log" | grep -E 'ERROR|Error' | tail -n 1)"
  cannot_build "pip cannot fetch $PIN from the package registry (${reason:-no answer})"
fi

rm -f "$STAMP"
# The machine's pip settings (indexes, find-links, constraints) apply; none of them conflicts with LeRobot's pins.
# (Less the warnings of a local file:// index that lacks a package: one per package, and they say nothing here.)
"$VENV/bin/python" -m pip install --quiet --progress-bar off -r "$REQUIREMENTS" 2>&1 |
  grep -v "^WARNING: Location 'file://.*' is ignored"
[ "${PIPESTATUS[0]}" -eq 0 ] || {
  echo "lerobot venv: pip install -r $REQUIREMENTS failed (output above); rerun scripts/lerobot_venv.sh" >&2
  exit 1
}
"$VENV/bin/python" -c "import lerobot.datasets.lerobot_dataset, lerobot.motors.feetech" || {
  echo "lerobot venv: LeRobot installed but does not import (output above)" >&2
  exit 1
}
requirements_hash >"$STAMP"
echo "$VENV/bin/python"
