import numpy as np
import pytest

from so101_driver.sim.curriculum import STAGE_HEIGHT_ABOVE_GRASP, STAGES, check_stage, reset_stage
from so101_driver.sim.grasp_controller import ScriptedGrasp
from so101_driver.sim.world import SimConfig, SimWorld


@pytest.fixture(scope="module")
def world():
    return SimWorld(SimConfig(camera_width=32, camera_height=24), seed=0)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_a_stage_starts_the_open_gripper_its_height_above_the_grasp_point(world, stage):
    reset_stage(world, stage, np.random.default_rng(5))
    cube, _ = world.cube_pose()
    expected = ScriptedGrasp().grasp_tcp_position(cube) + np.array([0.0, 0.0, STAGE_HEIGHT_ABOVE_GRASP[stage]])
    assert np.allclose(world.tcp_position(), expected, atol=0.005)  # IK to the millimetre, the cube settles
    assert np.all(np.abs(cube[:2] - np.asarray(world.config.cube_center)) <= 0.02 + 1e-3)
    assert not world.grasp_success()


@pytest.mark.parametrize("stage", STAGES)
def test_the_same_stream_gives_the_same_start(world, stage):
    first = reset_stage(world, stage, np.random.default_rng(11))
    again = reset_stage(world, stage, np.random.default_rng(11))
    other = reset_stage(world, stage, np.random.default_rng(12))
    assert np.array_equal(first["cube_position"], again["cube_position"])
    assert not np.array_equal(first["cube_position"], other["cube_position"])


def test_stage_zero_is_the_robots_reset_and_unknown_stages_are_refused(world):
    cube = reset_stage(world, 0, np.random.default_rng(3))["cube_position"]
    assert np.max(np.abs(cube[:2] - np.asarray(world.config.cube_center))) <= np.max(world.config.cube_range) + 1e-3
    with pytest.raises(ValueError, match=r"stage must be one of \(0, 1, 2, 3\)"):
        check_stage(4)
