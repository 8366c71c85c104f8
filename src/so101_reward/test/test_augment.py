import numpy as np
import pytest
import torch

from so101_reward.augment import (
    AugmentConfig,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    adjust_sharpness,
    augment,
    random_shift,
)


@pytest.fixture
def frames():
    return torch.rand(6, 3, 20, 24, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1


def test_neutral_factors_leave_frames_unchanged(frames):
    ones = torch.ones(6, 1, 1, 1)
    for op in (adjust_brightness, adjust_contrast, adjust_saturation, adjust_sharpness):
        torch.testing.assert_close(op(frames, ones), frames)
    torch.testing.assert_close(adjust_hue(frames, torch.zeros(6, 1, 1, 1)), frames, atol=1e-5, rtol=0)
    uint8 = (frames * 255).round().to(torch.uint8)
    assert torch.equal(augment(uint8, AugmentConfig.none()), uint8)


def test_each_operation_does_what_its_name_says(frames):
    half = torch.full((6, 1, 1, 1), 0.5)
    assert adjust_brightness(frames, half).mean().item() == pytest.approx(frames.mean().item() * 0.5, rel=1e-5)
    assert adjust_contrast(frames, half).std() < 0.6 * frames.std()
    gray = adjust_saturation(frames, torch.zeros(6, 1, 1, 1))
    assert torch.allclose(gray[:, 0], gray[:, 1]) and torch.allclose(gray[:, 1], gray[:, 2])
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 0.8
    turned = adjust_hue(red, torch.full((1, 1, 1, 1), 1 / 3))  # a third of a turn: red -> green
    assert turned[:, 1].mean() > turned[:, 0].mean() and turned[:, 1].mean() > turned[:, 2].mean()
    blurred = adjust_sharpness(frames, torch.zeros(6, 1, 1, 1))
    sharp = adjust_sharpness(frames, torch.full((6, 1, 1, 1), 2.0))
    detail = lambda x: (x[..., 1:, :] - x[..., :-1, :]).abs().mean()  # noqa: E731
    assert detail(blurred) < detail(frames) < detail(sharp)


def test_sharpness_blur_matches_pil_kernel(frames):
    kernel = torch.tensor([[1.0, 1, 1], [1, 5, 1], [1, 1, 1]]) / 13
    expected = torch.nn.functional.conv2d(frames, kernel.expand(3, 1, 3, 3), groups=3)
    blurred = adjust_sharpness(frames, torch.zeros(6, 1, 1, 1))
    torch.testing.assert_close(blurred[..., 1:-1, 1:-1], expected)
    torch.testing.assert_close(blurred[..., 0, :], frames[..., 0, :])  # border kept, as PIL does


def test_shift_moves_content_by_an_integer_offset_within_the_pad():
    x = torch.arange(2 * 3 * 10 * 10, dtype=torch.float32).view(2, 3, 10, 10)
    out = random_shift(x, 2, torch.Generator().manual_seed(1))
    for b in range(2):
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(out[b, :, 3:7, 3:7], x[b, :, 3 + dy : 7 + dy, 3 + dx : 7 + dx])
        ]
        assert len(found) == 1


def test_augment_is_seeded_varies_per_sample_and_keeps_uint8():
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (8, 3, 16, 16), dtype=np.uint8))
    a = augment(x, generator=torch.Generator().manual_seed(5))
    b = augment(x, generator=torch.Generator().manual_seed(5))
    assert a.dtype == torch.uint8 and a.shape == x.shape and torch.equal(a, b)
    brightness = a.float().mean(dim=(1, 2, 3)) / x.float().mean(dim=(1, 2, 3))
    assert brightness.std() > 0.05  # each sample drew its own factors
    with pytest.raises(ValueError, match="uint8"):
        augment(x.float())
