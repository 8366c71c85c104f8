"""scripts/ros_source.py: which ROS 2 Jazzy the setup uses."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from ros_source import RosSourceError, detect

JAZZY_SETUP = Path("/opt/ros/jazzy/setup.bash")


def exists_only(*present):
    return lambda path: Path(path) in present


def test_no_ros_anywhere_uses_pypi():
    source = detect({}, exists_only())
    assert source.kind == "pypi"


def test_installed_jazzy_is_found():
    source = detect({}, exists_only(JAZZY_SETUP))
    assert source.kind == "system" and source.setup_script == str(JAZZY_SETUP)


def test_sourced_jazzy_is_used_as_is():
    source = detect({"ROS_DISTRO": "jazzy", "AMENT_PREFIX_PATH": "/opt/ros/jazzy"}, exists_only())
    assert source.kind == "system" and source.setup_script == ""


def test_sourced_other_distro_is_refused_with_the_fix():
    with pytest.raises(RosSourceError, match="'humble' sourced.*SO101_ROS_SOURCE=pypi"):
        detect({"ROS_DISTRO": "humble", "AMENT_PREFIX_PATH": "/opt/ros/humble"}, exists_only())


def test_forcing():
    assert detect({"SO101_ROS_SOURCE": "pypi"}, exists_only(JAZZY_SETUP)).kind == "pypi"
    with pytest.raises(RosSourceError, match="does not exist"):
        detect({"SO101_ROS_SOURCE": "system"}, exists_only())
    with pytest.raises(RosSourceError, match="not one of"):
        detect({"SO101_ROS_SOURCE": "conda"}, exists_only())


def test_shell_output_is_evaluable():
    line = detect({}, exists_only(JAZZY_SETUP)).as_shell()
    assert line.startswith("ROS_SOURCE=system ROS_SETUP='/opt/ros/jazzy/setup.bash'")
