#!/usr/bin/env bash
# `make test` after the build: colcon test of every package, the workspace tool tests, ruff, then the count.
# The last line printed is `N passed, N failed, N skipped`; the exit code is non-zero on any failure.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
set +u; source ./activate.sh || exit 1; set -u
# DDS stays on loopback; each test process then claims its own ROS_DOMAIN_ID (so101_testing's pytest plugin).
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export PYTHONDONTWRITEBYTECODE=1

packages=$(colcon list --names-only --base-paths src | sort)
rm -rf build/*/pytest.xml build/*/test_results build/workspace-tests.xml

# colcon test exits 0 when tests fail (they are counted from the XML below); non-zero means the run itself broke.
# One package at a time: graph tests measure rates, and this machine has 2 cores.
timeout --kill-after=30 "${SO101_TEST_TIMEOUT_S:-3600}" \
  colcon test --base-paths src --executor sequential --event-handlers console_cohesion+ \
  ${COLCON_TEST_ARGS:-}
colcon_rc=$?

# tests/ has no pytest config of its own: the launch_testing plugins (see src/*/setup.cfg) are blocked here too.
timeout --kill-after=10 600 python -m pytest tests -q -p no:cacheprovider -p no:launch_testing -p no:launch_ros \
  -p no:launch_pytest --junit-xml=build/workspace-tests.xml
ruff check . && ruff format --check . >/dev/null
ruff_rc=$?
[ $ruff_rc -ne 0 ] && echo "ruff: run 'make format' to fix formatting, and fix the errors listed above"

echo
echo "test summary (colcon test exit $colcon_rc):"
python scripts/test_summary.py --build-base build --expect $packages --junit build/workspace-tests.xml \
  --check "ruff=$ruff_rc" --check "colcon-test=$colcon_rc"
