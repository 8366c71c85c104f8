# Source me:  source ./activate.sh
# Gives this shell the project's ROS 2 Jazzy (an install or the venv's wheels), the venv, and the built workspace
# (install/setup.bash, after `make build`). DDS discovery stays on this machine unless you chose otherwise.
_so101_root="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
_so101_venv="${SO101_VENV:-$_so101_root/.venv}"

if [ ! -f "$_so101_venv/so101-ros-source.sh" ]; then
  echo "so101-hilserl: no environment yet; run 'make setup' (or 'make build') in $_so101_root first" >&2
  return 1 2>/dev/null || exit 1
fi
. "$_so101_venv/so101-ros-source.sh"

if [ "$SO101_ROS_SOURCE_KIND" = "system" ] && [ -n "$SO101_ROS_SETUP" ] && [ -z "${AMENT_PREFIX_PATH:-}" ]; then
  . "$SO101_ROS_SETUP"
fi
. "$_so101_venv/bin/activate"
if [ "$SO101_ROS_SOURCE_KIND" = "pypi" ]; then
  # The wheels install ROS's share/ (CMake configs, ament index) into the venv prefix.
  case ":${AMENT_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *) export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}";; esac
  case ":${CMAKE_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *) export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}";; esac
fi
if [ -z "${SO101_ACTIVATE_SKIP_INSTALL:-}" ] && [ -f "$_so101_root/install/setup.bash" ]; then
  . "$_so101_root/install/setup.bash"
fi
# Multicast discovery would leave this machine; on a robot network set ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET yourself.
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
# Large messages (camera images, policy weights) need a bigger shared-memory segment (see the file's comment).
export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-$_so101_root/src/so101_bringup/config/fastdds.xml}"
unset _so101_root _so101_venv
