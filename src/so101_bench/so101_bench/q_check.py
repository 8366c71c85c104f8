"""The critic at the end of a run against the returns the run actually earned: Q of its final checkpoint on the run's
own rows, next to their exact Monte-Carlo returns, per kind of row.

The buffers are rebuilt from the learner's journal through the learner's own ingest (as a restart does), the agent
from its newest good checkpoint; each row's Q is the critics' mean on the stored action, without augmentation. Rows
whose return is not exact (their episode hit the time limit, broke, or is still open) are left out: a bootstrapped
Q rightly exceeds the partial sum of a cut episode. Only the newest ``rows`` rows count: the policy the critic now
describes, not the one of the first episodes.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from so101_contract.run_dir import LearnerDir
from so101_contract.state import STATE_DIM
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_learner.agent import DrQV2Agent
from so101_hilserl_learner.checkpoint import load_newest_good
from so101_hilserl_learner.ingest import TransitionIngest
from so101_hilserl_learner.journal import read_journal
from so101_hilserl_learner.learner import LearnerConfig
from so101_hilserl_learner.q_diagnostics import GROUPS
from so101_hilserl_learner.replay import ReplayBuffer

NEWEST_ROWS = 2000
CHUNK = 256


def end_of_run_q(learner_dir: Path, rows: int = NEWEST_ROWS) -> dict[str, float]:
    """{"q_<group>": mean Q, "mc_return_<group>": mean exact return, "rows_<group>": rows} over the newest ``rows``
    rows of each buffer with an exact return; NaN means where a group has none (or the run has no checkpoint)."""
    dirs = LearnerDir(learner_dir)
    loaded = load_newest_good(dirs.checkpoints)
    out = {f"{kind}_{group}": math.nan for kind in ("q", "mc_return", "rows") for group in GROUPS}
    if loaded is None:
        return out
    policy = PolicyConfig.from_json(loaded.state["policy_config"])
    agent = DrQV2Agent(policy)
    agent.load_state_dict(loaded.state["agent"])
    config = LearnerConfig()
    records = list(read_journal(dirs.journal))
    online, demo = (ReplayBuffer.for_policy(policy, max(len(records), 1), config.replay.nstep, config.replay.discount,
                                            seed, STATE_DIM) for seed in (0, 1))  # fmt: skip
    ingest = TransitionIngest(online, demo, policy.image_size, policy.frame_stack, config.ingest.train_on_evaluation,
                              config.ingest.stale_episode_transitions)  # fmt: skip
    for raw in records:
        ingest.receive(raw)
    for buffer, groups in ((online, ("online_policy", "online_intervention")), (demo, ("demo",))):
        q, returns, helped = _evaluate(agent, buffer, rows)
        for group in groups:
            mask = np.ones_like(helped) if group == "demo" else helped == (group == "online_intervention")
            if mask.any():
                out[f"q_{group}"] = float(q[mask].mean())
                out[f"mc_return_{group}"] = float(returns[mask].mean())
            out[f"rows_{group}"] = float(mask.sum())
    return out


def _evaluate(agent: DrQV2Agent, buffer: ReplayBuffer, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Q, exact return, intervention) of the newest ``rows`` rows with an exact return, newest last."""
    q, returns, helped = [], [], []
    kept, end = 0, len(buffer)
    while end > 0 and kept < rows:  # newest first, a chunk at a time
        start = max(0, end - CHUNK)
        batch = buffer.rows(start, end - start)
        exact = np.isfinite(batch.mc_return)
        if exact.any():
            q.append(agent.q_values(batch)[exact])
            returns.append(batch.mc_return[exact])
            helped.append(batch.intervention[exact])
            kept += int(exact.sum())
        end = start
    if not q:
        return np.zeros(0), np.zeros(0), np.zeros(0, bool)
    q, returns, helped = (np.concatenate(x[::-1])[-rows:] for x in (q, returns, helped))
    return q, returns, helped
