"""bench-reward: the simulated dataset is recorded once, then read from the cache; a changed size records again."""

import numpy as np

from so101_bench.reward import cached_sim_dataset


def test_sim_dataset_is_cached_and_rerecorded_when_the_size_changes(tmp_path):
    path = tmp_path / "train.npz"
    first = cached_sim_dataset(path, episodes=1, steps=3, seed=0, fresh=False)
    assert len(first) == 3 and path.is_file()
    path_mtime = path.stat().st_mtime_ns
    again = cached_sim_dataset(path, episodes=1, steps=3, seed=0, fresh=False)
    assert path.stat().st_mtime_ns == path_mtime  # read back, not recorded again
    np.testing.assert_array_equal(again.frames, first.frames)
    np.testing.assert_array_equal(again.labels, first.labels)
    bigger = cached_sim_dataset(path, episodes=1, steps=4, seed=0, fresh=False)
    assert len(bigger) == 4
