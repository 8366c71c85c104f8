"""LeRobot datasets in: a recording becomes 10 Hz demonstrations whose stored actions make the recorded motion when
executed, and every bad input is refused with one line naming the file, feature or episode, with nothing written.

The recordings here are written by the project's own v3.0 writer in lerobot-record's layout (30 fps, 640x480 wrist
video, degrees); test_lerobot_fixture.py checks the importer against datasets LeRobot itself wrote."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rclpy.serialization import deserialize_message

from so101_bringup.lerobot_datasets.import_dataset import import_dataset
from so101_bringup.lerobot_datasets.layout import JOINT_FEATURE_NAMES, STATE
from so101_bringup.lerobot_datasets.transitions import ImportOptions
from so101_bringup.lerobot_datasets.video import VideoWriter
from so101_bringup.lerobot_datasets.writer import DatasetWriter
from so101_contract.joints import GRIPPER
from so101_contract.run_dir import LearnerDir
from so101_driver.hardware.calibration import radians_to_lerobot_degrees
from so101_driver.model.kinematics import HOME_SEED, Kinematics
from so101_driver.vision.preprocessing import ImagePreprocessing
from so101_hilserl_core.action_mapping import DEFAULT_ACTION_CONFIG as STEP
from so101_hilserl_core.messages import observation_from_msg
from so101_hilserl_interfaces.msg import Transition
from so101_hilserl_learner.journal import read_journal
from so101_reward.classifier import RewardClassifier
from so101_reward.model_config import RewardModelConfig

FPS = 30
PROGRESS = re.compile(r"\| +\d+/\d+ \[")  # a tqdm progress line
LENGTHS = (46, 31)  # frames per episode: 16 and 11 control steps at 10 Hz
KINEMATICS = Kinematics()


def trajectory(length: int, seed: int) -> np.ndarray:
    """A smooth joint path from the home pose (rad): slow enough that each 0.1 s step is inside one action step."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)[:, None] / FPS
    q = HOME_SEED + 0.15 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, np.pi, 6))
    q[:, GRIPPER] = 0.6 + 0.3 * np.sin(2 * np.pi * 0.4 * t[:, 0])
    return q


def camera_frames(length: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (60, 80, 3), np.uint8)
    return [np.ascontiguousarray(np.roll(np.kron(base, np.ones((8, 8, 1), np.uint8)), 4 * k, axis=1))
            for k in range(length)]  # fmt: skip


def write_recording(root: Path, lengths=LENGTHS, state_names=JOINT_FEATURE_NAMES, robot="so_follower") -> Path:
    features = {
        STATE: {"dtype": "float32", "shape": [6], "names": list(state_names)},
        "action": {"dtype": "float32", "shape": [6], "names": list(JOINT_FEATURE_NAMES)},
    }
    writer = DatasetWriter(root, FPS, robot, features, "observation.images.wrist", (480, 640), "pick")
    for episode, length in enumerate(lengths):
        q = radians_to_lerobot_degrees(trajectory(length, episode)).astype(np.float32)
        writer.add_episode({STATE: q, "action": q}, camera_frames(length, episode))
    return writer.finish()


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    return write_recording(tmp_path_factory.mktemp("lerobot") / "so101_pick")


def journal_messages(run_dir: Path) -> list[Transition]:
    return [deserialize_message(raw, Transition) for raw in read_journal(LearnerDir(run_dir).journal)]


def test_a_recording_becomes_demonstrations_whose_actions_make_the_recorded_motion(recording, tmp_path):
    _, result = import_dataset(recording, tmp_path / "run", ImportOptions(units="degrees"))
    messages = journal_messages(tmp_path / "run")
    steps = [len(range(0, n, 3)) - 1 for n in LENGTHS]  # 10 Hz samples of each episode, less the final observation
    assert len(messages) == result.appended == sum(steps) and result.demo_size == sum(steps)
    assert [m.step for m in messages] == [s for n in steps for s in range(n)]
    for episode, length in enumerate(LENGTHS):
        q = trajectory(length, episode)[::3]
        mine = [m for m in messages if m.episode_id == episode]
        assert all(m.intervention and not m.evaluation for m in mine)
        for t, msg in enumerate(mine):
            _, state = observation_from_msg(msg.observation, 84)
            np.testing.assert_allclose(state[:6], q[t], atol=2e-6)  # float32 degrees -> rad
            # executing the stored action commands the recorded next pose (the channel's target, before any clip)
            start, wanted = KINEMATICS.fk(q[t])[0], KINEMATICS.fk(q[t + 1])[0]
            np.testing.assert_allclose(start + np.asarray(msg.action[:3]) * STEP.step_m, wanted, atol=1e-5)
            jaw = q[t][GRIPPER] + msg.action[3] * STEP.gripper_step_rad
            assert jaw == pytest.approx(q[t + 1][GRIPPER], abs=1e-5)
        assert mine[-1].terminated and not mine[-1].truncated and mine[-1].reward > 0
        np.testing.assert_allclose(observation_from_msg(mine[-1].next_observation[0])[1][:6], q[len(mine)], atol=2e-6)
        assert all(m.reward < 0 and not (m.terminated or m.truncated) for m in mine[:-1])


def test_only_successful_episodes_by_default_and_failures_on_request(recording, tmp_path):
    options = ImportOptions(units="degrees", success=frozenset({1}))
    source, _ = import_dataset(recording, tmp_path / "a", options)
    assert {m.episode_id for m in journal_messages(tmp_path / "a")} == {1}
    assert dict(source.skipped) == {"not successful": 1}
    import_dataset(recording, tmp_path / "b", replace(options, include_failures=True))
    failed = [m for m in journal_messages(tmp_path / "b") if m.episode_id == 0]
    assert failed[-1].truncated and not failed[-1].terminated


def test_a_classifier_decides_success_and_ends_each_episode_at_its_first_success(recording, tmp_path):
    def classifier(frames: np.ndarray) -> np.ndarray:  # calls success from the 13th control step of an episode on
        assert frames.shape[1:] == (84, 84, 3) and frames.dtype == np.uint8  # the policy's frames
        return (np.arange(len(frames)) >= 12).astype(np.float32)

    options = ImportOptions(units="degrees", classifier=classifier, classifier_threshold=0.5)
    source, _ = import_dataset(recording, tmp_path / "run", options)
    episode = journal_messages(tmp_path / "run")
    # episode 0 (16 control steps): 3 frames in a row from step 12 on, so it ends at step 14; episode 1 (11) never
    assert {m.episode_id for m in episode} == {0} and dict(source.skipped) == {"not successful": 1}
    assert len(episode) == 14 and episode[-1].terminated and episode[-1].reward > 0
    q = trajectory(LENGTHS[0], 0)[::3]
    np.testing.assert_allclose(observation_from_msg(episode[-1].next_observation[0])[1][:6], q[14], atol=2e-6)


def test_a_classifier_for_other_frames_is_refused_in_one_line(recording, tmp_path):
    model = tmp_path / "reward"
    RewardClassifier(RewardModelConfig(preprocessing=ImagePreprocessing(output_size=64))).save(model)
    result = run_import(recording, "--run-dir", tmp_path / "run", "--units", "degrees", "--classifier", model)
    assert result.returncode == 2 and "judges 64-pixel frames, the learner's network takes 84" in result.stderr
    assert not (tmp_path / "run").exists()


def run_import(*args) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "so101_bringup.lerobot_datasets.import_dataset", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def copy(recording: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(recording, tmp_path / "dataset"))


def edit_info(root: Path, change) -> None:
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    change(info)
    path.write_text(json.dumps(info))


def _v21(root: Path) -> None:
    edit_info(root, lambda info: info.update(codebase_version="v2.1"))
    (root / "meta/episodes.jsonl").write_text("{}\n")


def _no_wrist(root: Path) -> None:
    def rename(info):
        info["features"]["observation.images.front"] = info["features"].pop("observation.images.wrist")

    edit_info(root, rename)


def _episode_gap(root: Path) -> None:
    path = next((root / "meta/episodes").rglob("*.parquet"))
    table = pq.read_table(path)
    index = table.column("episode_index").to_numpy().copy()
    index[-1] += 1
    pq.write_table(table.set_column(0, "episode_index", [index.tolist()]), path)


def _truncate(path_glob: str):
    def cut(root: Path) -> None:
        path = next(root.glob(path_glob))
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return cut


def _state_values(change):
    def edit(root: Path) -> None:
        path = next(root.glob("data/*/*.parquet"))
        table = pq.read_table(path)
        states = np.array(table.column(STATE).to_pylist(), dtype=np.float32)
        change(states)
        column = pa.FixedSizeListArray.from_arrays(pa.array(states.reshape(-1), pa.float32()), 6)
        pq.write_table(table.set_column(table.schema.get_field_index(STATE), STATE, column), path)

    return edit


def _robot(info):
    info["robot_type"] = "koch_follower"


def _joint_names(info):
    info["features"][STATE]["names"] = [f"motor_{k}" for k in range(6)]


def _short_video(root: Path) -> None:
    """The video file replaced by a valid one holding only the first episode's first 20 frames."""
    path = next(root.glob("videos/*/*/*.mp4"))
    writer = VideoWriter(path.with_name("short.mp4"), FPS, 640, 480)
    writer.append(camera_frames(20, 0))
    writer.close()
    path.with_name("short.mp4").replace(path)


def _garbled_video(root: Path) -> None:
    path = next(root.glob("videos/*/*/*.mp4"))
    data = bytearray(path.read_bytes())
    data[len(data) // 4 :] = bytes(len(data) - len(data) // 4)  # zeros from a quarter of the file on
    path.write_bytes(bytes(data))


def _nan(states):
    states[5, 2] = np.nan


def _out_of_range(states):
    states[7, 1] = 250.0  # degrees: beyond any shoulder_lift pose


UNITS = ["--units", "degrees"]
BAD_INPUTS = {  # case -> (how the dataset is broken, the units arguments, what the one line must name)
    "missing info.json": (lambda root: (root / "meta/info.json").unlink(), UNITS, "meta/info.json: missing"),
    "v2.1 layout": (_v21, UNITS, "convert_dataset_v21_to_v30"),
    "no wrist camera": (_no_wrist, UNITS, "observation.images.front"),
    "wrong robot": (lambda root: edit_info(root, _robot), UNITS, "koch_follower"),
    "wrong joint names": (lambda root: edit_info(root, _joint_names), UNITS, "shoulder_pan.pos"),
    "unknown units": (lambda root: None, [], "--units degrees"),
    "NaN joint": (_state_values(_nan), UNITS, "elbow_flex is nan at frame 5"),
    "out-of-range joint": (_state_values(_out_of_range), UNITS, "shoulder_lift = 250 at frame 7"),
    "truncated parquet": (_truncate("data/*/*.parquet"), UNITS, "truncated or not parquet"),
    "cut video": (_truncate("videos/*/*/*.mp4"), UNITS, ".mp4"),
    "short video": (_short_video, UNITS, "episode 0, observation.images.wrist: 9 of 16 frames missing"),
    "corrupt video": (_garbled_video, UNITS, ".mp4"),
    "episode index gap": (_episode_gap, UNITS, "episode indices are not 0..1"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_refused_in_one_line_and_nothing_is_written(recording, tmp_path, case):
    breaks, units, named = BAD_INPUTS[case]
    dataset = copy(recording, tmp_path)
    breaks(dataset)
    result = run_import(dataset, "--run-dir", tmp_path / "run", "--success", "all", *units)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not PROGRESS.search(line)]
    assert len(lines) == 1 and lines[0].startswith("import_dataset: "), result.stderr
    assert named in lines[0]
    assert not (tmp_path / "run").exists()  # nothing written
