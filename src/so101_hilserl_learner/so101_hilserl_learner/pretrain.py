"""Sim pretraining: DrQ-v2 (the project's agent, replay buffer and exploration schedule) on so101/Pick-v0, no ROS.

An explicit loop: act (uniform random before --num-explore-steps, then mean + scheduled noise), store the step, run
--utd-ratio updates per env step once the buffer holds --warmup-transitions transitions, and every --eval-every env
steps (and before the first update) measure the success rate of --eval-episodes deterministic episodes. --out gets
the agent file that the actor's and the learner's ``initial_weights`` take (layout below).

    python -m so101_hilserl_learner.pretrain --stage 1 --steps 20000 --out runs/pretrain-s1
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from so101_contract.cli import add_config_arguments, config_from_arguments
from so101_contract.devices import DEFAULT_DEVICE, DEVICES, device_name
from so101_contract.run_dir import LearnerDir
from so101_contract.settings import setting
from so101_contract.state import STATE_DIM
from so101_driver.sim.curriculum import STAGES
from so101_driver.sim.world import SimConfig
from so101_driver.vision.preprocessing import ImagePreprocessing
from so101_hilserl_core import exploration
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_core.semantics import PROJECT_SEMANTICS
from so101_hilserl_learner import checkpoint
from so101_hilserl_learner.agent import AgentConfig, DrQV2Agent
from so101_hilserl_learner.envs.pick import PickEnv
from so101_hilserl_learner.replay import ReplayBuffer, ReplayConfig
from so101_hilserl_learner.utd import UtdConfig
from so101_hilserl_learner.weight_files.agent_file import save_agent_weights

AGENT_FILE = "agent.safetensors"
EVAL_CSV = "eval.csv"
EVAL_SEED = 10**9  # evaluation episodes use seeds EVAL_SEED + i: the same episodes at every evaluation
NETWORK_ARGS = ("image_size", "hidden", "encoder_channels", "bottleneck", "camera")


@dataclass(frozen=True)
class PretrainConfig:
    """Pretraining's settings: the CLI's flags are derived from them (``--name-with-dashes``)."""

    stage: int = setting(
        1,
        "curriculum stage of so101/Pick-v0: 0 the robot's reset, 1 cube between the open "
        "fingers, 2 1.5 cm above the grasp, 3 pick-101's 3 cm above",
        (min(STAGES), max(STAGES)),
    )
    steps: int = setting(100_000, "environment steps in total", (1, 10**9))
    seed: int = setting(AgentConfig.seed, "seed of the episodes and the agent", (0, 2**31 - 1))
    device: str = setting(DEFAULT_DEVICE, "auto = cuda when torch sees a CUDA device, else cpu", DEVICES)
    batch_size: int = setting(ReplayConfig.batch_size, "transitions per update", (1, 65_536))
    utd_ratio: int = setting(round(UtdConfig.utd_ratio), "agent updates per environment step", (1, 1000))
    warmup_transitions: int = setting(2000, "transitions in the replay buffer before the first update", (0, 10**9))
    # Not the actor's default: DrQ-v2's own setting for a simulated task (num_seed_frames 4000 at action repeat 2),
    # the buffer filled with them before the first update.
    num_explore_steps: int = setting(2000, "uniform random actions before this environment step", (0, 10**9))
    stddev_schedule: str = setting(exploration.DEFAULT_SCRATCH_SCHEDULE, "exploration std over environment steps")
    lr: float = setting(AgentConfig.lr, "AdamW learning rate", (1e-12, 1.0))
    nstep: int = setting(ReplayConfig.nstep, "n of the n-step returns", (1, 100))
    discount: float = setting(ReplayConfig.discount, "discount factor", (0.0, 1.0))
    capacity: int = setting(ReplayConfig.online_capacity, "replay buffer transitions", (1, 10**9))
    eval_every: int = setting(5000, "env steps between evaluations (and one before training); 0 = at the end only",
                              (0, 10**9))  # fmt: skip
    eval_episodes: int = setting(50, "deterministic episodes per evaluation (>= 50 for a claim)", (1, 10**6))
    checkpoint_every: int = setting(5000, "environment steps between checkpoints", (1, 10**9))
    image_size: int = setting(PolicyConfig.image_size, "policy image side (px)", (8, 512))
    camera: tuple[int, int] = setting((SimConfig.camera_width, SimConfig.camera_height),
                                      "wrist render WIDTHxHEIGHT (px)")  # fmt: skip
    hidden: tuple[int, ...] = setting(PolicyConfig.hidden, "MLP widths, e.g. 256,256")
    encoder_channels: int = setting(PolicyConfig.encoder_channels, "encoder conv channels", (1, 1024))
    bottleneck: int = setting(PolicyConfig.bottleneck, "per-modality bottleneck width", (1, 4096))

    def policy_config(self) -> PolicyConfig:
        return PolicyConfig(
            image_size=self.image_size,
            hidden=self.hidden,
            encoder_channels=self.encoder_channels,
            bottleneck=self.bottleneck,
            **PROJECT_SEMANTICS,
        )

    def preprocessing(self) -> ImagePreprocessing:
        """The project's crop (the centre square of the camera frame) and INTER_AREA resize, at this camera size."""
        width, height = self.camera
        side = min(width, height)
        return ImagePreprocessing(
            crop_x=(width - side) // 2, crop_y=(height - side) // 2, crop_width=side, crop_height=side,
            output_size=self.image_size, source_width=width, source_height=height,
        )  # fmt: skip


@dataclass
class Progress:
    env_steps: int = 0
    episodes: int = 0
    updates: int = 0
    wall_s: float = 0.0
    evals: list = field(default_factory=list)  # [env_steps, success_rate, mean_return]


def newest(obs: dict) -> tuple[np.ndarray, np.ndarray]:
    """The newest frame (HWC uint8) and state (18,) of a stacked observation: what the replay buffer stores."""
    return obs["pixels"][-3:].transpose(1, 2, 0), obs["state"][-STATE_DIM:]


def evaluate(env: PickEnv, agent: DrQV2Agent, episodes: int, step: int) -> tuple[float, float]:
    """(success rate, mean return) of the policy's mean action over ``episodes`` fixed-seed episodes."""
    wins, returns = 0, []
    for index in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED + index)
        total, done = 0.0, False
        while not done:
            action = agent.act(obs["pixels"], obs["state"], step, eval_mode=True)
            obs, reward, terminated, truncated, info = env.step(action)
            total += reward
            done = terminated or truncated
        wins += bool(info["is_success"])
        returns.append(total)
    return wins / episodes, float(np.mean(returns))


class Pretrainer:
    def __init__(self, cfg: PretrainConfig, out: Path, resume: bool, progress_bar: bool = True):
        self.cfg, self.out, self.progress_bar = cfg, Path(out), progress_bar
        self.policy_config = cfg.policy_config()
        agent_config = AgentConfig(
            lr=cfg.lr, stddev_schedule=cfg.stddev_schedule, num_explore_steps=cfg.num_explore_steps, seed=cfg.seed
        )
        self.agent = DrQV2Agent(self.policy_config, agent_config, device=cfg.device)
        env_args = {"stage": cfg.stage, "semantics": PROJECT_SEMANTICS, "preprocessing": cfg.preprocessing()}
        self.env, self.eval_env = PickEnv(**env_args), PickEnv(**env_args)
        self.buffer = ReplayBuffer.for_policy(
            self.policy_config, cfg.capacity, nstep=cfg.nstep, discount=cfg.discount, seed=cfg.seed
        )
        self.batch = self.buffer.empty_batch(cfg.batch_size)
        self.progress = Progress()
        self.checkpoints = LearnerDir(self.out).checkpoints
        loaded = checkpoint.load_newest_good(self.checkpoints) if self.checkpoints.is_dir() else None
        if loaded is not None and not resume:
            raise ValueError(f"--out {self.out} already holds a pretraining checkpoint: pass --resume or a new --out")
        if loaded is not None:
            self._restore(loaded)

    # ---- checkpoints --------------------------------------------------------------------------------------------
    def _network(self) -> dict:
        cfg = asdict(self.cfg)
        return {name: list(cfg[name]) if isinstance(cfg[name], tuple) else cfg[name] for name in NETWORK_ARGS}

    def _restore(self, loaded: checkpoint.Loaded) -> None:
        state = loaded.state
        saved = state.get("network", {})
        for name, value in self._network().items():
            if saved.get(name) != value:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"--resume: {loaded.path} was trained with {flag} {saved.get(name)}, not {value}")
        self.agent.load_state_dict(state["agent"])
        self.progress = Progress(**state["progress"])
        print(f"resumed from {loaded.path} at {self.progress.env_steps} env steps", file=sys.stderr)

    def save_checkpoint(self) -> None:
        state = {"agent": self.agent.state_dict(), "progress": asdict(self.progress), "network": self._network()}
        checkpoint.save_checkpoint(self.checkpoints, self.progress.env_steps, state)

    def write_agent_file(self) -> Path:
        path = self.out / AGENT_FILE
        source = {"kind": "sim-pretrain", "env": "so101/Pick-v0", "stage": self.cfg.stage,
                  "env_steps": self.progress.env_steps, "updates": self.progress.updates}  # fmt: skip
        training = {"stddev_schedule": self.cfg.stddev_schedule, "stddev_clip": self.agent.config.stddev_clip,
                    "discount": self.cfg.discount, "nstep": self.cfg.nstep, "lr": self.cfg.lr,
                    "batch_size": self.cfg.batch_size, "utd_ratio": self.cfg.utd_ratio}  # fmt: skip
        # Fine-tuning starts at environment step 0 with the pretrained schedule (exploration.py: std 1.0 hides a
        # pretrained behaviour), not where this run's own schedule stopped.
        extra = exploration.to_metadata(exploration.DEFAULT_PRETRAINED_SCHEDULE, 0)
        save_agent_weights(path, self.agent.weights(), self.policy_config, source, training, extra)
        return path

    # ---- the loop -----------------------------------------------------------------------------------------------
    def run(self) -> Progress:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        cfg, p = self.cfg, self.progress
        self.out.mkdir(parents=True, exist_ok=True)
        writer = SummaryWriter(str(LearnerDir(self.out).tensorboard), purge_step=p.env_steps or None)
        bar = tqdm(total=cfg.steps, initial=p.env_steps, unit="step", disable=not self.progress_bar, mininterval=1.0)
        start = time.perf_counter() - p.wall_s
        next_eval = p.env_steps if not p.evals else p.evals[-1][0] + cfg.eval_every
        next_checkpoint = p.env_steps + cfg.checkpoint_every
        recent: list[bool] = []
        try:
            while True:
                # Evaluations and the end fall on episode boundaries (an episode is never cut short).
                evaluated = bool(p.evals) and p.evals[-1][0] == p.env_steps  # e.g. a resume of a finished run
                if not evaluated and ((cfg.eval_every and p.env_steps >= next_eval) or p.env_steps >= cfg.steps):
                    p.wall_s = time.perf_counter() - start
                    self._evaluate(writer, bar)
                    next_eval = p.env_steps + cfg.eval_every
                if p.env_steps >= cfg.steps:
                    break
                success, episode_return = self._episode(writer)
                recent = [*recent, success][-20:]
                writer.add_scalar("train/episode_return", episode_return, p.env_steps)
                writer.add_scalar("train/success", float(success), p.env_steps)
                bar.n = p.env_steps
                bar.set_postfix_str(f"train success(last {len(recent)}) {np.mean(recent):.0%} updates {p.updates}")
                if p.env_steps >= next_checkpoint:
                    p.wall_s = time.perf_counter() - start
                    self.save_checkpoint()
                    next_checkpoint = p.env_steps + cfg.checkpoint_every
        finally:
            bar.close()
            writer.close()
        p.wall_s = time.perf_counter() - start
        self.save_checkpoint()
        self.write_agent_file()
        return p

    def _episode(self, writer) -> tuple[bool, float]:
        cfg, p, agent, buffer = self.cfg, self.progress, self.agent, self.buffer
        obs, _ = self.env.reset(seed=cfg.seed * 1_000_003 + p.episodes)
        buffer.begin_sequence()
        total, done = 0.0, False
        while not done:
            action = agent.act(obs["pixels"], obs["state"], p.env_steps, eval_mode=False)
            next_obs, reward, terminated, truncated, info = self.env.step(action)
            frame, state = newest(obs)
            buffer.add(frame, state, action, reward, intervention=False)
            p.env_steps += 1
            total += reward
            done = terminated or truncated
            obs = next_obs
            if len(buffer) >= max(cfg.warmup_transitions, cfg.batch_size):
                for _ in range(cfg.utd_ratio):
                    metrics = agent.update(buffer.sample(cfg.batch_size, out=self.batch), p.env_steps)
                    p.updates += 1
                if p.updates % 100 == 0:
                    for name, value in metrics.items():
                        writer.add_scalar(f"agent/{name}", value, p.env_steps)
        frame, state = newest(obs)
        buffer.end_sequence(frame, state, terminated=terminated)
        p.episodes += 1
        return bool(info["is_success"]), total

    def _evaluate(self, writer, bar) -> None:
        p = self.progress
        rate, mean_return = evaluate(self.eval_env, self.agent, self.cfg.eval_episodes, p.env_steps)
        p.evals.append([p.env_steps, rate, mean_return])
        writer.add_scalar("eval/success_rate", rate, p.env_steps)
        writer.add_scalar("eval/mean_return", mean_return, p.env_steps)
        path = self.out / EVAL_CSV
        new = not path.exists()
        with path.open("a", newline="") as handle:
            out = csv.writer(handle)
            if new:
                out.writerow(["env_steps", "episodes", "updates", "success_rate", "mean_return", "wall_s"])
            out.writerow([p.env_steps, p.episodes, p.updates, f"{rate:.4f}", f"{mean_return:.3f}", f"{p.wall_s:.1f}"])
        bar.write(f"eval at {p.env_steps} env steps ({p.updates} updates): success {rate:.0%} over "
                  f"{self.cfg.eval_episodes} episodes, mean return {mean_return:.2f}")  # fmt: skip
        self.write_agent_file()


# ------------------------------------------------------------------------------------------------------------ CLI


OUTPUT_LAYOUT = """output directory (--out):
    agent.safetensors   the agent file (weight_files.agent_file) the launch's initial_checkpoint (the
                        actor's and the learner's initial_weights) takes: the project's action semantics in its
                        PolicyConfig, exploration metadata = the pretrained schedule linear(0.2,0.1,10000) from step 0
    eval.csv            env_steps, episodes, updates, success_rate, mean_return, wall_s of every evaluation
    checkpoints/        the run's own checkpoints (agent, optimisers, RNGs, counters; checkpoint.py), for --resume
    tensorboard/        training and evaluation curves (tensorboard --logdir OUT/tensorboard)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m so101_hilserl_learner.pretrain",
        description=__doc__,
        epilog=OUTPUT_LAYOUT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run = parser.add_argument_group("run")
    run.add_argument("--out", required=True, type=Path, help="output directory (agent file, eval.csv, checkpoints)")
    run.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    run.add_argument("--resume", action="store_true",
                     help="continue from the newest good checkpoint in --out; the replay buffer is not checkpointed "
                          "(100k frames are GBs), so updates start again once it holds --warmup-transitions new "
                          "transitions")  # fmt: skip
    run.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    group = parser.add_argument_group(
        "pretraining (PretrainConfig; --resume needs the same network and image sizes)",
        "Only --camera 640x480 with --image-size 84 (the defaults) is the robot's preprocessing;\n"
        "smaller cameras and images make fast runs and tests whose policies do not fit the robot.",
    )
    add_config_arguments(group, PretrainConfig)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("pretrain: --device cuda, but torch sees no CUDA device: use --device cpu (or auto)", file=sys.stderr)
        return 2
    device = device_name(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = config_from_arguments(PretrainConfig, args, device=device)
        cfg.preprocessing()
        exploration.validate_schedule(cfg.stddev_schedule, "--stddev-schedule")
        trainer = Pretrainer(cfg, args.out, args.resume, progress_bar=not args.no_progress)
    except (ValueError, checkpoint.CheckpointError) as err:
        print(f"pretrain: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    progress = trainer.run()
    first, last = progress.evals[0], progress.evals[-1]
    print(
        f"stage {cfg.stage}: eval success {first[1]:.0%} at {first[0]} env steps -> {last[1]:.0%} at {last[0]} "
        f"({cfg.eval_episodes} episodes each); {progress.updates} updates, {progress.wall_s:.0f} s on {device}; "
        f"agent file {args.out / AGENT_FILE}"
    )
    print(json.dumps({"evals": progress.evals}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
