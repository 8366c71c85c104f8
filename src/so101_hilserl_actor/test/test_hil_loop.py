"""The human-in-the-loop closes in simulation: sim + simulated operator, intervention node, actor, learner.

Real nodes in separate processes over real DDS. The learner must receive every transition in order with the right
intervention flags, the actor must swap to the learner's weights, and the episode summaries must add up.
"""

import json
import time

import numpy as np
from std_msgs.msg import Bool

from so101_contract import qos
from so101_hilserl_interfaces.msg import EpisodeSummary, LearnerStats, Transition
from so101_hilserl_interfaces.srv import OperatorCommand
from so101_testing.graph import wait_until
from so101_testing.processes import ros_args

TINY = '{"encoder_channels": 4, "hidden": [16, 16], "bottleneck": 8}'
EPISODES = 4
MAX_STEPS = 40


def test_hil_loop_in_simulation(processes, probe, tmp_path):
    transitions = probe.subscribe(Transition, "hilserl/transitions", qos.TRANSITIONS)
    episodes = probe.subscribe(EpisodeSummary, "hilserl/episodes", qos.EVENTS)
    stats = probe.subscribe(LearnerStats, "hilserl/learner_stats", qos.EVENTS)
    flags = probe.subscribe(Bool, "intervention", qos.LATCHED)
    processes.start_module("so101_driver.sim.sim_node", *ros_args(seed=5, publish_ground_truth_reward=True), name="sim")
    processes.start_module("so101_hilserl_actor.intervention_node", name="intervention")
    processes.start_module(
        "so101_hilserl_learner.learner_node",
        *ros_args(run_dir=str(tmp_path / "learner"), network=TINY, batch_size=8, warmup_transitions=20,
                  utd_ratio=0.5, publish_every_updates=5, stats_period_s=0.5),
        name="learner",
    )  # fmt: skip
    wait_until(lambda: len(stats) > 0, 120, "the learner to be up")
    processes.start_module(
        "so101_hilserl_actor.actor_node",
        *ros_args(network=TINY, max_episodes=EPISODES, max_steps=MAX_STEPS, num_explore_steps=30, reset_pause_s=0.2,
                  min_steps_before_success=5, seed=5, wait_for_subscribers=2),  # the learner and this test
        name="actor",
    )  # fmt: skip

    # A person also takes over by hand for a second in the second episode (the simulated one may or may not).
    wait_until(lambda: len(episodes) >= 1, 120, "the first episode")
    wait_until(lambda: len(transitions) >= MAX_STEPS // 4 + sum(e.steps for e in episodes.messages), 30, "episode 2")
    start = OperatorCommand.Request(command=OperatorCommand.Request.START_INTERVENTION)
    assert probe.call(OperatorCommand, "operator/command", start, timeout_s=30).accepted
    time.sleep(1.0)
    end = OperatorCommand.Request(command=OperatorCommand.Request.END_INTERVENTION)
    assert probe.call(OperatorCommand, "operator/command", end, timeout_s=30).accepted

    summaries = episodes.wait_for(EPISODES, 180, "all episodes")
    total = sum(s.steps for s in summaries)
    wait_until(lambda: len(transitions) >= total, 30, "every transition")
    received = transitions.messages
    assert len(received) == total

    by_episode: dict[int, list[Transition]] = {}
    for msg in received:
        by_episode.setdefault(msg.episode_id, []).append(msg)
    assert len(by_episode) == EPISODES
    for summary in summaries:
        steps = by_episode[summary.episode_id]
        assert [m.step for m in steps] == list(range(summary.steps))  # in order, nothing lost or repeated
        assert all(not (m.terminated or m.truncated) and not m.next_observation for m in steps[:-1])
        last = steps[-1]
        assert (last.terminated or last.truncated) and len(last.next_observation) == 1
        assert summary.intervention_steps == sum(m.intervention for m in steps)
        assert abs(summary.episode_return - sum(m.reward for m in steps)) < 1e-3
        for m in steps:
            for action in (m.action, m.policy_action):
                assert np.all(np.abs(action) <= 1.0) and np.isfinite(action).all()
            if not m.intervention:  # the policy's proposal is what ran; during an intervention it is only stored
                assert list(m.action) == list(m.policy_action)

    assert sum(s.intervention_steps for s in summaries) >= 5  # at least the manual takeover
    # During interventions the action is the human's and policy_action what the policy proposed: not the same.
    human = [m for m in received if m.intervention]
    assert sum(list(m.action) != list(m.policy_action) for m in human) >= len(human) // 2
    assert any(f.data for f in flags.messages)
    versions = [m.policy_version for m in by_episode[summaries[-1].episode_id]]
    assert max(versions) >= 1 and len(set(versions)) == 1  # new weights, swapped only between episodes

    wait_until(lambda: stats.messages and stats.messages[-1].transitions_received == total, 30, "learner caught up")
    final = stats.messages[-1]
    assert final.transitions_dropped == 0 and final.segments_dropped == 0
    assert final.online_buffer_size == total and final.demo_buffer_size >= 1


def test_evaluation_runs_n_deterministic_episodes_and_reports(processes, probe):
    """Also: weights whose checksum does not match are refused, and the actor keeps running on its own."""
    from so101_hilserl_core.policy import Policy, PolicyConfig
    from so101_hilserl_core.policy_io import policy_to_bytes
    from so101_hilserl_interfaces.msg import PolicyWeights

    data = policy_to_bytes(Policy(PolicyConfig(**json.loads(TINY))))
    corrupt = PolicyWeights(version=7, format="safetensors", data=data, sha256="0" * 64)
    probe.publisher(PolicyWeights, "hilserl/policy_weights", qos.LATCHED).publish(corrupt)  # latched: it will see it
    episodes = probe.subscribe(EpisodeSummary, "hilserl/episodes", qos.EVENTS)
    transitions = probe.subscribe(Transition, "hilserl/transitions", qos.TRANSITIONS)
    processes.start_module(
        "so101_driver.sim.sim_node", *ros_args(operator_mode="none", publish_ground_truth_reward=True), name="sim"
    )
    actor = processes.start_module(
        "so101_hilserl_actor.actor_node",
        *ros_args(network=TINY, evaluation=True, max_episodes=2, max_steps=15, reset_pause_s=0.0),  # probe listens
        name="actor",
    )
    wait_until(lambda: not actor.alive(), 120, "the evaluation to finish and the actor to exit")
    assert actor.popen.returncode == 0
    summaries = episodes.wait_for(2, 10, "two evaluation summaries")
    assert all(s.evaluation and s.intervention_steps == 0 for s in summaries)
    assert all(m.evaluation and list(m.action) == list(m.policy_action) for m in transitions.messages)
    assert "evaluation finished: 2 episodes, success rate" in actor.output() and "mean steps" in actor.output()
    assert "policy weights 7 refused, keeping 0: checksum mismatch" in actor.output()
    assert all(m.policy_version == 0 for m in transitions.messages)
