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

from so101_contract.devices import DEFAULT_DEVICE, DEVICES, device_name
from so101_contract.state import STATE_DIM
from so101_driver.sim.curriculum import STAGES
from so101_driver.vision.preprocessing import ImagePreprocessing
from so101_hilserl_core import exploration
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_core.semantics import PROJECT_SEMANTICS
from so101_hilserl_learner import checkpoint
from so101_hilserl_learner.agent import AgentConfig, DrQV2Agent
from so101_hilserl_learner.agent_file import save_agent_weights
from so101_hilserl_learner.envs.pick import PickEnv
from so101_hilserl_learner.replay import ReplayBuffer, ReplayConfig

AGENT_FILE = "agent.safetensors"
EVAL_CSV = "eval.csv"
EVAL_SEED = 10**9  # evaluation episodes use seeds EVAL_SEED + i: the same episodes at every evaluation
NETWORK_ARGS = ("image_size", "hidden", "encoder_channels", "bottleneck", "camera")


@dataclass(frozen=True)
class PretrainConfig:
    stage: int = 1
    steps: int = 100_000  # environment steps
    seed: int = AgentConfig.seed
    device: str = "cpu"
    batch_size: int = ReplayConfig.batch_size
    utd_ratio: int = 1  # agent updates per environment step
    warmup_transitions: int = 2000  # transitions in the buffer before the first update
    # Uniform random actions before this environment step. Not the actor's default: DrQ-v2's own setting for a
    # simulated task (num_seed_frames 4000 at action repeat 2), the buffer filled with them before the first update.
    num_explore_steps: int = 2000
    stddev_schedule: str = exploration.DEFAULT_SCRATCH_SCHEDULE
    lr: float = AgentConfig.lr
    nstep: int = ReplayConfig.nstep
    discount: float = ReplayConfig.discount
    capacity: int = ReplayConfig.online_capacity
    eval_every: int = 5000  # environment steps; 0 = only at the end
    eval_episodes: int = 50
    checkpoint_every: int = 5000  # environment steps
    image_size: int = PolicyConfig.image_size
    camera: tuple[int, int] = (640, 480)
    hidden: tuple[int, ...] = PolicyConfig.hidden
    encoder_channels: int = PolicyConfig.encoder_channels
    bottleneck: int = PolicyConfig.bottleneck

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
        self.checkpoints = self.out / "checkpoints"
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
        writer = SummaryWriter(str(self.out / "tensorboard"), purge_step=p.env_steps or None)
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


def _sizes(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 256,256, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"layer widths must be positive, got {text!r}")
    return values


def _camera(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 640x480, got {text!r}") from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"camera size must be positive, got {text!r}")
    return width, height


OUTPUT_LAYOUT = """output directory (--out):
    agent.safetensors   the agent file (so101_hilserl_learner.agent_file) the launch's initial_checkpoint (the
                        actor's and the learner's initial_weights) takes: the project's action semantics in its
                        PolicyConfig, exploration metadata = the pretrained schedule linear(0.2,0.1,10000) from step 0
    eval.csv            env_steps, episodes, updates, success_rate, mean_return, wall_s of every evaluation
    checkpoints/        the run's own checkpoints (agent, optimisers, RNGs, counters; checkpoint.py), for --resume
    tensorboard/        training and evaluation curves (tensorboard --logdir OUT/tensorboard)
"""


def build_parser() -> argparse.ArgumentParser:
    d = PretrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m so101_hilserl_learner.pretrain",
        description=__doc__,
        epilog=OUTPUT_LAYOUT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run = parser.add_argument_group("run")
    run.add_argument("--out", required=True, type=Path, help="output directory (agent file, eval.csv, checkpoints)")
    run.add_argument("--stage", type=int, choices=STAGES, default=d.stage,
                     help="curriculum stage of so101/Pick-v0: 0 the robot's reset, 1 cube between the open fingers, "
                          "2 1.5 cm above the grasp, 3 pick-101's 3 cm above (default %(default)s)")  # fmt: skip
    run.add_argument("--steps", type=int, default=d.steps, help="environment steps in total (default %(default)s)")
    run.add_argument("--seed", type=int, default=d.seed, help="seed of the episodes and the agent")
    run.add_argument("--device", choices=DEVICES, default=DEFAULT_DEVICE,
                     help="auto = cuda when torch sees a CUDA device, else cpu")  # fmt: skip
    run.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    run.add_argument("--resume", action="store_true",
                     help="continue from the newest good checkpoint in --out; the replay buffer is not checkpointed "
                          "(100k frames are GBs), so updates start again once it holds --warmup-transitions new "
                          "transitions")  # fmt: skip
    run.add_argument("--eval-every", type=int, default=d.eval_every,
                     help="env steps between evaluations (and one before training); 0 = at the end only")  # fmt: skip
    run.add_argument("--eval-episodes", type=int, default=d.eval_episodes,
                     help="deterministic episodes per evaluation (>= 50 for a claim; default %(default)s)")  # fmt: skip
    run.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, help="environment steps")
    run.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    algo = parser.add_argument_group("DrQ-v2")
    algo.add_argument("--batch-size", type=int, default=d.batch_size)
    algo.add_argument("--utd-ratio", type=int, default=d.utd_ratio, help="updates per environment step")
    algo.add_argument("--warmup-transitions", type=int, default=d.warmup_transitions,
                      help="transitions in the replay buffer before the first update")  # fmt: skip
    algo.add_argument("--num-explore-steps", type=int, default=d.num_explore_steps,
                      help="uniform random actions before this environment step")  # fmt: skip
    algo.add_argument("--stddev-schedule", default=d.stddev_schedule, help="exploration std over environment steps")
    algo.add_argument("--lr", type=float, default=d.lr)
    algo.add_argument("--nstep", type=int, default=d.nstep)
    algo.add_argument("--discount", type=float, default=d.discount)
    algo.add_argument("--capacity", type=int, default=d.capacity, help="replay buffer transitions")
    net = parser.add_argument_group(
        "network and images (--resume needs the same)",
        "Only --camera 640x480 with --image-size 84 (the defaults) is the robot's preprocessing;\n"
        "smaller cameras and images make fast runs and tests whose policies do not fit the robot.",
    )
    net.add_argument("--image-size", type=int, default=d.image_size, help="policy image side (px)")
    net.add_argument("--camera", type=_camera, default=d.camera, help="wrist render WIDTHxHEIGHT (default 640x480)")
    net.add_argument("--hidden", type=_sizes, default=d.hidden, help="MLP widths, e.g. 256,256")
    net.add_argument("--encoder-channels", type=int, default=d.encoder_channels)
    net.add_argument("--bottleneck", type=int, default=d.bottleneck)
    return parser


def config_from_args(args: argparse.Namespace, device: str) -> PretrainConfig:
    names = set(PretrainConfig.__dataclass_fields__) - {"device"}
    return PretrainConfig(device=device, **{name: getattr(args, name) for name in names})


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("steps", "batch_size", "utd_ratio", "eval_episodes", "checkpoint_every", "nstep", "capacity"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("eval_every", "warmup_transitions", "num_explore_steps"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        print("pretrain: --device cuda, but torch sees no CUDA device: use --device cpu (or auto)", file=sys.stderr)
        return 2
    device = device_name(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = config_from_args(args, device)
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
