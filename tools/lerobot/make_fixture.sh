#!/usr/bin/env bash
# Makes the LeRobot reference datasets: simulated SO-101 frames (project venv) written by LeRobot's own writer
# (LeRobot venv) in both body-joint units LeRobot has used, DEGREES (>= 0.4.4) and RANGE_M100_100 (<= 0.4.3).
#
#   tools/lerobot/make_fixture.sh OUT [FRAMES_NPZ]
#
# OUT receives so101_degrees/ and so101_range_m100/ (LeRobotDataset v3.0 folders), truth.npz (ticks, true radians,
# lengths, fps, calibration; no images) and calibration_follower.json. The frames with images (~70 MB) go to
# FRAMES_NPZ when given, else to a temporary file. The committed fixture is this script's output with
# OUT=src/so101_bringup/test/fixtures/lerobot (after `make build` and scripts/lerobot_venv.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FIXTURE="$ROOT/src/so101_bringup/test/fixtures/lerobot"
[ $# -ge 1 ] || { echo "usage: $0 OUT [FRAMES_NPZ]" >&2; exit 2; }
OUT="$(mkdir -p "$1" && cd "$1" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
FRAMES="${2:-$work/frames.npz}"
LEROBOT_PYTHON="${SO101_LEROBOT_VENV:-$ROOT/.venv-lerobot}/bin/python"
[ -x "$LEROBOT_PYTHON" ] || { echo "make_fixture: no LeRobot venv; run scripts/lerobot_venv.sh" >&2; exit 2; }

# The project venv and the built workspace (the simulation) for the frames.
set +u
source "$ROOT/activate.sh" >/dev/null || exit 1
set -u
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST  # nothing here starts ROS; kept on loopback should anything do so

[ "$OUT" = "$FIXTURE" ] || cp "$FIXTURE/calibration_follower.json" "$OUT/calibration_follower.json"
python "$ROOT/tools/lerobot/make_sim_frames.py" --calibration "$OUT/calibration_follower.json" --out "$FRAMES" \
  --truth "$OUT/truth.npz"
for norm in degrees range_m100_100; do
  name="so101_${norm%_100}"
  rm -rf "${OUT:?}/$name"
  "$LEROBOT_PYTHON" "$ROOT/tools/lerobot/write_so101_dataset.py" --frames "$FRAMES" --out "$OUT/$name" \
    --norm "$norm" --repo-id "so101-hilserl/$name" >"$work/write.log" 2>&1 || {
    cat "$work/write.log" >&2
    exit 1
  }
  chmod -R a+rX "$OUT/$name"  # LeRobot leaves its mp4 owner-only (a temporary file moved into place)
  tail -n 1 "$work/write.log"
done
