"""The actor node's configuration: one frozen dataclass whose settings are the node's read-only ROS parameters
(so101_contract.settings). The control step's, the episode's, the action mapping's, the exploration's and the reset's
settings are their own dataclasses' (nested, flat names), so each default is written once. Plain Python: no rclpy."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from so101_contract.settings import setting
from so101_driver.model.kinematics import Kinematics
from so101_driver.vision.preprocessing import ImagePreprocessing
from so101_hilserl_actor.actor_loop import ResetConfig
from so101_hilserl_actor.control_step import ControlConfig, ControlStep
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_core.policy_io import load_initial_policy


@dataclass(frozen=True)
class ActorConfig:
    actor_id: str = setting("", "identifies this actor in transitions; '' = node namespace + start time")
    initial_weights: str = setting("", "policy or agent .safetensors to start from ('' = random init)")
    network: str = setting("", "JSON overrides of PolicyConfig size fields (must match the learner's)")
    evaluation_every_episodes: int = setting(
        0,
        "after every N training episodes one evaluation episode (deterministic policy, simulated operator's hands "
        "off); 0 = never",
        (0, 10**6),
    )
    lockstep: bool = setting(
        False,
        "publish sim/advance_until grants: the simulation advances only as far as this actor allows (needs "
        "use_sim_time)",
    )
    max_episodes: int = setting(0, "stop after this many episodes (0 = run until stopped)", (0, 10**9))
    training_since_evaluation: int = setting(
        0,
        "training episodes since the run's last evaluation episode (a resumed run's evaluation schedule goes on)",
        (0, 10**6),
    )
    wait_for_learner_weights: bool = setting(
        False,
        "start no episode before holding the learner's weights (a resumed run: never an episode on a network older "
        "than the learner's checkpoint)",
    )
    wait_for_subscribers: int = setting(1, "start episodes only when this many nodes take transitions", (0, 100))
    torch_threads: int = setting(1, "torch CPU threads for inference", (1, 64))
    preprocessing: str = setting("", "JSON of image crop/resize fields changed from the default; the reward node's too")
    debug_policy_inputs_dir: str = setting(
        "", "debug: write each step's policy input (pixels, state) as episode_E_step_S.npz here ('' = off)"
    )
    control: ControlConfig = field(default_factory=ControlConfig)
    reset: ResetConfig = field(default_factory=ResetConfig)


def clock_problem(config: ActorConfig, use_sim_time: bool) -> str:
    """Lockstep grants simulated time: why it cannot run on the wall clock ('' when the clock fits)."""
    if config.lockstep and not use_sim_time:
        return ("parameter lockstep=true needs use_sim_time=true (lockstep grants simulated time from /clock): set "
                "use_sim_time:=true or lockstep:=false")  # fmt: skip
    return ""


def network_config(config: ActorConfig) -> PolicyConfig:
    """The policy's sizes: the default PolicyConfig with the ``network`` JSON's fields changed."""
    return replace(PolicyConfig(), **(json.loads(config.network) if config.network else {}))


def control_step(config: ActorConfig) -> ControlStep:
    """The control step the actor starts with: the initial weights (or a random policy of ``network``'s sizes) and
    the exploration they carry. Raises ValueError, TypeError or OSError naming what is wrong."""
    policy, schedule, steps = load_initial_policy(config.initial_weights, network_config(config))
    return ControlStep(config.control, policy, Kinematics(), ImagePreprocessing.from_parameter(config.preprocessing),
                       pretrained=bool(config.initial_weights), schedule=schedule,
                       environment_steps=steps)  # fmt: skip
