"""so101/Pick-v0: Gymnasium's checker, and the contract: its observations and actions are bit for bit what the actor's
own modules (preprocessing, StateBuilder, FrameStack, PolicyActionMapper, EpisodeTracker) make of the same joints and
images, for the project's and pick-101's semantics."""

import warnings

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import so101_hilserl_learner.envs  # noqa: F401  (registers so101/Pick-v0)
from so101_contract.control import CONTROL_PERIOD_S
from so101_driver.sim.world import SimWorld
from so101_driver.vision.preprocessing import ImagePreprocessing
from so101_hilserl_core.action_mapping import PolicyActionMapper
from so101_hilserl_core.episode import EpisodeTracker
from so101_hilserl_core.observation import FrameStack, StateBuilder
from so101_hilserl_core.semantics import PICK101_SEMANTICS, PROJECT_SEMANTICS
from so101_hilserl_learner.envs import PICK_ID
from so101_hilserl_learner.envs.pick import PickEnv

# A small camera for speed: the same crop-and-INTER_AREA preprocessing, on a 160x120 frame, to 32x32.
SMALL = ImagePreprocessing(crop_x=20, crop_y=0, crop_width=120, crop_height=120, output_size=32,
                           source_width=160, source_height=120)  # fmt: skip
CLOSE = np.array([0.0, 0.0, 0.0, -1.0], np.float32)


def test_passes_gymnasiums_environment_checker():
    env = PickEnv(stage=3, render_mode="rgb_array", preprocessing=SMALL)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*infinity.*")  # the state is unbounded by nature
        check_env(env)
    frame = env.render()
    assert frame.shape == (120, 160, 3) and frame.dtype == np.uint8
    env.close()


def test_registered_under_its_id_with_the_default_contract_shapes():
    env = gym.make(PICK_ID, stage=1)
    obs, _ = env.reset(seed=0)
    assert env.observation_space["pixels"].shape == (9, 84, 84) and obs["pixels"].dtype == np.uint8
    assert env.observation_space["state"].shape == (54,) and obs["state"].dtype == np.float32
    assert env.action_space.shape == (4,) and env.action_space.low.min() == -1 and env.action_space.high.max() == 1
    assert env.observation_space.contains(obs)
    env.close()


@pytest.mark.parametrize("semantics", [PROJECT_SEMANTICS, PICK101_SEMANTICS], ids=["project", "pick101"])
def test_observations_and_actions_are_the_actors_bit_for_bit(semantics):
    env = PickEnv(stage=2, render_mode="rgb_array", semantics=semantics, preprocessing=SMALL)
    world = env.world
    twin = SimWorld(world.config)  # the same physics, stepped with the mapper's own command
    kinematics = twin.kinematics
    builder = StateBuilder(kinematics, CONTROL_PERIOD_S, semantics["orientation"])
    stack = FrameStack(3, (32, 32, 3))
    mapper = PolicyActionMapper(kinematics, semantics)
    tracker = EpisodeTracker()
    rng = np.random.default_rng(1)

    obs, _ = env.reset(seed=11)
    q = world.joint_positions()
    stack.reset(SMALL.apply(env.render()), builder.build(q))
    mapper.reset(q)
    tracker.reset(1)
    assert np.array_equal(obs["pixels"], stack.pixels()) and np.array_equal(obs["state"], stack.state())

    moved = 0.0
    for step in range(25):
        action = rng.uniform(-1, 1, 4).astype(np.float32) if step % 3 else CLOSE
        mujoco.mj_copyData(twin.data, twin.model, world.data)
        q_before = world.joint_positions()
        expected = mapper.to_joints(action, q_before)
        twin.set_joint_targets(expected)
        twin.step(CONTROL_PERIOD_S)

        obs, reward, terminated, truncated, info = env.step(action)
        assert np.array_equal(info["command"], expected)
        assert np.array_equal(world.joint_targets(), twin.joint_targets())
        assert np.array_equal(world.joint_positions(), twin.joint_positions())
        image = twin.render_wrist()
        assert np.array_equal(env.render(), image)
        q = twin.joint_positions()
        moved = max(moved, float(np.abs(q - q_before).max()))
        stack.push(SMALL.apply(image), builder.build(q))
        assert np.array_equal(obs["pixels"], stack.pixels()) and np.array_equal(obs["state"], stack.state())

        stamp = round(twin.time * 1e9)
        tracker.record_reward_signal(stamp, float(twin.grasp_success()), twin.grasp_success())
        outcome = tracker.step(stamp)
        assert (reward, terminated, truncated) == (outcome.reward, outcome.terminated, outcome.truncated)
        if terminated or truncated:
            break
    assert moved > 0.01  # the actions really moved the arm


def test_same_seed_same_episode_and_stages_differ_in_difficulty():
    for stage in (0, 3):
        env = PickEnv(stage=stage, preprocessing=SMALL)
        a, _ = env.reset(seed=4)
        b, _ = env.reset(seed=4)
        c, _ = env.reset(seed=5)
        assert np.array_equal(a["pixels"], b["pixels"]) and np.array_equal(a["state"], b["state"])
        assert not np.array_equal(a["state"], c["state"])
        env.close()

    def close_only(stage: int) -> tuple[bool, int]:
        env = PickEnv(stage=stage, preprocessing=SMALL)
        env.reset(seed=2)
        for _ in range(env.episode_config.max_steps):
            _, _, terminated, truncated, info = env.step(CLOSE)
            if terminated or truncated:
                break
        env.close()
        return info["is_success"], info["steps"]

    # stage 1: the cube is between the open fingers, closing is enough (success as early as the episode rules let
    # it: min_steps_before_success); stage 3: the gripper is 3 cm above, closing there grasps air.
    assert close_only(1) == (True, 10)
    assert close_only(3) == (False, 100)


def test_classifier_reward_replaces_the_ground_truth():
    env = PickEnv(stage=3, preprocessing=SMALL, classifier=lambda frame: 0.9, classifier_threshold=0.8)
    env.reset(seed=0)
    for _ in range(10):
        _, reward, terminated, _, info = env.step(CLOSE)
    assert terminated and info["is_success"] and reward == 10.0
    assert info["probability"] == pytest.approx(0.9) and not info["grasp"]  # ground truth still reported
    env.close()


@pytest.mark.timeout(240)
@pytest.mark.parametrize("vector", ["sync", "async"])
def test_vector_envs(vector):
    # the module-qualified id imports the registering module first, also in a spawned child
    makers = [lambda: gym.make(f"so101_hilserl_learner.envs:{PICK_ID}", stage=1, preprocessing=SMALL)] * 2
    if vector == "sync":
        envs = gym.vector.SyncVectorEnv(makers)
    else:  # spawn: a forked child inherits this process's GL context (other tests rendered) and hangs in it
        envs = gym.vector.AsyncVectorEnv(makers, context="spawn")
    try:
        obs, _ = envs.reset(seed=[3, 4])
        assert obs["pixels"].shape == (2, 9, 32, 32) and obs["state"].shape == (2, 54)
        successes = np.zeros(2, bool)
        for _ in range(10):
            _, _, terminated, _, info = envs.step(np.tile(CLOSE, (2, 1)))
            successes |= terminated & info["is_success"]
        assert successes.all()
    finally:
        envs.close()


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match="stage"):
        PickEnv(stage=7, preprocessing=SMALL)
    with pytest.raises(ValueError, match="render_mode"):
        PickEnv(render_mode="human", preprocessing=SMALL)
    env = PickEnv(stage=1, preprocessing=SMALL)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(CLOSE)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(np.array([0.0, np.nan, 0.0, 0.0]))
    env.close()


def _discounted_return(env: PickEnv, policy, seed: int, gamma: float = 0.99) -> tuple[float, dict]:
    """Run ``policy(info) -> action`` for one episode; (discounted return, counts of what happened)."""
    env.reset(seed=seed)
    info = {"grasp": False}
    total, grasp_frames, steps = 0.0, 0, 0
    for step in range(env.episode_config.max_steps):
        _, reward, terminated, truncated, info = env.step(policy(info))
        total += gamma**step * reward
        grasp_frames += info["grasp"]
        steps += 1
        if terminated or truncated:
            break
    return total, {"grasp_frames": grasp_frames, "steps": steps, "success": info["is_success"]}


def test_keeping_a_grasp_alive_never_pays_more_than_finishing():
    """The reward is not farmable: a policy that pinches the cube and relaxes the jaw for one step after every two
    success frames (so the success streak never completes) earns less than one that closes and holds."""
    env = PickEnv(stage=1, preprocessing=SMALL)
    hold, held = _discounted_return(env, lambda info: CLOSE, seed=3)

    streak = {"n": 0}

    def break_the_streak(info) -> np.ndarray:
        streak["n"] = streak["n"] + 1 if info["grasp"] else 0
        if streak["n"] >= 2:
            streak["n"] = 0
            return np.array([0.0, 0.0, 0.0, 1.0], np.float32)  # open one step
        return CLOSE

    farm, farmed = _discounted_return(env, break_the_streak, seed=3)
    env.close()
    assert held["success"] and held["steps"] == env.episode_config.min_steps_before_success
    assert not farmed["success"] and farmed["steps"] == env.episode_config.max_steps
    assert farmed["grasp_frames"] >= 20  # it really kept finding the grasp, frame after frame
    assert hold > 0 > farm


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_doing_nothing_or_closing_in_place_does_not_succeed(stage):
    """Success is a real pinch: an arm that stays still never succeeds, and closing the jaw where the episode
    starts succeeds only where the start already has the cube between the open fingers: stage 1 (at the grasp
    point) and stage 2 (1.5 cm above it, the top 7 mm of the 3 cm cube between the fingertips)."""
    env = PickEnv(stage=stage, preprocessing=SMALL)
    for seed in range(2):
        for action in (np.zeros(4, np.float32), CLOSE):
            env.reset(seed=seed)
            for _ in range(env.episode_config.max_steps):
                _, _, terminated, truncated, info = env.step(action)
                if terminated or truncated:
                    break
            closing_around_the_cube = stage in (1, 2) and action is CLOSE
            assert info["is_success"] == closing_around_the_cube, (stage, seed, action)
    env.close()
