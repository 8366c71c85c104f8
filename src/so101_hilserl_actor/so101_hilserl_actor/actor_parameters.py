"""The actor node's parameters: one table (default, description, range or choices), declared read-only and
validated by so101_contract.parameters (a bad value exits 2 with a line naming the parameter), and turned into the
plain configs of the control step. No other code reads the actor's parameters."""

from __future__ import annotations

from rclpy.node import Node
from so101_hilserl_core.action_mapping import ActionConfig
from so101_hilserl_core.episode import EpisodeConfig

from so101_contract.control import CONTROL_RATE_HZ
from so101_contract.parameters import ParameterError, declare_all
from so101_hilserl_actor.actor_loop import ResetConfig
from so101_hilserl_actor.control_step import ControlConfig

# name: (default, description, (min, max) or choices or None). All read-only: the actor reads them once at start.
PARAMETERS = {
    "control_rate_hz": (CONTROL_RATE_HZ, "control rate (Hz)", (1.0, 100.0)),
    "actor_id": ("", "identifies this actor in transitions; '' = node namespace + start time", None),
    "initial_weights": ("", "policy or agent .safetensors to start from ('' = random init)", None),
    "network": ("", "JSON overrides of PolicyConfig size fields (must match the learner's)", None),
    "num_explore_steps": (500, "uniform random actions below this exploration step, when started without weights",
                          (0, 10**9)),
    "evaluation": (False, "deterministic policy, no exploration; episodes flagged evaluation", None),
    "evaluation_every_episodes": (0, "after every N training episodes one evaluation episode (deterministic "
                                  "policy, simulated operator's hands off); 0 = never", (0, 10**6)),
    "lockstep": (False, "publish sim/advance_until grants: the simulation advances only as far as this actor "
                 "allows (needs use_sim_time)", None),
    "max_episodes": (0, "stop after this many episodes (0 = run until stopped)", (0, 10**9)),
    "first_episode_id": (1, "id of the first episode (a resumed run continues its ids)", (1, 10**12)),
    "training_since_evaluation": (0, "training episodes since the run's last evaluation episode (a resumed run's "
                                  "evaluation schedule goes on)", (0, 10**6)),
    "wait_for_learner_weights": (False, "start no episode before holding the learner's weights (a resumed run: "
                                 "never an episode on a network older than the learner's checkpoint)", None),
    "swap_weights_at": ("episode", "when to take new weights: episode, or step (same learner epoch only)",
                        ("episode", "step")),
    "reset_mode": ("sim", "sim: call sim/reset; ik: drive to the home pose by IK", ("sim", "ik")),
    "reset_pause_s": (0.5, "pause after a reset (the operator repositions the cube)", (0.0, 60.0)),
    "reset_retry_pause_s": (2.0, "after a failed reset: pause, then retry (the failure is logged and counted)",
                            (0.0, 600.0)),
    "reset_max_iterations": (100, "IK reset: give up after this many control steps", (1, 100_000)),
    "reset_stuck_iterations": (15, "IK reset: give up when the error has not fallen for this many steps", (1, 10_000)),
    "use_reward_signal": (True, "act on the newest image the classifier judged (reward/signal)", None),
    "wait_for_subscribers": (1, "start episodes only when this many nodes take transitions", (0, 100)),
    "seed": (0, "seed of exploration noise, random actions and resets", (0, 2**31 - 1)),
    "torch_threads": (1, "torch CPU threads for inference", (1, 64)),
    "max_steps": (100, "steps per episode (10 s at 10 Hz)", (1, 100_000)),
    "consecutive_success_frames": (3, "frames in a row the reward node calls success", (1, 10_000)),
    "min_steps_before_success": (10, "no success before this step", (0, 100_000)),
    "max_frame_age_s": (0.25, "older images are stale: counted, and the arm holds", (0.001, 10.0)),
    "failure_penalty": (0.0, "failure mark: 0 = truncated (bootstrapped); > 0 = terminal, reward -penalty",
                        (0.0, 1000.0)),
    "max_joint_step": (0.3, "per-step joint change (rad)", (0.001, 1.0)),
    "preprocessing": ("", "JSON of image crop/resize fields changed from the default; the reward node's too", None),
    "debug_policy_inputs_dir": ("", "debug: write each step's policy input (pixels, state) as "
                                "episode_E_step_S.npz here ('' = off)", None),
}  # fmt: skip


def declare(node: Node) -> dict:
    """Declare every parameter of the table on ``node``; {name: value}. Raises ParameterError."""
    return declare_all(node, PARAMETERS)


def check_clock(v: dict, use_sim_time: bool) -> None:
    """Lockstep grants simulated time: refuse it on the wall clock (ParameterError, one line naming both)."""
    if v["lockstep"] and not use_sim_time:
        raise ParameterError("parameter lockstep=true needs use_sim_time=true (lockstep grants simulated time "
                             "from /clock): set use_sim_time:=true or lockstep:=false")  # fmt: skip


def control_config(v: dict) -> ControlConfig:
    return ControlConfig(
        period_s=1.0 / v["control_rate_hz"],
        evaluation=v["evaluation"],
        num_explore_steps=v["num_explore_steps"],
        swap_weights_at=v["swap_weights_at"],
        use_reward_signal=v["use_reward_signal"],
        seed=v["seed"],
        first_episode_id=v["first_episode_id"],
        episode=EpisodeConfig(
            max_steps=v["max_steps"],
            failure_penalty=v["failure_penalty"],
            consecutive_success_frames=v["consecutive_success_frames"],
            min_steps_before_success=v["min_steps_before_success"],
            max_frame_age_s=v["max_frame_age_s"],
        ),
        action=ActionConfig(max_joint_step_rad=v["max_joint_step"]),
    )


def reset_config(v: dict) -> ResetConfig:
    return ResetConfig(max_iterations=v["reset_max_iterations"], stuck_iterations=v["reset_stuck_iterations"])
