#!/usr/bin/env bash
# `make test-lerobot`: the LeRobotDataset checks that need the real LeRobot, run from its own venv (.venv-lerobot,
# scripts/lerobot_venv.sh) and never imported into the ROS venv.
#   writer:    fresh simulated frames -> LeRobot's writer (DEGREES and RANGE_M100_100) -> LeRobot reads them back ->
#              the values equal LeRobot's formulas on the ticks and the video matches the renders
#   fixture:   the committed fixture (src/so101_bringup/test/fixtures/lerobot) still opens with the pinned LeRobot
#              and still holds what its truth.npz says
#   export:    the project's exporter writes a dataset that LeRobot opens and reads back as the run recorded it
# The last line is `test-lerobot: N passed, N failed, N skipped`. Exit 0 only when nothing failed. Where the LeRobot
# venv cannot be built the only line of the verdict is `test-lerobot: skipped: <why>` and the exit code is 3: a
# conformance check that did not run must not pass.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST  # nothing here starts ROS; kept on loopback should anything do so
export PYTHONDONTWRITEBYTECODE=1
FIXTURE="$ROOT/src/so101_bringup/test/fixtures/lerobot"
TOOLS="$ROOT/tools/lerobot"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# LeRobot's `datasets` caches an Arrow copy of every parquet file it loads: keep this run's copies in its own folder.
export HF_DATASETS_CACHE="$work/hf-datasets" HF_LEROBOT_HOME="$work/hf-lerobot"

# 1. The LeRobot venv (seconds when it is already built).
scripts/lerobot_venv.sh | tee "$work/venv.log"
venv_rc=${PIPESTATUS[0]}
if [ "$venv_rc" -eq 3 ]; then
  echo "test-lerobot: skipped: $(grep -m 1 '^cannot build the LeRobot venv because' "$work/venv.log")"
  exit 3
elif [ "$venv_rc" -ne 0 ]; then
  echo "test-lerobot: failed: scripts/lerobot_venv.sh exited $venv_rc (output above)"
  exit 1
fi
LEROBOT_PYTHON="$(tail -n 1 "$work/venv.log")"

# The project venv and the built workspace (the simulation, the project's calibration code).
set +u
source ./activate.sh >/dev/null || exit 1
set -u

passed=0
failed=0
skipped=0
run_check() { # NAME FUNCTION: one check; its output is shown, its verdict counted
  local name="$1"
  echo "--- $name"
  "$2"
  case $? in
    0) passed=$((passed + 1)) && echo "--- $name: passed" ;;
    77) skipped=$((skipped + 1)) && echo "--- $name: skipped" ;;
    *) failed=$((failed + 1)) && echo "--- $name: FAILED" ;;
  esac
}

# read_dataset.py on DATASET into DUMP, then the values against TRUTH in NORM (FRAMES: compare the video too).
read_and_check() { # DATASET DUMP TRUTH NORM [FRAMES]
  "$LEROBOT_PYTHON" "$TOOLS/read_dataset.py" "$1" --out "$2" 2>"$work/read.err" || {
    tail -n 1 "$work/read.err"
    return 1
  }
  python "$TOOLS/check_fixture_values.py" --dump "$2" --truth "$3" --norm "$4" ${5:+--frames "$5"}
}

check_writer() {
  "$TOOLS/make_fixture.sh" "$work/fresh" "$work/frames.npz" || return 1
  read_and_check "$work/fresh/so101_degrees" "$work/degrees.npz" "$work/fresh/truth.npz" degrees \
    "$work/frames.npz" || return 1
  read_and_check "$work/fresh/so101_range_m100" "$work/range.npz" "$work/fresh/truth.npz" range_m100_100 \
    "$work/frames.npz"
}

check_committed_fixture() {
  read_and_check "$FIXTURE/so101_degrees" "$work/fixture_degrees.npz" "$FIXTURE/truth.npz" degrees || return 1
  read_and_check "$FIXTURE/so101_range_m100" "$work/fixture_range.npz" "$FIXTURE/truth.npz" range_m100_100
}

# The project's exporter writes a session (the sim graph's demonstrations, a committed journal); LeRobot must open it
# and return what the run recorded.
check_export() {
  local run="$ROOT/src/so101_bringup/test/fixtures/sim_demos"
  python -m so101_bringup.lerobot_datasets.export_run "$run" "$work/export" 2>/dev/null || return 1
  read_dataset_dump "$work/export" "$work/export.npz" || return 1
  python "$TOOLS/check_export.py" --journal "$run/journal" --dump "$work/export.npz"
}

read_dataset_dump() { # DATASET DUMP
  "$LEROBOT_PYTHON" "$TOOLS/read_dataset.py" "$1" --out "$2" 2>"$work/read.err" || {
    tail -n 1 "$work/read.err"
    return 1
  }
}

run_check "writer: LeRobot's writer and reader agree with LeRobot's formulas" check_writer
run_check "fixture: the committed datasets open and hold their truth" check_committed_fixture
run_check "export: LeRobot opens the project's export" check_export

echo
echo "test-lerobot: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
