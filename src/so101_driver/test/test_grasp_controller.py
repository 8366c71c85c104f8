"""ScriptedGrasp: step limits and phases; closed-loop grasps in SimWorld; grasp_success's negatives."""

import mujoco
import numpy as np
import pytest

from so101_contract.joints import GRIPPER
from so101_driver.sim.grasp_controller import (
    APPROACH,
    CLOSE,
    DESCEND,
    HOLD,
    TOOL_DOWN_ROTATION,
    GraspConfig,
    ScriptedGrasp,
)
from so101_driver.sim.scene import CUBE_GEOM, FIXED_FINGER_GEOM, JAW_FINGER_GEOM
from so101_driver.sim.world import SimConfig, SimWorld

CUBE = np.array([0.26, 0.01, 0.015])


@pytest.fixture(scope="module")
def world():
    w = SimWorld(SimConfig(), seed=0)
    yield w
    w.close()


def test_grasp_point_puts_the_cube_between_the_fingers():
    controller = ScriptedGrasp()
    offset = np.array(GraspConfig().grasp_offset)
    # Tool down (home): the TCP goes behind the cube (towards the base) and below its centre.
    tcp = controller.grasp_tcp_position(CUBE)
    assert tcp + TOOL_DOWN_ROTATION @ offset == pytest.approx(CUBE)
    assert tcp[0] < CUBE[0] - 0.015 and tcp[2] < CUBE[2]
    # A given TCP rotation is used: turned 90 degrees about z, the offset turns with it.
    rot_z = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    rotation = rot_z @ TOOL_DOWN_ROTATION
    tcp = controller.grasp_tcp_position(CUBE, rotation)
    assert tcp + rotation @ offset == pytest.approx(CUBE)
    assert tcp[1] < CUBE[1] - 0.015


def test_targets_are_limited_per_axis_and_phases_advance():
    cfg = GraspConfig()
    controller = ScriptedGrasp(cfg)
    far = np.array([0.25, -0.1, 0.15])
    target, gripper, phase = controller.act(far, cfg.gripper_open, CUBE)
    assert phase == APPROACH and gripper == cfg.gripper_open
    assert np.abs(target - far).max() == pytest.approx(cfg.max_step)
    # At the approach point -> descend, at the grasp point -> close (gripper closes), then hold after close_calls.
    grasp = controller.grasp_tcp_position(CUBE)
    _, _, phase = controller.act(grasp + np.array([0.0, 0.0, cfg.approach_height]), cfg.gripper_open, CUBE)
    assert phase == DESCEND
    target, gripper, phase = controller.act(grasp, cfg.gripper_open, CUBE)
    assert phase == CLOSE and gripper == cfg.gripper_closed
    assert target == pytest.approx(grasp)
    for _ in range(cfg.close_calls):
        _, gripper, phase = controller.act(grasp, 0.5, CUBE)
    assert phase == HOLD and gripper == cfg.gripper_closed
    # A jaw that closed on air while holding: open and start over.
    _, gripper, phase = controller.act(grasp, 0.0, CUBE)
    assert phase == APPROACH and gripper == cfg.gripper_open
    controller.reset()
    assert controller.phase == APPROACH


def drive(world: SimWorld, controller: ScriptedGrasp, cube_position, steps: int, gripper=None) -> str:
    """Closed loop toward ``cube_position`` (not necessarily the real cube); ``gripper`` overrides the jaw target."""
    phase = ""
    for _ in range(steps):
        q = world.joint_positions()
        tcp, rotation = world.kinematics.fk(q)
        target, jaw, phase = controller.act(tcp, q[GRIPPER], cube_position, rotation)
        command = world.kinematics.ik_step(q, target)
        command[GRIPPER] = jaw if gripper is None else gripper
        world.set_joint_targets(command)
        world.step(0.1)
    return phase


def test_open_gripper_around_the_cube_is_not_a_grasp_until_it_closes(world):
    world.reset_to(np.array([0.24, 0.0, 0.07]), np.array([0.26, 0.0]))
    controller = ScriptedGrasp()
    cube = world.cube_pose()[0]
    phase = ""
    for _ in range(30):
        phase = drive(world, controller, cube, 1, gripper=GraspConfig().gripper_open)
        if phase in (CLOSE, HOLD):
            break
    assert phase in (CLOSE, HOLD)
    drive(world, controller, cube, 5, gripper=GraspConfig().gripper_open)
    # The cube sits between the fingers (towards the jaw from the fixed finger's inner face), the jaw is open.
    position, rotation = world.kinematics.frame_pose(world.joint_positions(), "gripper_link")
    cube_in_gripper = rotation.T @ (world.cube_pose()[0] - position)
    assert -0.008 < cube_in_gripper[0] < 0.05 and abs(cube_in_gripper[1]) < 0.01
    assert world.joint_positions()[GRIPPER] > 0.9
    assert not world.grasp_success()
    drive(world, controller, cube, 8)  # now let the controller close
    assert world.grasp_success()


def place_cube(world: SimWorld, offset_in_gripper: np.ndarray) -> None:
    """Teleport the cube (kept level, aligned with the gripper) to an offset from gripper_link; contacts updated."""
    position, rotation = world.kinematics.frame_pose(world.joint_positions(), "gripper_link")
    point = position + rotation @ offset_in_gripper
    yaw = np.arctan2(rotation[1, 0], rotation[0, 0])
    adr = world.model.jnt_qposadr[world.model.joint("cube_free").id]
    world.data.qpos[adr : adr + 7] = [point[0], point[1], 0.015, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
    world.data.qvel[:] = 0.0
    mujoco.mj_forward(world.model, world.data)


def cube_contacts(world: SimWorld) -> set[str]:
    cube = world.model.geom(CUBE_GEOM).id
    pairs = [(c.geom1, c.geom2) for c in world.data.contact[: world.data.ncon]]
    return {world.model.geom(g).name for pair in pairs if cube in pair for g in pair if g != cube}


def test_grasp_needs_both_fingers_and_a_squeeze(world):
    world.reset_to(np.array([0.24, 0.0, 0.07]), np.array([0.26, 0.0]))
    controller = ScriptedGrasp()
    drive(world, controller, world.cube_pose()[0], 25)
    assert world.grasp_success()
    position, rotation = world.kinematics.frame_pose(world.joint_positions(), "gripper_link")
    held = rotation.T @ (world.cube_pose()[0] - position)
    # Same jaw angle and squeeze, but the cube touches only the outside of the fixed finger.
    place_cube(world, held + np.array([-0.031 - 0.008, 0.0, 0.0]))
    assert FIXED_FINGER_GEOM in cube_contacts(world) and JAW_FINGER_GEOM not in cube_contacts(world)
    assert not world.grasp_success()
    # ... or only the side of the jaw.
    place_cube(world, held + np.array([0.02, 0.026, 0.0]))
    assert JAW_FINGER_GEOM in cube_contacts(world) and FIXED_FINGER_GEOM not in cube_contacts(world)
    assert not world.grasp_success()
    place_cube(world, held)
    assert world.grasp_success()
    # Both fingers touch, but the servo is relaxed at the jaw's angle: resting fingers are not a grasp.
    targets = world.joint_targets()
    targets[GRIPPER] = world.joint_positions()[GRIPPER]
    world.set_joint_targets(targets)
    world.step(0.002)
    assert {FIXED_FINGER_GEOM, JAW_FINGER_GEOM} <= cube_contacts(world)
    assert not world.grasp_success()


def test_gripper_closed_on_air_next_to_the_cube_is_not_a_grasp(world):
    world.reset_to(np.array([0.24, 0.0, 0.07]), np.array([0.26, 0.0]))
    cube = world.cube_pose()[0]
    beside = cube + np.array([0.0, 0.03, 0.0])  # fingers come down right beside the cube
    controller = ScriptedGrasp()
    phase = drive(world, controller, beside, 26)  # (after a miss the jaw reopens before the next descent)
    assert phase == HOLD
    assert world.joint_positions()[GRIPPER] < 0.1  # closed on air
    assert np.linalg.norm(world.cube_pose()[0][:2] - world.tcp_position()[:2]) < 0.05  # right next to the cube
    assert not world.grasp_success()

    # Worst case: the cube pressed against the sides of both closed fingers touches the fixed finger and the jaw,
    # the servo squeezes hard (target at the lower limit), yet the jaw is shut: not a grasp.
    targets = world.joint_targets()
    targets[GRIPPER] = world.kinematics.lower[GRIPPER]
    world.set_joint_targets(targets)
    world.step(0.3)
    place_cube(world, np.array([-0.008, 0.012 + 0.015 - 0.0005, -0.08]))
    touching = cube_contacts(world)
    assert {FIXED_FINGER_GEOM, JAW_FINGER_GEOM} <= touching
    assert world.data.actuator_force[world.model.actuator("gripper").id] < -1.0
    assert not world.grasp_success()
