"""The learner node's parameters: one table (default, description, range or choices), declared read-only and
validated by so101_contract.parameters (a bad value exits 2 with a line naming the parameter). The learner node
reads them once at start through ``declare``; nothing else reads them."""

from __future__ import annotations

from rclpy.node import Node

from so101_contract.parameters import declare_all
from so101_hilserl_core import exploration
from so101_hilserl_learner.checkpoint import DEFAULT_KEEP

# name: (default, description, (min, max) or choices or None).
PARAMETERS = {
    "run_dir": ("runs/learner", "directory for the journal, checkpoints and TensorBoard", None),
    "device": ("auto", "torch device: auto (cuda when present), cpu or cuda", ("auto", "cpu", "cuda")),
    "seed": (0, "seed of the networks and of batch sampling", (0, 2**31 - 1)),
    "network": ("", 'JSON overrides of PolicyConfig fields, e.g. {"hidden": [64, 64]}', None),
    "initial_weights": ("", "agent weights (checkpoint_tool import-robobase output) for a fresh run_dir", None),
    "batch_size": (256, "transitions per update", (1, 65_536)),
    "utd_ratio": (1.0, "updates per committed training transition (update-to-data ratio)", (0.0, 1000.0)),
    "max_backlog_transitions": (200, "owed updates are capped at utd_ratio x this many transitions' worth",
                                (1, 10**9)),
    "warmup_transitions": (1000, "online transitions needed before training starts", (1, 10**9)),
    "stale_episode_transitions": (1000, "a staged episode is cut after this many messages of other actors",
                                  (1, 10**9)),
    "online_capacity": (100_000, "transitions kept in the online buffer", (1, 10**9)),
    "demo_capacity": (20_000, "transitions kept in the demonstration buffer", (1, 10**9)),
    "demo_fraction": (0.5, "share of each batch drawn from the demonstration buffer (one row per transition it "
                      "holds while it holds fewer)", (0.0, 1.0)),
    "nstep": (3, "n of the n-step returns", (1, 100)),
    "discount": (0.99, "discount factor", (0.0, 1.0)),
    "lr": (1e-4, "AdamW learning rate of encoder, actor and critic", (1e-12, 1.0)),
    "critic_target_tau": (0.01, "soft target update rate", (1e-6, 1.0)),
    "stddev_clip": (0.3, "clip of the target policy noise", (0.0, 10.0)),
    "stddev_schedule": ("", "the run's exploration std over environment steps, e.g. linear(0.2,0.1,10000); '' = the "
                        "one the run's checkpoint or initial_weights carries, else "
                        f"{exploration.DEFAULT_PRETRAINED_SCHEDULE} with initial_weights, "
                        f"{exploration.DEFAULT_SCRATCH_SCHEDULE} from scratch", None),
    "publish_every_updates": (50, "publish weights after this many updates...", (1, 10**9)),
    "publish_period_s": (5.0, "...or this many wall-clock seconds, whichever comes first", (0.01, 86400.0)),
    "checkpoint_period_s": (120.0, "wall-clock seconds between checkpoints", (0.01, 86400.0)),
    "checkpoints_kept": (DEFAULT_KEEP, "newest checkpoints kept (older good ones to fall back to)", (1, 1000)),
    "debug_poison_after_updates": (0, "debug: after this many updates, set the critic's weights to NaN (a diverged "
                                   "run, to test that the learner exits and keeps its last good checkpoint); 0 = off",
                                   (0, 10**9)),
    "stats_period_s": (1.0, "wall-clock seconds between learner_stats messages and TensorBoard scalars",
                       (0.05, 3600.0)),
    "journal_fsync_period_s": (1.0, "journal fsync period: the loss window on power failure", (0.0, 3600.0)),
    "train_on_evaluation": (False, "also train on deterministic evaluation episodes", None),
    "accept_short_journal": (False, "start although the journal yields fewer training transitions than the "
                             "checkpoint counts (it lost data; warned at start); false: exit 2 with the fix", None),
}  # fmt: skip


def declare(node: Node) -> dict:
    """Declare every parameter of the table on ``node``; {name: value}. Raises ParameterError."""
    return declare_all(node, PARAMETERS)
