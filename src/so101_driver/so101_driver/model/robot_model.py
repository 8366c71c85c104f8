"""Where the project's SO-101 description files live, installed or in the source tree.

Kinematics, the FK node and the simulation all load the same URDF, and bringup adds the same ros2_control fragment
to it; this module is the one place that finds them, so a colcon install, a symlink install and a plain source
checkout all work without a hard-coded path. Both are data files of the package (``share/so101_driver/urdf/``), as
ros2_control_demos keeps a robot's description and its ``<ros2_control>`` block together.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_NAME = "so101_driver"
URDF_FILE_NAME = "so101.urdf"
# The <ros2_control> element (topic-based hardware over follower/joint_states and follower/joint_commands) that
# bringup inserts into the URDF with use_ros2_control:=true.
ROS2_CONTROL_FILE_NAME = "so101.ros2_control.urdf"


def _installed(name: str) -> Path | None:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:  # no ament index at all: plain Python checkout
        return None
    try:
        return Path(get_package_share_directory(PACKAGE_NAME)) / "urdf" / name
    except (PackageNotFoundError, LookupError, ValueError):
        return None


def _source_tree(name: str) -> Path:
    # this file is so101_driver/model/robot_model.py in the package's source directory, whose urdf/ sits beside
    # the Python package
    return Path(__file__).resolve().parents[2] / "urdf" / name


def _find(name: str, what: str) -> Path:
    """The installed share file if the package is installed, else the source-tree file (one added since the last
    colcon build is found there too)."""
    candidates = [p for p in (_installed(name), _source_tree(name)) if p is not None]
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(f"{what} was not found (tried {tried}); build/install so101_driver")


def default_urdf_path() -> Path:
    """The SO-101 URDF: the installed share file if the package is installed, else the source-tree file."""
    try:
        return _find(URDF_FILE_NAME, "the SO-101 URDF")
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{err} or pass urdf_path explicitly") from None


def ros2_control_path() -> Path:
    """The SO-101 ``<ros2_control>`` fragment (a ``<robot>`` holding one ``<ros2_control>`` element)."""
    return _find(ROS2_CONTROL_FILE_NAME, "the SO-101 ros2_control fragment")


def resolve_urdf_path(path: str | Path | None) -> Path:
    """``None`` or ``""`` means the default URDF; anything else must name an existing file (FileNotFoundError, one
    line naming it and the fix: the nodes refuse their urdf_path parameter with it)."""
    if path is None or str(path) == "":
        return default_urdf_path()
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise FileNotFoundError(
            f"urdf_path={str(path)!r}: no such file; give an existing URDF file, or '' for the project's "
            f"{URDF_FILE_NAME}"
        )
    return resolved
