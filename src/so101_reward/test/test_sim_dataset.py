"""The simulation source: labels are the physics' ground truth at the rendered instant, every scenario gives what
it promises (positives from grasps, hard negatives from the others), the default cycle's positive share, the CLI."""

import subprocess
import sys

import numpy as np
import pytest

from so101_contract.control import CONTROL_PERIOD_S
from so101_contract.joints import GRIPPER
from so101_driver.sim.world import SimConfig
from so101_driver.vision.preprocessing import DEFAULT_PREPROCESSING as PRE
from so101_reward.dataset import RewardDataset
from so101_reward.sim_dataset import (
    AIR_CLOSE,
    DEFAULT_CYCLE,
    GRASP,
    NEAR_MISS,
    NO_CUBE,
    SCENARIOS,
    TOUCH,
    episode_seed,
    make_world,
    record_sim_dataset,
    start_episode,
)

SEED = 11
STEPS = 24
CLOSED = SimConfig().grasp_min_jaw_angle  # a jaw below this angle holds nothing


def red_pixels(frame: np.ndarray) -> int:
    """Pixels of the red cube in a preprocessed frame (the table is beige, the arm yellow-brown)."""
    r, g, b = (frame[..., i].astype(int) for i in range(3))
    return int(((r > 60) & (r > 2 * g + 20) & (r > 2 * b + 20)).sum())


@pytest.fixture(scope="module")
def recorded():
    return record_sim_dataset(len(SCENARIOS), STEPS, seed=SEED, scenarios=SCENARIOS, progress=False)


@pytest.fixture(scope="module")
def rerun(recorded):
    """Each episode re-run from its seed without the recorder: ground truth and jaw angle after every control step,
    and a fresh render of the last step."""
    world = make_world(PRE)
    runs = {}
    try:
        for i, scenario in enumerate(SCENARIOS):
            hand = start_episode(world, scenario, episode_seed(SEED, i))
            truth, jaw = [], []
            for _ in range(STEPS):
                world.set_joint_targets(hand.command(world))
                world.step(CONTROL_PERIOD_S)
                truth.append(world.grasp_success())
                jaw.append(world.joint_positions()[GRIPPER])
            runs[scenario] = (np.array(truth, dtype=np.uint8), np.array(jaw), PRE.apply(world.render_wrist()))
    finally:
        world.close()
    return runs


def episode(dataset: RewardDataset, scenario: str) -> np.ndarray:
    """Frame indices of the one episode of ``scenario``."""
    name = next(n for n in dataset.episode_names if n.endswith(f"-{scenario}"))
    return np.flatnonzero(dataset.episodes == dataset.episode_names.index(name))


def test_every_scenario_is_an_episode_of_preprocessed_frames(recorded):
    assert len(recorded) == len(SCENARIOS) * STEPS
    assert recorded.episode_names == [f"sim-{i:04d}-{s}" for i, s in enumerate(SCENARIOS)]
    assert recorded.frames.shape[1:] == (PRE.output_size, PRE.output_size, 3)
    assert recorded.preprocessing == PRE
    for scenario in SCENARIOS:
        assert len(episode(recorded, scenario)) == STEPS


def test_labels_are_the_ground_truth_of_a_rerun(recorded, rerun):
    for scenario in SCENARIOS:
        truth, _, last_frame = rerun[scenario]
        rows = episode(recorded, scenario)
        np.testing.assert_array_equal(recorded.labels[rows], truth, err_msg=scenario)
        # The frame and its label are of the same instant: the last frame is the last state's render.
        np.testing.assert_array_equal(recorded.frames[rows[-1]], last_frame, err_msg=scenario)


def test_grasp_gives_positives_and_holds_on(recorded):
    labels = recorded.labels[episode(recorded, GRASP)]
    assert labels[0] == 0  # it starts away from the cube
    assert labels[-1] == 1  # grasped and still held at the end
    assert labels.sum() >= STEPS // 3


def test_negative_scenarios_give_hard_negatives(recorded, rerun):
    for scenario in (NEAR_MISS, AIR_CLOSE, NO_CUBE):
        labels = recorded.labels[episode(recorded, scenario)]
        _, jaw, _ = rerun[scenario]
        assert labels.sum() == 0, scenario
        # Gripper closed and still no success: the classifier must look at the cube, not the jaw.
        assert (jaw < CLOSED).sum() >= 3, (scenario, np.round(jaw, 2))
    frames = recorded.frames
    # near miss and air close: the cube is in view while the gripper closes on air.
    for scenario in (NEAR_MISS, AIR_CLOSE):
        rows = episode(recorded, scenario)
        closed_rows = rows[rerun[scenario][1] < CLOSED]
        assert min(red_pixels(frames[r]) for r in closed_rows) > 50, scenario
    # touch: the cube between open fingers, never a success.
    touch = episode(recorded, TOUCH)
    assert recorded.labels[touch].sum() == 0
    assert rerun[TOUCH][1].min() > 0.8
    assert red_pixels(frames[touch[-1]]) > red_pixels(frames[touch[0]]) > 50  # closer to the cube at the end
    # no cube: it is nowhere in the images.
    assert max(red_pixels(frames[r]) for r in episode(recorded, NO_CUBE)) == 0


def test_default_cycle_positive_share():
    dataset = record_sim_dataset(len(DEFAULT_CYCLE), 60, seed=0, progress=False)
    share = dataset.positives / len(dataset)
    assert 0.2 <= share <= 0.35, dataset.summary()
    assert [n.split("-", 2)[2] for n in dataset.episode_names] == list(DEFAULT_CYCLE)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "so101_reward.make_dataset", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_records_appends_and_refuses_bad_input(tmp_path):
    out = tmp_path / "sim.npz"
    result = run_cli("sim", "--episodes", "2", "--steps", "3", "--seed", "5", "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "6 frames" in result.stdout
    first = RewardDataset.load(out)
    assert first.episode_names == ["sim-0000-grasp", "sim-0001-near_miss"] and len(first) == 6

    result = run_cli("sim", "--episodes", "1", "--steps", "3", "--scenarios", "touch", "--out", str(out), "--append")
    assert result.returncode == 0, result.stderr
    appended = RewardDataset.load(out)
    assert len(appended) == 9 and len(appended.episode_names) == 3
    np.testing.assert_array_equal(appended.frames[:6], first.frames)

    for bad in (["--episodes", "0"], ["--scenarios", "grasp,fly"], ["--out", str(tmp_path / "x.txt")]):
        args = ["sim", "--episodes", "1", "--steps", "2", "--out", str(tmp_path / "bad.npz"), *bad]
        result = run_cli(*args)
        assert result.returncode == 2, (bad, result.stderr)
        # One error line naming what is wrong (argparse's usage line may stand before a flag's refusal).
        error = result.stderr.strip().splitlines()[-1]
        assert "error:" in error and bad[0].lstrip("-").split("-")[0] in error.replace("-", ""), result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "bad.npz").exists()
