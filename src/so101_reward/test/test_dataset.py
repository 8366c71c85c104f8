import numpy as np
import pytest

from so101_driver.vision.preprocessing import ImagePreprocessing
from so101_reward.dataset import DatasetError, RewardDataset, concatenate


def make_dataset(episodes: int = 10, per_episode: int = 8, seed: int = 0) -> RewardDataset:
    rng = np.random.default_rng(seed)
    n = episodes * per_episode
    labels = np.zeros(n, dtype=np.uint8)
    for e in range(0, episodes, 2):  # every other episode ends in success
        labels[e * per_episode + per_episode // 2 : (e + 1) * per_episode] = 1
    return RewardDataset(
        rng.integers(0, 256, (n, 84, 84, 3), dtype=np.uint8),
        labels,
        np.repeat(np.arange(episodes), per_episode),
        [f"ep{e}" for e in range(episodes)],
        ImagePreprocessing(),
    )


def test_episode_split_holds_out_whole_episodes_of_both_kinds():
    dataset = make_dataset()
    train, val = dataset.split(0.2, by="episode", seed=1)
    assert len(train) + len(val) == len(dataset)
    assert set(np.unique(train.episodes)).isdisjoint(np.unique(val.episodes))
    assert 0 < val.positives < len(val)  # a success episode and a failure episode went to validation
    assert train.split(0.2, seed=1)[1].episode_names == dataset.episode_names


def test_frame_split_draws_frames():
    train, val = make_dataset().split(0.25, by="frame", seed=0)
    assert len(val) == 20 and len(train) == 60
    assert not set(np.unique(train.episodes)).isdisjoint(np.unique(val.episodes))
    with pytest.raises(DatasetError, match="'episode' or 'frame'"):
        make_dataset().split(0.2, by="bag")


def test_save_load_round_trip_keeps_every_field(tmp_path):
    dataset = make_dataset()
    dataset.save(tmp_path / "d.npz")
    loaded = RewardDataset.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(loaded.frames, dataset.frames)
    np.testing.assert_array_equal(loaded.labels, dataset.labels)
    np.testing.assert_array_equal(loaded.episodes, dataset.episodes)
    assert loaded.episode_names == dataset.episode_names and loaded.preprocessing == dataset.preprocessing
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_bad_files_are_named_with_the_reason(tmp_path):
    with pytest.raises(DatasetError, match="no such dataset file"):
        RewardDataset.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DatasetError, match="other.npz: not a reward dataset"):
        RewardDataset.load(tmp_path / "other.npz")
    np.savez(tmp_path / "pickled.npz", meta=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DatasetError, match="pickled.npz"):
        RewardDataset.load(tmp_path / "pickled.npz")
    with pytest.raises(DatasetError, match="labels must be 0"):
        RewardDataset(np.zeros((2, 84, 84, 3), np.uint8), [0, 2], [0, 0], ["a"], ImagePreprocessing())


def test_concatenate_keeps_episodes_apart_and_refuses_mixed_preprocessing():
    a, b = make_dataset(4, 5, seed=1), make_dataset(4, 5, seed=2)
    both = concatenate([a, b])
    assert len(both) == 40 and len(np.unique(both.episodes)) == 8 and both.episode_names[4] == "1/ep0"  # a clash
    renamed = RewardDataset(b.frames, b.labels, b.episodes, [f"b{e}" for e in range(4)], b.preprocessing)
    assert concatenate([a, renamed]).episode_names == a.episode_names + renamed.episode_names
    other = RewardDataset(a.frames, a.labels, a.episodes, a.episode_names, ImagePreprocessing(crop_x=0))
    with pytest.raises(DatasetError, match="same one"):
        concatenate([a, other])


def test_saved_files_get_the_usual_permissions(tmp_path):
    path = make_dataset(2, 2).save(tmp_path / "d.npz")
    assert path.stat().st_mode & 0o044 == 0o044  # readable by the group and others under the default umask
