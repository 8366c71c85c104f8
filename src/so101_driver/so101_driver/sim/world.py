"""SimWorld: the simulated follower arm, cube and wrist camera as plain Python (no ROS), deterministic per seed.

The sim node wraps it for the ROS graph; the bench and the tests drive it directly. One episode: ``reset`` puts the
arm at the home pose by IK (EE target (0.25, 0, 0.07) m + U(+-1 cm) per axis, fingers down, gripper open) and drops
the cube somewhere on the table where the wrist camera sees it; then the caller sets joint targets and steps physics.
Rendering is explicit (``render_wrist``), never a side effect of ``step``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import mujoco
import numpy as np

from so101_contract.joints import GRIPPER, JOINT_NAMES, NUM_JOINTS
from so101_driver.model.kinematics import HOME_SEED, TOOL_DOWN, Kinematics
from so101_driver.sim.scene import (
    CUBE_BODY,
    CUBE_GEOM,
    FIXED_FINGER_GEOM,
    JAW_CONNECTOR_GEOM,
    JAW_FINGER_GEOM,
    WRIST_CAMERA,
    SceneConfig,
    build_scene,
)


@dataclass(frozen=True)
class SimConfig:
    """An episode's randomisation and the wrist image size. Defaults keep the whole cube in the wrist image from
    every home pose (test_sim_world renders the corners of the ranges to check)."""

    scene: SceneConfig = field(default_factory=SceneConfig)
    camera_width: int = 640  # px
    camera_height: int = 480  # px
    home_ee: tuple[float, float, float] = (0.25, 0.0, 0.07)  # m, TCP target of the reset in base_link
    home_noise: float = 0.01  # m, uniform per axis around home_ee
    home_ik_tol: float = 1e-3  # m, reset IK must reach the target this closely or reset raises
    cube_center: tuple[float, float] = (0.25, 0.0)  # m, in base_link on the table
    cube_range: tuple[float, float] = (0.04, 0.04)  # m, uniform +- around cube_center in x and y
    cube_yaw_range: float = 0.4  # rad, uniform +- cube rotation about z
    gripper_open: float = 1.0  # rad: wide enough that the open jaw clears a 3 cm cube at the grasp height
    settle_s: float = 0.3  # s of physics after the reset so the arm sags and the cube rests on the table
    # grasp_success: the jaw must have stopped at least this far open (rad; it is ~0.4 on a 3 cm cube, 0 on air)
    # and the gripper servo must be squeezing with at least this torque (N m).
    grasp_min_jaw_angle: float = 0.15
    grasp_min_squeeze: float = 0.05

    def __post_init__(self) -> None:
        if self.camera_width <= 0 or self.camera_height <= 0:
            raise ValueError(f"SimConfig.camera_width/height must be > 0, got {self.camera_width}x{self.camera_height}")
        if self.home_noise < 0:
            raise ValueError(f"SimConfig.home_noise must be >= 0 m, got {self.home_noise}")
        if min(self.cube_range) < 0 or self.cube_yaw_range < 0:
            raise ValueError(
                f"SimConfig.cube_range and cube_yaw_range must be >= 0, got {self.cube_range}, {self.cube_yaw_range}"
            )
        if self.settle_s < 0:
            raise ValueError(f"SimConfig.settle_s must be >= 0 s, got {self.settle_s}")


class SimWorld:
    """MuJoCo physics of the SO-101 grasp scene with the project's kinematics; see the module docstring."""

    def __init__(self, config: SimConfig | None = None, seed: int = 0):
        self.config = config or SimConfig()
        scene = dataclasses.replace(
            self.config.scene,
            offscreen_width=max(self.config.scene.offscreen_width, self.config.camera_width),
            offscreen_height=max(self.config.scene.offscreen_height, self.config.camera_height),
        )
        self.model = build_scene(scene)
        self.data = mujoco.MjData(self.model)
        self.kinematics = Kinematics(scene.urdf_path)
        self._renderer: mujoco.Renderer | None = None

        self._qpos_adr = np.array([self.model.jnt_qposadr[self.model.joint(n).id] for n in JOINT_NAMES])
        self._qvel_adr = np.array([self.model.jnt_dofadr[self.model.joint(n).id] for n in JOINT_NAMES])
        self._actuator_ids = np.array([self.model.actuator(n).id for n in JOINT_NAMES])
        cube_joint = self.model.body(CUBE_BODY).jntadr[0]
        self._cube_qpos_adr = int(self.model.jnt_qposadr[cube_joint])
        self._cube_geom = self.model.geom(CUBE_GEOM).id
        self._fixed_finger_geom = self.model.geom(FIXED_FINGER_GEOM).id
        self._jaw_geoms = {self.model.geom(JAW_FINGER_GEOM).id, self.model.geom(JAW_CONNECTOR_GEOM).id}
        self._ctrl_low = self.model.actuator_ctrlrange[self._actuator_ids, 0].copy()
        self._ctrl_high = self.model.actuator_ctrlrange[self._actuator_ids, 1].copy()
        self._cube_half = float(self.model.geom_size[self._cube_geom][2])

        self.camera_name = WRIST_CAMERA
        self._rng = np.random.default_rng(seed)
        self._start_time = 0.0
        self.reset(seed=seed)

    # ---- episode ---------------------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, randomize: bool = True) -> dict:
        """Arm to the (randomised) home pose, gripper open, cube somewhere on the table; settle physics briefly.

        ``seed`` restarts the random stream (same seed -> bit-identical state); None continues it. With
        ``randomize=False`` the arm goes exactly to home_ee and the cube to cube_center with yaw 0.
        Returns {"joint_positions": (6,), "cube_position": (3,)}.
        """
        cfg = self.config
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        home = np.asarray(cfg.home_ee, dtype=float)
        cube_xy = np.asarray(cfg.cube_center, dtype=float)
        yaw = 0.0
        if randomize:
            home = home + self._rng.uniform(-cfg.home_noise, cfg.home_noise, size=3)
            cube_xy = cube_xy + self._rng.uniform(-1.0, 1.0, size=2) * np.asarray(cfg.cube_range)
            yaw = float(self._rng.uniform(-cfg.cube_yaw_range, cfg.cube_yaw_range))
        return self.reset_to(home, cube_xy, yaw)

    def reset_to(self, tcp_position: np.ndarray, cube_xy: np.ndarray, cube_yaw: float = 0.0) -> dict:
        """Deterministic reset to a given TCP position (fingers down, gripper open) and cube placement on the table.

        ``reset`` draws these from the configured ranges; tests and a reset service can place them directly.
        """
        cfg = self.config
        home = np.asarray(tcp_position, dtype=float)
        cube_xy = np.asarray(cube_xy, dtype=float)
        if home.shape != (3,) or cube_xy.shape != (2,):
            raise ValueError(f"reset_to needs tcp_position (3,) and cube_xy (2,), got {home.shape}, {cube_xy.shape}")
        q, error = self.kinematics.solve_ik(HOME_SEED, home, tool_direction=TOOL_DOWN)
        if error > cfg.home_ik_tol:
            # Fingers exactly down is beyond the wrist_flex limit for part of the home box: keep the position and
            # accept a tilt of a degree or two (the seed system's reset ignored the orientation altogether).
            q, error = self.kinematics.solve_ik(q, home)
        if error > cfg.home_ik_tol:
            raise RuntimeError(f"reset: IK missed the home target {home} by {error:.4f} m; check SimConfig.home_ee")
        q[GRIPPER] = cfg.gripper_open

        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._qpos_adr] = q
        cube_qpos = self.data.qpos[self._cube_qpos_adr : self._cube_qpos_adr + 7]
        cube_qpos[:3] = (cube_xy[0], cube_xy[1], self._cube_half)
        cube_qpos[3:] = (math.cos(cube_yaw / 2), 0.0, 0.0, math.sin(cube_yaw / 2))
        self.data.ctrl[self._actuator_ids] = self._clamp(q)
        mujoco.mj_forward(self.model, self.data)
        self._start_time = self.data.time
        self.step(cfg.settle_s)
        self._start_time = self.data.time  # the episode starts after the settle
        return {"joint_positions": self.joint_positions(), "cube_position": self.cube_pose()[0]}

    def set_joint_targets(self, q: np.ndarray) -> None:
        """Position-servo targets for the 6 joints (JOINT_NAMES order, rad), clamped to the joint limits."""
        q = np.asarray(q, dtype=float)
        if q.shape != (NUM_JOINTS,):
            raise ValueError(f"joint targets must hold {NUM_JOINTS} values {JOINT_NAMES}, got shape {q.shape}")
        if not np.all(np.isfinite(q)):
            raise ValueError(f"joint targets must be finite, got {q}")
        self.data.ctrl[self._actuator_ids] = self._clamp(q)

    def set_actuation(self, enabled: bool) -> None:
        """Servo torque on or off (the torque service). Off: all actuators are disabled and the arm is limp.
        The setting survives ``reset``, like a real bus's torque state.

        On: the targets are first set to the present joint positions, as a real servo bus does before enabling
        torque, so the arm does not jump back to a stale goal.
        """
        if enabled:
            self.data.ctrl[self._actuator_ids] = self._clamp(self.joint_positions())
            self.model.opt.disableflags &= ~int(mujoco.mjtDisableBit.mjDSBL_ACTUATION)
        else:
            self.model.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_ACTUATION)

    @property
    def actuation_enabled(self) -> bool:
        return not self.model.opt.disableflags & int(mujoco.mjtDisableBit.mjDSBL_ACTUATION)

    def joint_targets(self) -> np.ndarray:
        """The servo targets in force (after clamping)."""
        return self.data.ctrl[self._actuator_ids].copy()

    def step(self, duration_s: float) -> None:
        """Advance physics by round(duration_s / timestep) whole timesteps."""
        if duration_s < 0:
            raise ValueError(f"step duration must be >= 0 s, got {duration_s}")
        n = round(duration_s / self.model.opt.timestep)
        if n:
            mujoco.mj_step(self.model, self.data, nstep=n)

    @property
    def time(self) -> float:
        """Simulated seconds since the end of the last reset."""
        return self.data.time - self._start_time

    # ---- state -----------------------------------------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._qpos_adr].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self._qvel_adr].copy()

    def tcp_position(self) -> np.ndarray:
        """TCP (gripper_frame_link) position in base_link from the simulated joints, as the real driver computes it."""
        return self.kinematics.fk(self.joint_positions())[0]

    def cube_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Cube centre position (3,) in base_link and orientation as a wxyz quaternion (4,)."""
        cube = self.data.qpos[self._cube_qpos_adr : self._cube_qpos_adr + 7]
        return cube[:3].copy(), cube[3:].copy()

    def grasp_success(self) -> bool:
        """Ground truth of the grasp-only task: the cube is pinched between the two fingers.

        All of: the fixed finger touches the cube; the moving jaw touches the cube; the jaw stopped at least
        grasp_min_jaw_angle open (on air it closes to ~0, so a cube merely touching the outsides of closed fingers
        does not count); the gripper servo squeezes (drives towards closed with at least grasp_min_squeeze N m, so an
        open gripper that happens to touch the cube on both sides does not count). No lift is required.
        """
        touches_fixed = touches_jaw = False
        for contact in self.data.contact[: self.data.ncon]:
            pair = {int(contact.geom1), int(contact.geom2)}
            if self._cube_geom not in pair or contact.dist > 1e-3:
                continue
            other = (pair - {self._cube_geom}).pop()
            touches_fixed |= other == self._fixed_finger_geom
            touches_jaw |= other in self._jaw_geoms
        gripper = self._actuator_ids[GRIPPER]
        squeezing = float(self.data.actuator_force[gripper]) <= -self.config.grasp_min_squeeze
        jaw_open = self.joint_positions()[GRIPPER] >= self.config.grasp_min_jaw_angle
        return bool(touches_fixed and touches_jaw and squeezing and jaw_open)

    # ---- camera ----------------------------------------------------------------------------------------------------
    def render_wrist(self) -> np.ndarray:
        """The wrist camera image, camera_height x camera_width x 3 uint8 RGB (a new array)."""
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, self.config.camera_height, self.config.camera_width)
        self._renderer.update_scene(self.data, camera=WRIST_CAMERA)
        return self._renderer.render().copy()

    def camera_intrinsics(self) -> tuple[float, float, float, float]:
        """Pinhole fx, fy, cx, cy (px) of the wrist image: square pixels, focal length from the vertical fovy.

        The principal point is the image centre in the OpenCV/ROS convention (pixel centres at integers), i.e.
        ((width - 1) / 2, (height - 1) / 2), where MuJoCo's optical axis meets the image.
        """
        fovy = math.radians(float(self.model.cam_fovy[self.model.camera(WRIST_CAMERA).id]))
        f = 0.5 * self.config.camera_height / math.tan(0.5 * fovy)
        return f, f, 0.5 * (self.config.camera_width - 1), 0.5 * (self.config.camera_height - 1)

    def close(self) -> None:
        """Free the renderer (its GL context); the world stays usable and renders again on demand."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> SimWorld:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _clamp(self, q: np.ndarray) -> np.ndarray:
        return np.clip(q, self._ctrl_low, self._ctrl_high)
