"""An auto-labelled reward dataset from the simulation: wrist frames labelled by the physics' own grasp test.

The simulation knows the truth (``SimWorld.grasp_success``: the cube pinched between the fingers with the servo
squeezing), so every frame gets an exact label, taken at the physics instant it is rendered. No ROS graph: the follower
is driven at the 10 Hz control rate as the actor drives it (one Kinematics.ik_step per control step), and the wrist
image goes through the project's one ImagePreprocessing. ``Scenario`` says which hands the episodes cycle through.

    record_sim_dataset(episodes=60, steps_per_episode=60, seed=0).save("sim_reward.npz")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from so101_contract.control import CONTROL_PERIOD_S
from so101_contract.joints import GRIPPER
from so101_driver.sim.grasp_controller import DESCEND, HOLD, GraspConfig, ScriptedGrasp
from so101_driver.sim.world import SimConfig, SimWorld
from so101_driver.vision.preprocessing import DEFAULT_PREPROCESSING, ImagePreprocessing
from so101_reward.dataset import RewardDataset

GRASP, NEAR_MISS, AIR_CLOSE, TOUCH, NO_CUBE = "grasp", "near_miss", "air_close", "touch", "no_cube"
SCENARIOS = (GRASP, NEAR_MISS, AIR_CLOSE, TOUCH, NO_CUBE)
# grasp twice per cycle: a grasp episode is ~80 % positive after its first 1-2 s, so a cycle with one grasp in five
# would give ~16 % positives overall; two in six give ~25 %.
DEFAULT_CYCLE = (GRASP, NEAR_MISS, AIR_CLOSE, GRASP, TOUCH, NO_CUBE)

NEAR_MISS_DISTANCE = (0.028, 0.04)  # m, aim point to cube centre (see start_episode)
NEAR_MISS_LINGER_STEPS = (4, 13)  # control steps the jaw stays closed on air before the next try
# Where the cube goes in no_cube episodes: on the table, behind and to the side of the base, far outside the wrist
# camera's view from anywhere in the wander box (test_sim_dataset checks the frames hold no red pixels).
NO_CUBE_XY = (-0.25, 0.45)  # m, base_link
# no_cube wander box for the TCP (base_link, m): the workspace the other scenarios use, over the empty table.
WANDER_LOW = np.array([0.16, -0.08, 0.03])
WANDER_HIGH = np.array([0.32, 0.08, 0.10])
WANDER_TOLERANCE = 0.01  # m: a waypoint this close counts as reached
WANDER_TOGGLE_PROBABILITY = 0.15  # per control step: chance that the wandering hand opens or closes the gripper


class Scenario:
    """One episode's hand: ``command(world)`` -> the joint targets (6,) for the next control step.

    A classifier learns the difference between the classes it is shown. If the only negatives were "arm still far
    away", it would learn "cube big in the image = success" and fire when the gripper merely hovers over the cube (the
    classic false positive of reward classifiers). So the episodes cycle through
    scenarios whose negatives look like a grasp in all but the one thing that matters:

    - ``grasp``: the scripted top grasp (ScriptedGrasp); it keeps holding after the grasp, so most of the episode is
      positive, and the frames just before the grasp (cube between open fingers) are negatives.
    - ``near_miss``: the same grasp aimed 2.8-4 cm to the left or right of the cube centre (1.3-2.5 cm clear of its
      side): the jaw closes on air next to the cube, stays closed a moment, then opens and tries again.
      Closer than that the wide fingers still pinch the cube's edge (at 2 cm in 11 of 12 tries).
    - ``air_close``: goes above the cube at the approach height and closes the gripper there.
    - ``touch``: descends onto the cube with the gripper open and stays there: the cube between open fingers.
    - ``no_cube``: the cube is moved far out of the camera's view; the arm wanders over the empty table, opening and
      closing the gripper.

    The label is always the physics' verdict: if a near miss does pinch the cube after all, its frames are positive.
    The default cycle repeats ``grasp`` (DEFAULT_CYCLE) so that about a quarter of all frames are positive.
    """

    def command(self, world: SimWorld) -> np.ndarray:
        raise NotImplementedError


class _GraspScenario(Scenario):
    """ScriptedGrasp toward the cube (or a point beside it), with the gripper target optionally overridden.

    ``close_above``: stop at the approach point above the cube and close there (air_close).
    ``keep_open``: never close (touch).
    ``linger``: (rng, (low, high)): after closing on air, stay closed for a random low..high-1 control steps before
    opening and trying again (near_miss), as a person pauses at a miss; ScriptedGrasp alone reopens at once, which
    leaves only a frame or two of the closed jaw beside the cube.
    """

    def __init__(
        self,
        aim_offset=(0.0, 0.0, 0.0),
        keep_open: bool = False,
        close_above: bool = False,
        linger: tuple[np.random.Generator, tuple[int, int]] | None = None,
    ):
        config = GraspConfig()
        self.miss_angle = config.miss_angle
        if linger is not None:  # the scenario decides when to retry, not the controller
            config = dataclasses.replace(config, miss_angle=-np.inf)
        self.grasp = ScriptedGrasp(config)
        self.aim_offset = np.asarray(aim_offset, dtype=float)
        self.keep_open = keep_open
        self.close_above = close_above
        self.linger = linger
        self._closed_steps = 0
        self._linger_steps = self._draw_linger()
        self._above: np.ndarray | None = None  # air_close: where the TCP stopped above the cube

    def _draw_linger(self) -> int:
        return 0 if self.linger is None else int(self.linger[0].integers(*self.linger[1]))

    def command(self, world: SimWorld) -> np.ndarray:
        cfg = self.grasp.config
        q = world.joint_positions()
        tcp, rotation = world.kinematics.fk(q)
        if self.linger is not None and self.grasp.phase == HOLD and q[GRIPPER] < self.miss_angle:
            self._closed_steps += 1
            if self._closed_steps > self._linger_steps:
                self.grasp.reset()
                self._closed_steps, self._linger_steps = 0, self._draw_linger()
        if self._above is not None:  # air_close, arrived: stay above the cube with the gripper closed
            target, jaw = tcp + np.clip(self._above - tcp, -cfg.max_step, cfg.max_step), cfg.gripper_closed
        else:
            aim = world.cube_pose()[0] + self.aim_offset
            target, jaw, phase = self.grasp.act(tcp, q[GRIPPER], aim, rotation)
            if self.close_above and phase == DESCEND:
                self._above = tcp.copy()
                target, jaw = tcp, cfg.gripper_closed
            if self.keep_open:
                jaw = cfg.gripper_open
        command = world.kinematics.ik_step(q, target)
        command[GRIPPER] = jaw
        return command


class _WanderScenario(Scenario):
    """Random TCP waypoints in the wander box at the grasp controller's speed; the gripper toggles at random."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.config = GraspConfig()
        self.waypoint = rng.uniform(WANDER_LOW, WANDER_HIGH)
        self.jaw = self.config.gripper_open

    def command(self, world: SimWorld) -> np.ndarray:
        q = world.joint_positions()
        tcp = world.kinematics.fk(q)[0]
        if np.linalg.norm(self.waypoint - tcp) < WANDER_TOLERANCE:
            self.waypoint = self.rng.uniform(WANDER_LOW, WANDER_HIGH)
        if self.rng.random() < WANDER_TOGGLE_PROBABILITY:
            closed = self.jaw == self.config.gripper_closed
            self.jaw = self.config.gripper_open if closed else self.config.gripper_closed
        step = self.config.max_step
        command = world.kinematics.ik_step(q, tcp + np.clip(self.waypoint - tcp, -step, step))
        command[GRIPPER] = self.jaw
        return command


def start_episode(world: SimWorld, scenario: str, seed: int) -> Scenario:
    """Reset ``world`` for one episode of ``scenario`` (deterministic per seed) and return its hand.

    The world's randomised reset draws the home pose and the cube; the scenario's own choices (near-miss side,
    wander waypoints) come from a second stream of the same seed.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown sim scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    world.reset(seed=seed)
    rng = np.random.default_rng((seed, 1))
    if scenario == GRASP:
        return _GraspScenario()
    if scenario == NEAR_MISS:
        # Beside = along the gripper's sideways axis (TCP y, horizontal), left or right: the fingers then come down
        # next to the cube. Along the jaw's opening axis a finger would land on top of the cube instead.
        side = world.kinematics.fk(world.joint_positions())[1][:, 1].copy()
        side[2] = 0.0
        side *= rng.choice((-1.0, 1.0)) * rng.uniform(*NEAR_MISS_DISTANCE) / np.linalg.norm(side)
        return _GraspScenario(aim_offset=side, linger=(rng, NEAR_MISS_LINGER_STEPS))
    if scenario == AIR_CLOSE:
        return _GraspScenario(close_above=True)
    if scenario == TOUCH:
        return _GraspScenario(keep_open=True)
    # no_cube: the same randomised home pose, the cube moved out of sight
    tcp = world.tcp_position()
    world.reset_to(tcp, np.asarray(NO_CUBE_XY, dtype=float), float(rng.uniform(-np.pi, np.pi)))
    return _WanderScenario(rng)


def episode_seed(seed: int, index: int) -> int:
    """A well-mixed seed per episode, so runs with neighbouring ``seed`` values share no episodes."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


@dataclass
class SimEpisode:
    name: str
    scenario: str
    seed: int
    frames: np.ndarray  # (T, S, S, 3) uint8, preprocessed
    labels: np.ndarray  # (T,) uint8, grasp_success after each control step
    jaw: np.ndarray  # (T,) rad, the gripper joint at each frame


def record_episode(
    world: SimWorld,
    scenario: str,
    seed: int,
    steps: int,
    preprocessing: ImagePreprocessing = DEFAULT_PREPROCESSING,
    name: str = "",
    on_step=None,
) -> SimEpisode:
    """One episode: per control step, command the arm, run CONTROL_PERIOD_S of physics, then render and label."""
    hand = start_episode(world, scenario, seed)
    size = preprocessing.output_size
    frames = np.empty((steps, size, size, 3), dtype=np.uint8)
    labels = np.empty(steps, dtype=np.uint8)
    jaw = np.empty(steps)
    for t in range(steps):
        world.set_joint_targets(hand.command(world))
        world.step(CONTROL_PERIOD_S)
        frames[t] = preprocessing.apply(world.render_wrist(), "rgb8")
        labels[t] = world.grasp_success()  # the same physics state the frame shows
        jaw[t] = world.joint_positions()[GRIPPER]
        if on_step is not None:
            on_step(bool(labels[t]))
    return SimEpisode(name or f"sim-{scenario}", scenario, seed, frames, labels, jaw)


def make_world(preprocessing: ImagePreprocessing = DEFAULT_PREPROCESSING, seed: int = 0) -> SimWorld:
    """A SimWorld whose wrist camera renders at the preprocessing's source size."""
    return SimWorld(
        SimConfig(camera_width=preprocessing.source_width, camera_height=preprocessing.source_height), seed=seed
    )


def record_sim_dataset(
    episodes: int,
    steps_per_episode: int = 60,
    seed: int = 0,
    scenarios: Sequence[str] = DEFAULT_CYCLE,
    progress: bool = True,
    preprocessing: ImagePreprocessing = DEFAULT_PREPROCESSING,
) -> RewardDataset:
    """``episodes`` episodes of ``steps_per_episode`` frames, scenario i = scenarios[i % len(scenarios)].

    Episode i is named ``sim-{i:04d}-{scenario}`` and uses episode_seed(seed, i). One SimWorld serves all episodes.
    """
    from tqdm import tqdm

    if episodes < 1 or steps_per_episode < 1:
        raise ValueError(f"episodes and steps_per_episode must be >= 1, got {episodes} and {steps_per_episode}")
    scenarios = tuple(scenarios)
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if not scenarios or unknown:
        raise ValueError(
            f"scenarios must be a non-empty list of {', '.join(SCENARIOS)}; got {list(scenarios)} "
            f"(unknown: {', '.join(unknown) or 'none'})"
        )
    world = make_world(preprocessing, seed)
    recorded: list[SimEpisode] = []
    positives = 0
    bar = tqdm(total=episodes * steps_per_episode, desc="sim frames", unit="frame", disable=not progress)

    def on_step(label: bool) -> None:
        nonlocal positives
        positives += label
        bar.update(1)
        bar.set_postfix(success=positives, refresh=False)

    try:
        for i in range(episodes):
            scenario = scenarios[i % len(scenarios)]
            name = f"sim-{i:04d}-{scenario}"
            recorded.append(
                record_episode(world, scenario, episode_seed(seed, i), steps_per_episode, preprocessing, name, on_step)
            )
    finally:
        bar.close()
        world.close()
    return RewardDataset(
        np.concatenate([e.frames for e in recorded]),
        np.concatenate([e.labels for e in recorded]),
        np.repeat(np.arange(len(recorded), dtype=np.int32), steps_per_episode),
        [e.name for e in recorded],
        preprocessing,
    )
