"""SimWorld: reset bounds, determinism, clamping, the wrist camera (pose, image, intrinsics) and the scene."""

import itertools
import math

import mujoco
import numpy as np
import pytest

from so101_contract.joints import GRIPPER, NUM_JOINTS
from so101_driver.sim.scene import CUBE_GEOM, WRIST_CAMERA, SceneConfig, build_scene
from so101_driver.sim.world import SimConfig, SimWorld

CFG = SimConfig()


@pytest.fixture(scope="module")
def world():
    w = SimWorld(CFG, seed=0)
    yield w
    w.close()


def red_mask(image: np.ndarray) -> np.ndarray:
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return (r > 60) & (r > 2 * g + 20) & (r > 2 * b + 20)


def project(world: SimWorld, points: np.ndarray) -> np.ndarray:
    """Pixel (u, v) of base_link points in the wrist image with camera_intrinsics and the MuJoCo camera pose."""
    fx, fy, cx, cy = world.camera_intrinsics()
    cam = world.model.camera(WRIST_CAMERA).id
    pos, rot = world.data.cam_xpos[cam], world.data.cam_xmat[cam].reshape(3, 3)
    v = (points - pos) @ rot  # camera frame: x right, y up, looking along -z
    return np.stack([cx + fx * v[:, 0] / -v[:, 2], cy - fy * v[:, 1] / -v[:, 2]], axis=1)


def cube_corners(world: SimWorld) -> np.ndarray:
    position, quat = world.cube_pose()
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, quat)
    half = SceneConfig().cube_size / 2
    offsets = np.array(list(itertools.product((-half, half), repeat=3)))
    return position + offsets @ rot.reshape(3, 3).T


def test_scene_has_arm_actuators_cube_and_camera():
    model = build_scene(SceneConfig())
    assert model.nu == NUM_JOINTS
    assert model.opt.timestep == pytest.approx(0.002)
    assert model.vis.quality.shadowsize == 0
    assert not model.light_castshadow.any()
    cube = model.geom(CUBE_GEOM)
    assert cube.size == pytest.approx([0.015] * 3)
    assert model.body_mass[cube.bodyid[0]] == pytest.approx(0.03)
    assert model.cam_fovy[model.camera(WRIST_CAMERA).id] == pytest.approx(70.5)
    # ctrlrange = joint limits
    for i in range(model.nu):
        joint = model.actuator_trnid[i, 0]
        assert model.actuator_ctrlrange[i] == pytest.approx(model.jnt_range[joint])


def test_scene_config_rejects_bad_values():
    with pytest.raises(ValueError, match="contact_solref"):
        SceneConfig(contact_solref=(0.001, 1.0))
    with pytest.raises(ValueError, match="cube_condim"):
        SceneConfig(cube_condim=2)
    with pytest.raises(ValueError, match="home_noise"):
        SimConfig(home_noise=-0.01)


def test_wrist_camera_matches_the_urdf_optical_frame(world):
    """The MuJoCo camera is the URDF's wrist_camera_optical_frame turned by pi about x (MuJoCo looks along -z)."""
    world.reset(seed=1)
    q = world.joint_positions()
    position, rotation = world.kinematics.frame_pose(q, "wrist_camera_optical_frame")
    cam = world.model.camera(WRIST_CAMERA).id
    assert world.data.cam_xpos[cam] == pytest.approx(position, abs=1e-6)
    assert world.data.cam_xmat[cam].reshape(3, 3) == pytest.approx(rotation @ np.diag([1.0, -1.0, -1.0]), abs=1e-6)


def test_reset_stays_within_the_configured_bounds(world):
    half = SceneConfig().cube_size / 2
    for seed in range(8):
        state = world.reset(seed=seed)
        tcp = world.tcp_position()
        # IK tolerance 1 mm plus the servo sag under gravity.
        assert np.all(np.abs(tcp - np.array(CFG.home_ee)) <= CFG.home_noise + 0.003), (seed, tcp)
        position, quat = world.cube_pose()
        assert np.array_equal(state["cube_position"], position)
        assert np.all(np.abs(position[:2] - np.array(CFG.cube_center)) <= np.array(CFG.cube_range) + 1e-4)
        assert position[2] == pytest.approx(half, abs=1e-3)  # resting on the table
        assert abs(quat[1]) < 1e-3 and abs(quat[2]) < 1e-3  # upright
        assert abs(2 * math.atan2(quat[3], quat[0])) <= CFG.cube_yaw_range + 1e-3
        assert world.joint_positions()[GRIPPER] == pytest.approx(CFG.gripper_open, abs=0.02)
        assert np.abs(world.joint_velocities()).max() < 0.05  # settled
        assert world.time == 0.0
    # Tool pointing down at the home pose, within the reset's tilt allowance.
    _, rotation = world.kinematics.fk(world.joint_positions())
    assert rotation[2, 2] < math.cos(math.radians(175))


def run_commands(world: SimWorld) -> None:
    q = world.joint_positions()
    for delta in (0.1, -0.2, 0.05):
        world.set_joint_targets(q + delta)
        world.step(0.1)


def test_same_seed_is_bit_identical_and_different_seeds_differ():
    a, b, c = SimWorld(CFG, seed=3), SimWorld(CFG, seed=3), SimWorld(CFG, seed=4)
    try:
        for w in (a, b, c):
            run_commands(w)
        assert np.array_equal(a.joint_positions(), b.joint_positions())
        assert np.array_equal(a.joint_velocities(), b.joint_velocities())
        for x, y in zip(a.cube_pose(), b.cube_pose(), strict=True):
            assert np.array_equal(x, y)
        assert np.array_equal(a.render_wrist(), b.render_wrist())
        assert not np.allclose(a.joint_positions(), c.joint_positions())
        assert not np.allclose(a.cube_pose()[0], c.cube_pose()[0])
        # Reseeding the same world restarts both the random stream and the physics state.
        first = a.reset(seed=7)
        run_commands(a)
        second = a.reset(seed=7)
        assert np.array_equal(first["joint_positions"], second["joint_positions"])
        assert np.array_equal(first["cube_position"], second["cube_position"])
    finally:
        for w in (a, b, c):
            w.close()


def test_joint_targets_are_clamped_to_the_limits(world):
    world.reset(seed=0)
    lower, upper = world.kinematics.lower, world.kinematics.upper
    world.set_joint_targets(upper + 1.0)
    assert world.joint_targets() == pytest.approx(upper)
    world.set_joint_targets(lower - 1.0)
    assert world.joint_targets() == pytest.approx(lower)
    world.set_joint_targets(np.zeros(NUM_JOINTS))
    world.step(0.5)
    q = world.joint_positions()
    assert np.all(q >= lower - 0.02) and np.all(q <= upper + 0.02)
    with pytest.raises(ValueError, match="6 values"):
        world.set_joint_targets(np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        world.set_joint_targets(np.full(NUM_JOINTS, np.nan))


def test_torque_off_goes_limp_and_torque_on_holds_where_it_is():
    w = SimWorld(CFG, seed=2)
    held = w.joint_positions()
    w.set_actuation(False)
    assert not w.actuation_enabled
    w.step(0.5)
    sagged = w.joint_positions()
    assert np.abs(sagged[:3] - held[:3]).max() > 0.05  # gravity wins without the servos
    w.set_actuation(True)
    assert w.actuation_enabled
    assert w.joint_targets() == pytest.approx(w.kinematics.clamp(w.joint_positions()))
    before = w.joint_positions()
    w.step(0.5)
    assert np.abs(w.joint_positions()[:5] - before[:5]).max() < 0.05  # holds the present pose, no jump back
    w.close()


def test_step_advances_whole_timesteps(world):
    world.reset(seed=0)
    world.step(0.1)
    assert world.time == pytest.approx(0.1, abs=1e-9)
    world.step(0.0031)  # rounds to 2 timesteps
    assert world.time == pytest.approx(0.104, abs=1e-9)
    with pytest.raises(ValueError, match="duration"):
        world.step(-0.1)


def test_render_shows_the_red_cube_where_the_intrinsics_project_it(world):
    world.reset(randomize=False)
    image = world.render_wrist()
    assert image.shape == (CFG.camera_height, CFG.camera_width, 3)
    assert image.dtype == np.uint8
    mask = red_mask(image)
    assert mask.sum() > 2000
    # The cube's top face centre projects onto red pixels: intrinsics and the rendered camera agree.
    top = world.cube_pose()[0] + np.array([0.0, 0.0, SceneConfig().cube_size / 2])
    u, v = project(world, top[None])[0]
    assert mask[round(v), round(u)]
    ys, xs = np.nonzero(mask)
    uv = project(world, cube_corners(world))
    assert xs.min() >= uv[:, 0].min() - 2 and xs.max() <= uv[:, 0].max() + 2
    assert ys.min() >= uv[:, 1].min() - 2 and ys.max() <= uv[:, 1].max() + 2


def test_intrinsics_follow_the_vertical_fov(world):
    fx, fy, cx, cy = world.camera_intrinsics()
    assert fx == fy == pytest.approx(240.0 / math.tan(math.radians(70.5 / 2)))
    assert (cx, cy) == (319.5, 239.5)


def test_cube_is_fully_in_view_from_every_home_pose(world):
    """Corners of the home box x corners of the cube range x both yaw limits: every cube corner projects inside the
    image (analytic); the four cube-range corners are rendered and their red blob stays off the image border."""
    noise, (rx, ry), yaw_max = CFG.home_noise, CFG.cube_range, CFG.cube_yaw_range
    home, center = np.array(CFG.home_ee), np.array(CFG.cube_center)
    for sx, sy in itertools.product((-1, 1), repeat=2):
        cube_xy = center + np.array([sx * rx, sy * ry])
        for home_offset in itertools.product((-noise, noise), repeat=3):
            for yaw in (-yaw_max, yaw_max):
                world.reset_to(home + np.array(home_offset), cube_xy, yaw)
                uv = project(world, cube_corners(world))
                assert uv[:, 0].min() > 0 and uv[:, 0].max() < CFG.camera_width - 1, (cube_xy, home_offset, yaw)
                assert uv[:, 1].min() > 0 and uv[:, 1].max() < CFG.camera_height - 1, (cube_xy, home_offset, yaw)
        # Render with the home offset that pushes the cube furthest towards this corner of the image.
        world.reset_to(home + np.array([-sx * noise, -sy * noise, noise]), cube_xy, sx * sy * yaw_max)
        mask = red_mask(world.render_wrist())
        assert mask.sum() > 1000, cube_xy
        assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()), cube_xy


def test_close_frees_the_renderer_and_rendering_resumes():
    w = SimWorld(CFG, seed=0)
    first = w.render_wrist()
    w.close()
    assert np.array_equal(w.render_wrist(), first)
    w.close()
