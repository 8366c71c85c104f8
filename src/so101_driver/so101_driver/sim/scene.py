"""The MuJoCo scene that stands in for the follower arm, its table, the red cube and the wrist camera.

The arm comes from the project URDF (one robot model for kinematics, rviz2 and simulation); this module adds what a
URDF cannot say: servo-like position actuators, joint friction, the table, the cube, a light and the wrist camera.
The camera pose is read from the URDF's fixed camera joints, because MuJoCo drops massless fixed links on import. Arm
geoms collide with the cube and the table but not with each other, except the jaw stopping on the fixed finger.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from so101_contract.joints import JOINT_NAMES
from so101_driver.model.robot_model import resolve_urdf_path

# Geom names given to the URDF's unnamed boxes (MuJoCo keeps them in file order per body).
FIXED_FINGER_GEOM = "fixed_finger"
JAW_FINGER_GEOM = "jaw_finger"
JAW_CONNECTOR_GEOM = "jaw_connector"
CUBE_GEOM = "cube"
CUBE_BODY = "cube"
TABLE_GEOM = "table"
WRIST_CAMERA = "wrist_cam"
CAMERA_PARENT_LINK = "gripper_link"
CAMERA_JOINTS = ("wrist_camera_joint", "wrist_camera_optical_joint")

# Contact bitmasks: arm geoms (type 2) only meet the world (type 1: table, cube); world geoms meet everything.
_ARM_CONTYPE, _ARM_CONAFFINITY = 2, 1
_WORLD_CONTYPE, _WORLD_CONAFFINITY = 1, 3


@dataclass(frozen=True)
class ServoConfig:
    """A position servo: MuJoCo position actuator (kp, kv) saturated at +-force_limit, plus joint losses."""

    kp: float = 300.0  # N m / rad
    kv: float = 3.0  # N m s / rad
    force_limit: float = 2.94  # N m, STS3215 stall torque at 12 V
    damping: float = 0.6  # N m s / rad (official MJCF class sts3215)
    armature: float = 0.028  # kg m^2
    frictionloss: float = 0.052  # N m


@dataclass(frozen=True)
class SceneConfig:
    """Everything the simulated scene is built from. Defaults match the seed system's desk and cube."""

    urdf_path: str | None = None  # None or "": the project URDF (so101_driver.model.robot_model.default_urdf_path)
    timestep: float = 0.002  # s
    arm_servo: ServoConfig = field(default_factory=ServoConfig)
    # The gripper servo is softer (the jaw is light; a stiff servo would jitter against the cube) and squeezes with
    # at most half the stall torque, still enough to close when the open jaw drags on the table.
    gripper_servo: ServoConfig = field(default_factory=lambda: ServoConfig(kp=50.0, kv=0.5, force_limit=1.5))
    finger_friction: tuple[float, float, float] = (1.5, 0.005, 0.0001)  # sliding, torsional, rolling
    # Table: top surface at z = 0 where the robot base stands; extends far enough to fill the wrist view.
    table_center_xy: tuple[float, float] = (0.25, 0.0)  # m, in base_link
    table_half_size: tuple[float, float, float] = (0.6, 0.6, 0.02)  # m
    table_rgba: tuple[float, float, float, float] = (0.87, 0.80, 0.66, 1.0)  # beige desk
    table_friction: tuple[float, float, float] = (0.8, 0.005, 0.0001)
    # Cube: the seed system's red 3 cm wooden cube, 30 g.
    cube_size: float = 0.03  # m, edge length
    cube_mass: float = 0.03  # kg
    cube_rgba: tuple[float, float, float, float] = (0.85, 0.05, 0.05, 1.0)
    cube_friction: tuple[float, float, float] = (1.0, 0.005, 0.0001)
    cube_condim: int = 4  # 4: sliding + torsional friction, so a pinched cube does not spin out
    # Contact softness of every geom (MuJoCo solref: timeconst s, dampratio; solimp: dmin, dmax, width m): stiff
    # enough that a 30 g cube pinched with ~20 N is not crushed into the fingers (MuJoCo's default 0.02 s lets them
    # sink in by a centimetre). timeconst must stay >= 2 timesteps.
    contact_solref: tuple[float, float] = (0.004, 1.0)
    contact_solimp: tuple[float, float, float] = (0.95, 0.99, 0.001)
    # Wrist camera: vertical field of view of the seed system's camera model. The offscreen buffer must be at least
    # as large as any image rendered from the model.
    camera_fovy_deg: float = 70.5
    offscreen_width: int = 640
    offscreen_height: int = 480
    # One light above the desk; no shadows (a shadow map costs ~5x render time).
    light_pos: tuple[float, float, float] = (0.25, 0.0, 1.0)
    light_diffuse: tuple[float, float, float] = (0.7, 0.7, 0.7)
    light_ambient: tuple[float, float, float] = (0.35, 0.35, 0.35)

    def __post_init__(self) -> None:
        if self.timestep <= 0:
            raise ValueError(f"SceneConfig.timestep must be > 0 s, got {self.timestep}")
        if self.cube_size <= 0 or self.cube_mass <= 0:
            raise ValueError(f"SceneConfig.cube_size and cube_mass must be > 0, got {self.cube_size}, {self.cube_mass}")
        if self.contact_solref[0] < 2 * self.timestep:
            raise ValueError(
                f"SceneConfig.contact_solref[0] = {self.contact_solref[0]} s must be >= 2 * timestep "
                f"({2 * self.timestep} s); raise it or lower timestep"
            )
        if self.cube_condim not in (1, 3, 4, 6):
            raise ValueError(f"SceneConfig.cube_condim must be 1, 3, 4 or 6, got {self.cube_condim}")
        if self.offscreen_width <= 0 or self.offscreen_height <= 0:
            raise ValueError(
                f"SceneConfig.offscreen_width/height must be > 0, got {self.offscreen_width}x{self.offscreen_height}"
            )
        if not 0 < self.camera_fovy_deg < 180:
            raise ValueError(f"SceneConfig.camera_fovy_deg must be in (0, 180), got {self.camera_fovy_deg}")


def _rpy_matrix(rpy: np.ndarray) -> np.ndarray:
    """URDF fixed-axis roll-pitch-yaw: R = Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


def urdf_fixed_chain_pose(urdf_path: Path, joint_names: tuple[str, ...]) -> tuple[str, np.ndarray, np.ndarray]:
    """Parent link, position and rotation of the child of the last joint in a chain of URDF joint origins.

    Used for the camera frames, which MuJoCo drops on import because they have no mass.
    """
    joints = {j.get("name"): j for j in ET.parse(urdf_path).getroot().iter("joint")}
    pos, rot = np.zeros(3), np.eye(3)
    parent = None
    for name in joint_names:
        if name not in joints:
            raise ValueError(f"URDF {urdf_path} has no joint {name!r}; the wrist camera needs {joint_names}")
        joint = joints[name]
        if parent is None:
            parent = joint.find("parent").get("link")
        origin = joint.find("origin")
        xyz = np.array([float(v) for v in origin.get("xyz", "0 0 0").split()])
        rpy = np.array([float(v) for v in origin.get("rpy", "0 0 0").split()])
        pos = pos + rot @ xyz
        rot = rot @ _rpy_matrix(rpy)
    return parent, pos, rot


def wrist_camera_pose(urdf_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Position and wxyz quaternion of the MuJoCo wrist camera in gripper_link.

    MuJoCo cameras look along -z with +y up; the URDF optical frame looks along +z with +y down, so the MuJoCo camera
    is the optical frame turned by pi about its x axis.
    """
    parent, pos, rot = urdf_fixed_chain_pose(urdf_path, CAMERA_JOINTS)
    if parent != CAMERA_PARENT_LINK:
        raise ValueError(f"URDF {urdf_path}: {CAMERA_JOINTS[0]} must hang from {CAMERA_PARENT_LINK}, not {parent}")
    rot_mj = rot @ np.diag([1.0, -1.0, -1.0])
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, rot_mj.reshape(-1))
    return pos, quat


def _name_arm_geoms(spec: mujoco.MjSpec) -> None:
    """Give the URDF's unnamed boxes names; the gripper's fingers are needed by name for grasp detection."""
    for body in spec.bodies:
        for i, geom in enumerate(body.geoms):
            geom.name = f"{body.name}_geom{i}"
    fingers = {
        ("gripper_link", 1): FIXED_FINGER_GEOM,
        ("moving_jaw_so101_v1_link", 0): JAW_CONNECTOR_GEOM,
        ("moving_jaw_so101_v1_link", 1): JAW_FINGER_GEOM,
    }
    for (body_name, index), name in fingers.items():
        body = spec.body(body_name)
        if body is None or len(body.geoms) <= index:
            raise ValueError(f"URDF link {body_name} needs at least {index + 1} collision boxes for the gripper")
        body.geoms[index].name = name


def build_scene(config: SceneConfig | None = None) -> mujoco.MjModel:
    """Compile the simulation model: URDF arm + actuators + table + free cube + light + wrist camera."""
    config = config or SceneConfig()
    urdf_path = resolve_urdf_path(config.urdf_path)
    spec = mujoco.MjSpec.from_file(str(urdf_path))
    spec.modelname = "so101_grasp_scene"
    spec.option.timestep = config.timestep
    spec.visual.quality.shadowsize = 0
    spec.visual.global_.offwidth = config.offscreen_width
    spec.visual.global_.offheight = config.offscreen_height
    spec.visual.headlight.active = 0

    _name_arm_geoms(spec)
    for body in spec.bodies:
        for geom in body.geoms:
            geom.contype, geom.conaffinity = _ARM_CONTYPE, _ARM_CONAFFINITY
            geom.friction = list(config.finger_friction)
            geom.condim = 4

    # Servos: joint losses and one position actuator per joint, ctrlrange = joint limits.
    for name in JOINT_NAMES:
        joint = spec.joint(name)
        if joint is None:
            raise ValueError(f"URDF {urdf_path} has no joint {name!r}; expected {JOINT_NAMES}")
        servo = config.gripper_servo if name == "gripper" else config.arm_servo
        joint.damping = [servo.damping, 0.0, 0.0]
        joint.armature = servo.armature
        joint.frictionloss = servo.frictionloss
        actuator = spec.add_actuator()
        actuator.name = name
        actuator.target = name
        actuator.trntype = mujoco.mjtTrn.mjTRN_JOINT
        actuator.set_to_position(kp=servo.kp, kv=servo.kv)
        actuator.ctrlrange = list(joint.range)
        actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.forcerange = [-servo.force_limit, servo.force_limit]
        actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE

    # The one arm self-contact that matters: the jaw closing on air stops at the fixed finger (q ~ 0, the servo
    # stalled and squeezing), as on the real gripper, instead of passing through it to the lower limit.
    finger_pair = spec.add_pair()
    finger_pair.name = "jaw_stop"
    finger_pair.geomname1, finger_pair.geomname2 = FIXED_FINGER_GEOM, JAW_FINGER_GEOM
    finger_pair.condim = 1
    finger_pair.solref = list(config.contact_solref)
    finger_pair.solimp = [*config.contact_solimp, 0.5, 2.0]

    world = spec.worldbody
    hx, hy, hz = config.table_half_size
    world.add_geom(
        name=TABLE_GEOM,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[hx, hy, hz],
        pos=[config.table_center_xy[0], config.table_center_xy[1], -hz],
        rgba=list(config.table_rgba),
        friction=list(config.table_friction),
        contype=_WORLD_CONTYPE,
        conaffinity=_WORLD_CONAFFINITY,
    )

    half = config.cube_size / 2
    cube = world.add_body(name=CUBE_BODY, pos=[0.25, 0.0, half])
    cube.add_freejoint(name="cube_free")
    cube.add_geom(
        name=CUBE_GEOM,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[half, half, half],
        mass=config.cube_mass,
        rgba=list(config.cube_rgba),
        friction=list(config.cube_friction),
        condim=config.cube_condim,
        contype=_WORLD_CONTYPE,
        conaffinity=_WORLD_CONAFFINITY,
    )

    world.add_light(
        name="desk_lamp",
        type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
        pos=list(config.light_pos),
        dir=[0.0, 0.0, -1.0],
        diffuse=list(config.light_diffuse),
        ambient=list(config.light_ambient),
        specular=[0.1, 0.1, 0.1],
        castshadow=False,
    )

    for geom in spec.geoms:
        geom.solref = list(config.contact_solref)
        geom.solimp = [*config.contact_solimp, 0.5, 2.0]

    cam_pos, cam_quat = wrist_camera_pose(urdf_path)
    spec.body(CAMERA_PARENT_LINK).add_camera(
        name=WRIST_CAMERA, pos=list(cam_pos), quat=list(cam_quat), fovy=config.camera_fovy_deg
    )
    return spec.compile()
