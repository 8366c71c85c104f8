import json

import pytest

from so101_driver.vision.preprocessing import ImagePreprocessing
from so101_reward.model_config import RewardModelConfig, RewardModelConfigError, check_same_preprocessing


def test_save_load_round_trip(tmp_path):
    config = RewardModelConfig(threshold=0.55, preprocessing=ImagePreprocessing(crop_x=60))
    config.save(tmp_path / "model.json")
    assert RewardModelConfig.load(tmp_path / "model.json") == config


def test_missing_field_and_bad_threshold_are_named(tmp_path):
    data = RewardModelConfig().to_dict()
    del data["threshold"]
    (tmp_path / "m.json").write_text(json.dumps(data))
    with pytest.raises(RewardModelConfigError, match="m.json: missing field 'threshold'"):
        RewardModelConfig.load(tmp_path / "m.json")
    with pytest.raises(RewardModelConfigError, match=r"threshold must be in \(0, 1\)"):
        RewardModelConfig(threshold=1.5)


def test_preprocessing_mismatch_names_each_field():
    check_same_preprocessing(ImagePreprocessing(), ImagePreprocessing())
    with pytest.raises(RewardModelConfigError, match="crop_x: model 0 vs actor 80.*output_size: model 128 vs actor 84"):
        check_same_preprocessing(ImagePreprocessing(crop_x=0, output_size=128), ImagePreprocessing())
