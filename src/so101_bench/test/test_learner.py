"""bench-learner: the reference drqv2 formulation agrees with the agent's augmentation; the rate measurement."""

import torch

from so101_bench.learner import ReferenceDrQV2, reference_random_shift, updates_per_second
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_learner.agent import random_shifts, shift_pixels
from so101_hilserl_learner.replay import random_batch


def test_integer_shift_equals_grid_sample_formulation():
    gen = torch.Generator().manual_seed(3)
    pixels = torch.randint(0, 256, (16, 9, 20, 20), generator=gen, dtype=torch.uint8)
    shifts = random_shifts(16, 4, gen, "cpu")
    shifts[0], shifts[1], shifts[2] = torch.tensor([0, 8]), torch.tensor([8, 0]), torch.tensor([1, 6])
    ours = shift_pixels(pixels, shifts, 4).float()
    reference = reference_random_shift(pixels.float(), 4, shifts)
    assert ours.shape == reference.shape
    assert (ours - reference).abs().max() < 0.01  # grid_sample lands on pixel centres up to float rounding
    # Not trivially equal: the shifts move the image, x and y are not swapped, edges replicate.
    assert not torch.equal(ours[2], pixels[2].float())
    assert (ours[2] - shift_pixels(pixels, shifts.flip(1), 4).float()[2]).abs().max() > 10
    rows = (torch.arange(20) + 4).clamp(max=19)  # shift (x 0, y 8): rows move up by 4, columns right by 4
    assert torch.equal(ours[0, :, :, :5], pixels[0, :, rows, :1].expand(-1, -1, 5).float())
    assert torch.equal(ours[0, :, :, 4:], pixels[0, :, rows, :16].float())


def test_updates_per_second_times_only_the_updates_after_warmup():
    steps = []
    rate = updates_per_second(lambda batch, step: steps.append(step), None, 4, 2, torch.device("cpu"))
    assert steps == [0, 1, 2, 3, 4, 5]  # warm-up steps, then the timed ones, numbered on
    assert rate > 0.0


def test_reference_update_trains_encoder_and_critic_and_moves_the_target_by_tau():
    """The drqv2 re-implementation the benchmark times is a working update, not a stand-in that does less work."""
    torch.manual_seed(0)
    sizes = PolicyConfig(image_size=84, state_dim=0, action_dim=4, bottleneck=50, hidden=(64, 64))
    reference = ReferenceDrQV2(hidden=64)
    encoder = [p.detach().clone() for p in reference.encoder.parameters()]
    target = [p.detach().clone() for p in reference.critic_target.parameters()]
    metrics = reference.update(random_batch(4, sizes), 0)
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values()) and "critic_loss" in metrics
    assert any(not torch.equal(old, new) for old, new in zip(encoder, reference.encoder.parameters(), strict=True))
    pairs = zip(target, reference.critic.parameters(), reference.critic_target.parameters(), strict=True)
    for old, critic, new in pairs:
        torch.testing.assert_close(new, reference.tau * critic + (1 - reference.tau) * old)
