"""The HIL learning benchmark: does the policy learn, in the product graph, with the simulated operator correcting?

From a weak pretrained policy (``so101_hilserl_learner.pretrain`` stopped early, cached in OUT/pretrain) the runner
trains in the whole sim graph, in lockstep, once per arm of ``ARMS`` and per seed, with evaluation episodes
(deterministic policy, hands off) between training episodes. Each run's episodes.csv gives the summary, the curves and
OUT/summary.json; the benchmark exits 1 when a goal (``goal_misses``, ``verdict``) is missed.

    python -m so101_bench.hil --config cpu --seeds 0,1,2      # or --config gpu: full size on a GPU
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import yaml
from rclpy.serialization import serialize_message

from so101_bench.q_check import end_of_run_q
from so101_bringup import profiles
from so101_bringup.lerobot_datasets.export_run import complete_episodes, transition_records
from so101_bringup.lerobot_datasets.import_dataset import import_dataset
from so101_bringup.lerobot_datasets.layout import INFO_PATH
from so101_bringup.lerobot_datasets.transitions import ImportOptions
from so101_bringup.profiles import PROFILES, SimProfile
from so101_bringup.records.episode_log import EpisodeRow, read_episode_log
from so101_bringup.records.report import (
    RunSummary,
    load_run,
    rolling_mean,
    rolling_ratio,
    summarize,
    write_report,
)
from so101_contract.cli import nonnegative_int, positive_float
from so101_contract.run_dir import EPISODE_LOG, RunDir
from so101_driver.sim.sim_clock import SimClockConfig
from so101_driver.vision.preprocessing import ImagePreprocessing
from so101_hilserl_core.episode import EpisodeConfig
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_learner.journal import TransitionJournal
from so101_hilserl_learner.utd import UtdConfig

GOAL_EVAL_GAIN = 0.30  # evaluation success: last 20 at least this much above the first 20
GOAL_INTERVENTION_RATIO = 0.5  # intervention fraction: last 20 at most this share of the first 20
BLOCK = 20  # episodes per first/last block
MARKER = ".so101_bench_hil"  # a run directory this benchmark made (and may replace)


@dataclass(frozen=True)
class BenchConfig:
    """One configuration of the benchmark: the graph's sizes are a SimProfile (make sim's, for the CPU one), the
    rest is the benchmark's own. Sizes for the CPU one were chosen by measurement (README)."""

    name: str
    profile: SimProfile  # stage, network, camera, batch, the pretrained start, evaluation cadence, warm-up
    utd_ratio: float = UtdConfig.utd_ratio
    # lockstep: the sim holds while the learner owes more (about one episode)
    max_backlog_updates: int = SimClockConfig.lockstep_max_backlog_updates
    demo_episodes: int = 10  # full demonstrations the operator drives before the policy acts (HIL and demos arms)
    max_steps: int = EpisodeConfig.max_steps  # control steps per episode
    minutes: float = 25.0  # wall-clock budget of the HIL run; the control run gets its environment steps
    device: str = "cpu"
    control: bool = True


CONFIGS = {
    # 2 CPU cores, at most 60 minutes for the three steps together: make sim's CPU size, so the benchmark measures
    # exactly what make sim runs without a GPU. Measured here (1 thread, batch 64): 16 encoder channels on 64 px
    # images update ~9x/s, the reference sizes at batch 128 ~1.3x/s; a 320x240 render halves the simulation's and
    # the transport's share.
    "cpu": BenchConfig(name="cpu", profile=PROFILES["cpu"], minutes=25.0),
    # Full size on a GPU: RoboBase's network and batch, the seed's timeline (1k-5k steps decreasing intervention).
    "gpu": BenchConfig(
        name="gpu",
        profile=SimProfile(
            name="gpu",
            description="full size",
            stage=3,
            pretrain_steps=2000,
            evaluation_every_episodes=3,
            warmup_transitions=200,
        ),
        minutes=60.0,
        device="cuda",
    ),
    # CI: a few minutes; proves the lockstep graph trains at the requested UTD and logs every episode. No claim.
    # The learner is deliberately slower than the 10 Hz data here (batch 128: a few updates/s), so only lockstep
    # keeps the requested ratio.
    "ci": BenchConfig(
        name="ci",
        profile=SimProfile(
            name="ci",
            description="CI",
            stage=3,
            network={"encoder_channels": 16, "image_size": 64},
            camera=(320, 240),
            batch_size=128,
            warmup_transitions=50,
            evaluation_every_episodes=2,
        ),
        max_backlog_updates=5,
        demo_episodes=2,
        max_steps=30,
        minutes=2.5,
        control=False,
    ),
}
# The robot's own reset (the seed's real-robot task), where RL alone should struggle: the one that matters.
CONFIGS["cpu-stage0"] = replace(
    CONFIGS["cpu"], name="cpu-stage0", profile=replace(PROFILES["cpu"], name="cpu-stage0", stage=0)
)


# ---- the runs ------------------------------------------------------------------------------------------------------
def write_params(path: Path, config: BenchConfig, operator_mode: str, demo_episodes: int = 0) -> Path:
    """config/sim.yaml with the configuration's sizes and the benchmark's choices for the graph's nodes."""
    return profiles.write_params(
        path,
        config.profile,
        {
            "so101_sim": dict(operator_mode=operator_mode, operator_demo_episodes=demo_episodes,
                              lockstep_max_backlog_updates=config.max_backlog_updates),
            "actor": dict(max_steps=config.max_steps),
            "learner": dict(utd_ratio=float(config.utd_ratio), device=config.device, checkpoint_period_s=300.0),
        },
    )  # fmt: skip


def preprocessing(config: BenchConfig) -> ImagePreprocessing:
    """The pretraining's crop and resize at this camera and image size: the graph's actor must see the same."""
    return config.profile.preprocessing()


def fresh_dir(path: Path, overwrite: bool) -> Path:
    """An empty run directory; one this benchmark made before is replaced only with ``overwrite``."""
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise ValueError(f"{path} exists: pass --overwrite to replace it, or another --out")
        if not (path / MARKER).exists():
            raise ValueError(f"{path} was not made by this benchmark: refusing to delete it; give another --out")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).touch()
    return path


def pretrain(config: BenchConfig, out: Path, seed: int) -> Path:
    agent = out / "agent.safetensors"
    if agent.is_file():
        print(f"pretraining: reusing {agent}", flush=True)
        return agent
    cmd = [sys.executable, *config.profile.pretrain_command(out, seed, config.device)]
    print(
        f"pretraining ({config.profile.pretrain_steps} env steps, stage {config.profile.stage}): {' '.join(cmd[1:])}",
        flush=True,
    )
    started = time.monotonic()
    with open(out.parent / "pretrain.log", "ab") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    print(f"pretraining done in {time.monotonic() - started:.0f} s", flush=True)
    return agent


def read_episodes(run_dir: Path) -> list[EpisodeRow]:
    """The rows the runner wrote so far (none before the first episode)."""
    path = RunDir(run_dir).episodes
    return read_episode_log(path) if path.is_file() else []


def training_steps(rows: list[EpisodeRow]) -> int:
    return sum(r.steps for r in rows if not r.evaluation)


def run_graph(
    run_dir: Path,
    params: Path,
    checkpoint: str,
    minutes: float,
    domain_id: int,
    step_budget: int = 0,
) -> float:
    """The runner for ``minutes`` of wall time (or until ``step_budget`` training steps); its wall time in s."""
    cmd = [sys.executable, "-m", "so101_bringup.runner", "--mode", "sim", "--run-dir", str(run_dir)]
    cmd += ["--params-file", str(params), "--no-status", "--domain-id", str(domain_id)]
    if checkpoint:
        cmd += ["--initial-checkpoint", checkpoint]
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    started = time.monotonic()
    deadline = started + 60.0 * minutes
    with open(run_dir / "runner.log", "ab") as log:
        process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    last_print = 0.0
    try:
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(1.0)
            rows = read_episodes(run_dir)
            steps = training_steps(rows)
            if step_budget and steps >= step_budget:
                break
            if time.monotonic() - last_print >= 30.0:
                last_print = time.monotonic()
                print(f"  {run_dir.name}: {_progress(rows, started)}", flush=True)
        if process.poll() is not None:
            raise RuntimeError(f"the runner exited with code {process.returncode}; see {run_dir}/runner.log and logs/")
    finally:
        _stop(process)
    return time.monotonic() - started


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM: the runner stops the graph in order (the learner writes its checkpoint); SIGKILL what is left."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=120.0)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(timeout=10.0)


def make_report(run_dir: Path) -> None:
    """The report's PNG curves of one run (RUN_DIR/report): success split, intervention, return, evaluation, losses."""
    written = write_report(load_run(run_dir), run_dir / "report", BLOCK)
    print(f"  curves: {', '.join(p.name for p in written)} in {run_dir / 'report'}", flush=True)


def _progress(rows: list[EpisodeRow], started: float) -> str:
    evaluations = sum(r.evaluation for r in rows)
    utd = rows[-1].achieved_utd if rows else math.nan
    return (
        f"{(time.monotonic() - started) / 60:.1f} min, {len(rows) - evaluations} training / {evaluations} evaluation "
        f"episodes, {training_steps(rows)} env steps, UTD {utd:.2f}"
    )


# ---- the verdict ---------------------------------------------------------------------------------------------------
def verdict(summary: RunSummary) -> list[str]:
    """What misses the goal (empty: met)."""
    misses = []
    if summary.evaluation_episodes < 2 * BLOCK or summary.training_episodes < 2 * BLOCK:
        misses.append(f"fewer than {2 * BLOCK} evaluation or training episodes: the blocks overlap")
    gain = summary.evaluation_gain_points
    if not gain >= 100 * GOAL_EVAL_GAIN:
        misses.append(f"evaluation success gained {gain:+.0f} points (goal >= +{100 * GOAL_EVAL_GAIN:.0f})")
    first, last = summary.training_first.intervention_fraction, summary.training_last.intervention_fraction
    if not last <= GOAL_INTERVENTION_RATIO * first:
        misses.append(f"intervention {first:.2f} -> {last:.2f} (goal <= {GOAL_INTERVENTION_RATIO:.0%} of the first)")
    return misses


def figures(summary: RunSummary, wall_s: float) -> dict:
    """The summary's numbers for summary.json and the README table."""
    return {
        "training_episodes": summary.training_episodes,
        "evaluation_episodes": summary.evaluation_episodes,
        "environment_steps": summary.training_steps,
        "evaluation_success_first": summary.evaluation_first.success,
        "evaluation_success_last": summary.evaluation_last.success,
        "autonomous_success_first": summary.training_first.autonomous_success,
        "autonomous_success_last": summary.training_last.autonomous_success,
        "assisted_success_last": summary.training_last.assisted_success,
        "intervention_first": summary.training_first.intervention_fraction,
        "intervention_last": summary.training_last.intervention_fraction,
        "learner_updates": summary.learner_updates,
        "achieved_utd": summary.achieved_utd,
        "requested_utd": summary.requested_utd,
        "wall_s": wall_s,
    }


def plot(runs: dict[str, list[EpisodeRow]], path: Path) -> None:
    """Evaluation success and training intervention fraction (rolling over 20 episodes) over environment steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for name, rows in runs.items():
        # x: training steps so far (evaluation episodes are not trained on); the report's rolling definitions
        steps = np.cumsum([0 if r.evaluation else r.steps for r in rows])
        evals = [i for i, r in enumerate(rows) if r.evaluation]
        train = [i for i, r in enumerate(rows) if not r.evaluation]
        if evals:
            success = rolling_mean(np.array([rows[i].success for i in evals], dtype=float), BLOCK)
            top.plot(steps[evals], success, label=name)
        if train:
            fraction = rolling_ratio(
                np.array([rows[i].intervention_steps for i in train]), np.array([rows[i].steps for i in train]), BLOCK
            )
            bottom.plot(steps[train], fraction, label=name)
    top.set_ylabel(f"evaluation success\n(rolling {BLOCK}, operator hands off)")
    bottom.set_ylabel(f"intervention fraction\n(training, rolling {BLOCK})")
    bottom.set_xlabel("environment steps (training transitions)")
    for axis in (top, bottom):
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- several seeds, three arms --------------------------------------------------------------------------------------
ARMS = (  # (name, operator mode after the demonstrations, demonstrations preloaded)
    ("hil", "correct", True),  # demonstrations, then the operator corrects
    ("control", "none", False),  # reinforcement learning alone
    ("demos", "none", True),  # the same demonstrations, no corrections: what the corrections add beyond them
)
TITLES = {"hil": "HIL (demonstrations + corrections)", "demos": "demonstrations only", "control": "control (RL alone)"}


MIN_SEEDS = 3
Q_TOLERANCE = 0.25  # the critic's mean Q within 25 % of the measured Monte-Carlo return at the end of a run


def q_misses(figures_: dict, name: str) -> list[str]:
    """The final critic's Q on the policy's own rows against their exact Monte-Carlo return (within Q_TOLERANCE;
    q_check.end_of_run_q). A run none of whose episodes ended in success has no exact return to compare: reported,
    not judged."""
    q, g = figures_.get("q_online_policy", math.nan), figures_.get("mc_return_online_policy", math.nan)
    if figures_.get("rows_online_policy") == 0:
        return []
    if not (math.isfinite(q) and math.isfinite(g)):
        return [f"{name}: no Q / Monte-Carlo return (no checkpoint?)"]
    if abs(q - g) > Q_TOLERANCE * max(abs(g), 1e-6):
        return [f"{name}: mean Q {q:.2f} vs Monte-Carlo return {g:.2f} (goal within {Q_TOLERANCE:.0%})"]
    return []


def steps_to_evaluation_success(rows: list[EpisodeRow], level: float = 0.5) -> float:
    """Training steps when the rolling-BLOCK evaluation success first reaches ``level`` (a full window of
    evaluation episodes); inf if never."""
    steps, window = 0, []
    for row in rows:
        if not row.evaluation:
            steps += row.steps
            continue
        window = [*window, float(row.success)][-BLOCK:]
        if len(window) == BLOCK and sum(window) / BLOCK >= level:
            return float(steps)
    return math.inf


def across_seeds(per_seed: dict[int, dict[str, dict]]) -> dict[str, dict]:
    """Median, min and max over seeds of each arm's figures."""
    out: dict[str, dict] = {}
    for arm in {a for runs in per_seed.values() for a in runs}:
        rows = [runs[arm] for runs in per_seed.values() if arm in runs]
        keys = [k for k, v in rows[0].items() if isinstance(v, int | float)]
        out[arm] = {k: {"median": statistics.median([r[k] for r in rows]), "min": min(r[k] for r in rows),
                        "max": max(r[k] for r in rows)} for k in keys}  # fmt: skip
    return out


def goal_misses(per_seed: dict[int, dict[str, dict]], summaries: dict[int, dict[str, RunSummary]]) -> list[str]:
    """The issue's goals, on the medians over seeds: HIL reaches rolling-20 evaluation success 50 % in at most 0.7x
    the control run's environment steps; HIL's evaluation gain and intervention taper (each seed, verdict())."""
    misses = [] if len(per_seed) >= MIN_SEEDS else [f"{len(per_seed)} seed(s): a learning claim takes {MIN_SEEDS}"]
    if any("hil" not in runs for runs in per_seed.values()):
        return [*misses, "no HIL run: nothing to judge"]
    hil = statistics.median([runs["hil"]["steps_to_50"] for runs in per_seed.values()])
    if "control" not in next(iter(per_seed.values())):
        misses.append("no control run: the comparison with reinforcement learning alone was not measured")
    else:
        control = statistics.median([runs["control"]["steps_to_50"] for runs in per_seed.values()])
        if not hil <= 0.7 * control or math.isinf(hil):
            misses.append(f"HIL reached 50 % evaluation success at {hil:.0f} env steps vs control {control:.0f} "
                          "(goal <= 0.7x, median over seeds)")  # fmt: skip
    for seed, runs in summaries.items():
        misses += [f"seed {seed}: {m}" for m in verdict(runs["hil"])]
    # The final critic against the exact returns of its own rows, in every run (q_misses says which cannot be judged).
    for seed, runs in per_seed.items():
        misses += [f"seed {seed}: {m}" for name, figs in runs.items() for m in q_misses(figs, name)]
    return misses


# ---- the CLI -------------------------------------------------------------------------------------------------------
def _arms(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    known = [a[0] for a in ARMS]
    if not names or any(n not in known for n in names):
        raise argparse.ArgumentTypeError(f"--arms takes some of {','.join(known)}; got {text!r}")
    return names


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes comma-separated integers, e.g. 0,1,2; got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds needs distinct non-negative integers, got {text!r}")
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m so101_bench.hil",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default runs/bench_hil_<config>)")
    parser.add_argument("--minutes", type=positive_float, default=None, help="HIL run wall budget (config's)")
    parser.add_argument("--initial-checkpoint", default="", help="start from this agent file instead of pretraining")
    parser.add_argument("--no-control", action="store_true", help="only the HIL run (no demos-only, no control run)")
    parser.add_argument("--overwrite", action="store_true", help="replace the runs of an earlier benchmark in --out")
    parser.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated seeds, e.g. 0,1,2")
    parser.add_argument("--arms", type=_arms, default=[a[0] for a in ARMS], help="comma-separated: hil,control,demos")
    parser.add_argument("--steps", type=nonnegative_int, default=0,
                        help="the HIL run's budget in environment steps instead of --minutes (0: minutes)")  # fmt: skip
    parser.add_argument("--summarize", action="store_true",
                        help="run nothing: the figures, curves and goal of the runs already in --out")  # fmt: skip
    parser.add_argument("--demos", type=Path, default=None,
                        help="demonstrations preloaded into the learner of the arms with demonstrations, instead of "
                        "the operator driving them live: a LeRobotDataset (export_run --demonstrations-only of an "
                        "earlier run) or an earlier run's directory (its demonstrations as recorded)")  # fmt: skip
    parser.add_argument("--domain-id", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", "38")))
    args = parser.parse_args(argv)
    if "hil" not in args.arms and not args.steps and not args.summarize:
        parser.error("--arms without hil needs --steps: the environment-step budget the HIL run would have set")

    config = CONFIGS[args.config]
    if args.minutes is not None:
        config = replace(config, minutes=args.minutes)
    if args.no_control:
        config = replace(config, control=False)
    arms = [arm for arm in ARMS if (config.control or arm[0] == "hil") and arm[0] in args.arms]
    out = (args.out or Path(f"runs/bench_hil_{config.name}")).resolve()
    try:
        if args.summarize:
            dirs = {seed: {name: out / f"seed_{seed}" / name for name, _, _ in arms} for seed in args.seeds}
            missing = [str(d) for runs in dirs.values() for d in runs.values() if not (d / EPISODE_LOG).is_file()]
            if missing:
                raise ValueError(f"--summarize: no {EPISODE_LOG} in {', '.join(missing)}: run the benchmark first")
            for runs in dirs.values():  # a log another version wrote is refused here, in one line
                for run_dir in runs.values():
                    read_episodes(run_dir)
        else:
            dirs = {seed: {name: fresh_dir(out / f"seed_{seed}" / name, args.overwrite) for name, _, _ in arms}
                    for seed in args.seeds}  # fmt: skip
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"bench-hil, configuration {config.name}, seeds {args.seeds}: {asdict(config)}", flush=True)

    per_seed: dict[int, dict[str, dict]] = {}
    summaries: dict[int, dict[str, RunSummary]] = {}
    curves: dict[str, list[EpisodeRow]] = {}
    for seed in args.seeds:
        checkpoint = args.initial_checkpoint
        if not checkpoint and config.profile.pretrain_steps and not args.summarize:
            checkpoint = str(pretrain(config, out / f"seed_{seed}" / "pretrain", seed))
        per_seed[seed], summaries[seed] = {}, {}
        for name, operator, demos in arms:
            run_dir = dirs[seed][name]
            if not args.summarize:
                live_demos = config.demo_episodes if demos and args.demos is None else 0
                params = write_params(out / f"seed_{seed}" / f"{name}_params.yaml", config, operator, live_demos)
                params_seed(params, seed)
                if demos and args.demos is not None:
                    print(preload_demos(args.demos, run_dir, config), flush=True)
            # A step budget is comparable across machines and loads; its wall limit only guards against a hang.
            if args.summarize:
                wall = read_wall(run_dir)
            elif name == "hil" and args.steps:
                wall = run_graph(run_dir, params, checkpoint, 6 * config.minutes, args.domain_id, args.steps)
            elif name == "hil":
                wall = run_graph(run_dir, params, checkpoint, config.minutes, args.domain_id)
            else:  # the HIL run's environment steps (operator steps included), or --steps without a HIL run
                budget = summaries[seed]["hil"].training_steps if "hil" in summaries[seed] else args.steps
                wall = run_graph(run_dir, params, checkpoint, 6 * config.minutes, args.domain_id, budget)
            if not args.summarize:
                (run_dir / WALL_FILE).write_text(json.dumps({"wall_s": wall}))
            rows = read_episodes(run_dir)
            curves[f"{name} seed {seed}"] = rows
            summaries[seed][name] = summarize(rows)
            figs = figures(summaries[seed][name], wall)
            figs.update(steps_to_50=steps_to_evaluation_success(rows), **end_of_run_q(RunDir(run_dir).learner.root))
            per_seed[seed][name] = figs
            print(f"seed {seed}, {TITLES[name]}, {wall / 60:.1f} min:\n{summaries[seed][name].text()}", flush=True)
            make_report(run_dir)

    plot(curves, out / "bench_hil.png")
    misses = goal_misses(per_seed, summaries)
    summary = {
        "config": {**asdict(config), "seeds": args.seeds, "arms": args.arms, "hil_steps": args.steps},
        "per_seed": per_seed,
        "median": across_seeds(per_seed),
        "goal_met": not misses,
        "misses": misses,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"curves: {out / 'bench_hil.png'}; figures: {out / 'summary.json'}")
    if config.name == "ci":
        return 0  # the CI configuration makes no learning claim
    print("goal met" if not misses else "goal missed: " + "; ".join(misses))
    return 0 if not misses else 1


WALL_FILE = "bench_wall.json"  # a finished run's wall time, for --summarize


def preload_demos(demos: Path, run_dir: Path, config: BenchConfig) -> str:
    """Put demonstrations into the run's learner journal (replayed at start): a LeRobot dataset through the importer,
    or an earlier run's own demonstration episodes copied as recorded (the direct path, for comparison)."""
    learner = RunDir(run_dir).learner
    if (demos / INFO_PATH).is_file():
        options = ImportOptions(policy=replace(PolicyConfig(), **(config.profile.network or {})),
                                preprocessing=preprocessing(config))  # fmt: skip
        source, result = import_dataset(demos, learner.root, options)
        return f"preloaded {demos}: {source.summary()}; {result.summary()}"
    records, count = transition_records(demos)
    tally: Counter[str] = Counter()
    journal = TransitionJournal(learner.journal)
    for _, steps in complete_episodes(records, count, tally, evaluation=False, demonstrations_only=True):
        for msg in steps:
            journal.append(serialize_message(msg))
    journal.close()
    return f"preloaded {journal.records} transitions of {demos}'s demonstrations as recorded"


def read_wall(run_dir: Path) -> float:
    try:
        return float(json.loads((run_dir / WALL_FILE).read_text())["wall_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return math.nan


def params_seed(params: Path, seed: int) -> None:
    """Each seed its own simulation, operator, actor and learner randomness."""
    data = yaml.safe_load(params.read_text())
    for name in ("so101_sim", "actor", "learner"):
        data.setdefault(f"/**/{name}", {}).setdefault("ros__parameters", {})["seed"] = seed
    params.write_text(yaml.safe_dump(data, sort_keys=False))


if __name__ == "__main__":
    sys.exit(main())
