import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from so101_driver.vision.preprocessing import ImagePreprocessing
from so101_reward.classifier import CONFIG_FILE, WEIGHTS_FILE, RewardClassifier, RewardModelError
from so101_reward.model import ModelWeightsError, ResNetBackbone, RewardNet, load_backbone_weights
from so101_reward.model_config import RewardModelConfig


def random_frames(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 84, 84, 3), dtype=np.uint8)


def randomized(config: RewardModelConfig, seed: int = 0) -> RewardClassifier:
    torch.manual_seed(seed)
    net = RewardNet(config)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    return RewardClassifier(config, net)


def test_save_load_gives_the_same_probabilities_and_a_stable_model_id(tmp_path):
    classifier = randomized(RewardModelConfig(threshold=0.6))
    frames = random_frames(5)
    classifier.save(tmp_path / "m")
    loaded = RewardClassifier.load(tmp_path / "m" / WEIGHTS_FILE)
    np.testing.assert_allclose(loaded.probabilities(frames), classifier.probabilities(frames), atol=1e-6)
    assert loaded.threshold == 0.6 and loaded.config == classifier.config
    assert loaded.model_id.startswith("m:") and loaded.model_id == RewardClassifier.load(tmp_path / "m").model_id
    probabilities = loaded.probabilities(frames)
    assert probabilities.dtype == np.float32 and probabilities.std() > 1e-4  # a real function of the image


def test_raw_frames_go_through_the_models_preprocessing(tmp_path):
    classifier = randomized(RewardModelConfig(preprocessing=ImagePreprocessing(crop_x=0)))
    raw = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    expected = classifier.probabilities(ImagePreprocessing(crop_x=0).apply(raw)[None])[0]
    assert classifier.probability_of_image(raw) == pytest.approx(float(expected), abs=1e-6)
    bgr = raw[..., ::-1].copy()
    assert classifier.probability_of_image(bgr, "bgr8") == pytest.approx(float(expected), abs=1e-6)
    with pytest.raises(RewardModelError, match=r"\(N, 84, 84, 3\) uint8"):
        classifier.probabilities(raw[None])


def test_load_refuses_broken_or_mismatched_model_directories(tmp_path):
    with pytest.raises(RewardModelError, match="no model.safetensors"):
        RewardClassifier.load(tmp_path)
    randomized(RewardModelConfig()).save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / CONFIG_FILE).read_text())
    config["channels"] = [8, 16, 32]
    (tmp_path / "m" / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(RewardModelError, match="shapes differ"):
        RewardClassifier.load(tmp_path / "m")
    (tmp_path / "m" / WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(RewardModelError, match="not a readable safetensors file"):
        RewardClassifier.load(tmp_path / "m")


def test_resnet_backbone_loads_torchvision_style_weights_and_stays_frozen(tmp_path):
    reference = ResNetBackbone((1, 1, 1, 1))
    with torch.no_grad():
        for p in reference.parameters():
            p.normal_(0, 0.02)
    state = {f"{k}": v for k, v in reference.state_dict().items() if k not in ("mean", "std")}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)  # a full classifier's head
    save_file(state, tmp_path / "resnet10.safetensors")
    net = RewardNet(RewardModelConfig(architecture="resnet10"))
    load_backbone_weights(net, tmp_path / "resnet10.safetensors")
    torch.testing.assert_close(net.backbone.conv1.weight, reference.conv1.weight)
    assert not any(p.requires_grad for p in net.backbone.parameters())
    assert {id(p) for p in net.trainable_parameters()}.isdisjoint({id(p) for p in net.backbone.parameters()})
    net.train()
    assert net.head.training and not net.backbone.training  # frozen BatchNorm keeps its statistics
    torch.save(state, tmp_path / "resnet10.pth")
    load_backbone_weights(RewardNet(RewardModelConfig(architecture="resnet10")), tmp_path / "resnet10.pth")


class NotATensor:
    pass


def test_backbone_files_that_need_code_or_do_not_fit_are_refused(tmp_path):
    net = RewardNet(RewardModelConfig(architecture="resnet10"))
    torch.save({"conv1.weight": NotATensor()}, tmp_path / "evil.pth")
    with pytest.raises(ModelWeightsError, match="not a plain tensor state dict"):
        load_backbone_weights(net, tmp_path / "evil.pth")
    save_file({"conv1.weight": torch.zeros(64, 3, 7, 7)}, tmp_path / "partial.safetensors")
    with pytest.raises(ModelWeightsError, match="missing"):
        load_backbone_weights(net, tmp_path / "partial.safetensors")
    with pytest.raises(ModelWeightsError, match="only apply to the resnet"):
        load_backbone_weights(RewardNet(RewardModelConfig()), tmp_path / "partial.safetensors")
