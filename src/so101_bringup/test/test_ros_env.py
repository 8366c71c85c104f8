import pytest

from so101_bringup.ros_env import RosEnvironmentError, node_environment


def test_defaults_keep_dds_on_loopback():
    env = node_environment({}, domain_id=42)
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert env["ROS_DOMAIN_ID"] == "42"
    assert env["MUJOCO_GL"] == "egl"


def test_user_choice_of_discovery_range_is_respected():
    env = node_environment({"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET", "ROS_DOMAIN_ID": "7"})
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET" and env["ROS_DOMAIN_ID"] == "7"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ROS_DOMAIN_ID": "seven"}, "not an integer"),
        ({"ROS_DOMAIN_ID": "150"}, "outside 0..101"),
        ({"ROS_AUTOMATIC_DISCOVERY_RANGE": "localhost"}, "not one of"),
    ],
)
def test_bad_values_are_named(environ, message):
    with pytest.raises(RosEnvironmentError, match=message):
        node_environment(environ)
