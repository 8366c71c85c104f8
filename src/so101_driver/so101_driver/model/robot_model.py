"""Where the project's SO-101 URDF lives, installed or in the source tree.

Kinematics, the FK node and the simulation all load the same file; this module is the one place that finds it, so
a colcon install, a symlink install and a plain source checkout all work without a hard-coded path.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_NAME = "so101_driver"
URDF_FILE_NAME = "so101.urdf"


def _installed_urdf() -> Path | None:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:  # no ament index at all: plain Python checkout
        return None
    try:
        return Path(get_package_share_directory(PACKAGE_NAME)) / "urdf" / URDF_FILE_NAME
    except (PackageNotFoundError, LookupError, ValueError):
        return None


def _source_tree_urdf() -> Path:
    return Path(__file__).resolve().parents[1] / "urdf" / URDF_FILE_NAME


def default_urdf_path() -> Path:
    """The SO-101 URDF: the installed share file if the package is installed, else the source-tree file."""
    candidates = [p for p in (_installed_urdf(), _source_tree_urdf()) if p is not None]
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"the SO-101 URDF was not found (tried {tried}); build/install so101_driver or pass urdf_path explicitly"
    )


def resolve_urdf_path(path: str | Path | None) -> Path:
    """``None`` or ``""`` means the default URDF; anything else must name an existing file."""
    if path is None or str(path) == "":
        return default_urdf_path()
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise FileNotFoundError(f"urdf_path {str(path)!r} does not exist; give an existing URDF file or '' for default")
    return resolved
