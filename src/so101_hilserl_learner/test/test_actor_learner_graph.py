"""The actor in the graph (real processes over DDS): what it feeds its policy is what the learner trains on, the human
action it stores is the person's motion, and a stopped actor commits its open episode.

* Policy input vs the learner's stack: the actor writes the pixels and state stack its policy saw at each
  (episode, step) (its debug_policy_inputs_dir parameter). The learner's journal holds the transitions it received;
  replayed through the learner's own ingest into a replay buffer, every sampled stack must equal the actor's input
  for that transition, bit for bit (stacking is implemented on both sides).
* Human action: interventions go through the policy's action channel, so every stored intervention action is the
  one executed (checked against the joint commands the actor sent, in lockstep).
"""

import numpy as np
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import JointState

from so101_contract import qos
from so101_contract.joints import GRIPPER, positions_by_name
from so101_contract.stamps import stamp_to_ns
from so101_driver.model.kinematics import Kinematics
from so101_hilserl_core.action_mapping import DEFAULT_ACTION_CONFIG, PolicyActionMapper
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_interfaces.msg import EpisodeSummary, Transition
from so101_hilserl_learner.ingest import TransitionIngest
from so101_hilserl_learner.journal import read_journal
from so101_hilserl_learner.replay import ReplayBuffer
from so101_testing.graph import wait_until
from so101_testing.processes import ros_args

ALL_SAMPLES = QoSProfile(depth=5000, reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST)
ALL_COMMANDS = QoSProfile(depth=5000, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
TINY = '{"encoder_channels": 4, "hidden": [16, 16], "bottleneck": 8}'


def test_the_actors_policy_input_is_the_learners_stack_for_every_transition(processes, probe, tmp_path):
    dump, run_dir = tmp_path / "policy_inputs", tmp_path / "learner"
    episodes = probe.subscribe(EpisodeSummary, "hilserl/episodes", qos.EVENTS)
    processes.start_module(
        "so101_driver.sim.sim_node", *ros_args(seed=3, operator_mode="none", publish_ground_truth_reward=True),
        name="sim",
    )  # fmt: skip
    processes.start_module(
        "so101_hilserl_learner.learner_node",
        *ros_args(run_dir=str(run_dir), network=TINY, warmup_transitions=100000, stats_period_s=0.5), name="learner",
    )  # fmt: skip
    actor = processes.start_module(
        "so101_hilserl_actor.actor_node",
        *ros_args(network=TINY, max_episodes=2, max_steps=12, num_explore_steps=0, reset_pause_s=0.0, seed=3,
                  debug_policy_inputs_dir=str(dump), wait_for_subscribers=1),
        name="actor",
    )  # fmt: skip
    wait_until(lambda: not actor.alive(), 240, "two episodes and the actor's exit")
    assert actor.popen.returncode == 0, actor.output()
    summaries = episodes.wait_for(2, 10, "two episode summaries")
    total = sum(s.steps for s in summaries)
    journal = run_dir / "journal"
    wait_until(lambda: journal.exists() and sum(1 for _ in read_journal(journal)) >= total, 60, "the journal")
    messages = [deserialize_message(raw, Transition) for raw in read_journal(journal)]
    assert len(messages) == total

    online, demo = ReplayBuffer(capacity=1000, nstep=1), ReplayBuffer(capacity=1000, nstep=1)
    ingest = TransitionIngest(online, demo)
    for msg in messages:
        ingest.ingest(msg)
    assert len(online) == total
    # Each transition is identified by its action (policy actions with exploration noise: all distinct).
    by_action = {np.asarray(m.action, np.float32).tobytes(): (m.episode_id, m.step) for m in messages}
    assert len(by_action) == total
    batch = online.sample(60 * total)
    seen = set()
    for row in range(len(batch)):
        episode, step = by_action[batch.action[row].tobytes()]
        actor_input = np.load(dump / f"episode_{episode}_step_{step}.npz")
        where = f"episode {episode} step {step}"
        assert np.array_equal(batch.pixels[row], actor_input["pixels"]), f"pixels differ at {where}"
        assert np.array_equal(batch.state[row], actor_input["state"]), f"state differs at {where}"
        seen.add((episode, step))
    assert len(seen) == total  # every transition was checked
    assert {(m.episode_id, m.step) for m in messages if m.step >= 2}  # stacks of three distinct frames included


def test_every_stored_intervention_step_is_the_executed_action(processes, probe):
    """In lockstep (simulated time advances only as the actor steps: no dependence on this machine's speed) the
    simulated operator drives whole episodes through the leader with its pedal down. For every stored intervention
    step, the stored action applied by the policy's mapping to the joints the actor read (the follower's state at
    that instant) gives the joint command the actor sent, bit for bit; steps where the person closed the jaw are
    labelled closing."""
    transitions = probe.subscribe(Transition, "hilserl/transitions", qos.TRANSITIONS)
    follower = probe.subscribe(JointState, "follower/joint_states", ALL_SAMPLES)
    commands = probe.subscribe(JointState, "follower/joint_commands", ALL_COMMANDS)
    processes.start_module(
        "so101_driver.sim.sim_node",
        *ros_args(seed=2, operator_mode="demo", operator_pedal=True, publish_ground_truth_reward=True,
                  clock_mode="lockstep", curriculum_stage=2),
        name="sim",
    )  # fmt: skip
    processes.start_module(
        "so101_hilserl_actor.intervention_node", *ros_args(use_sim_time=True, auto_detect=False), name="intervention"
    )
    actor = processes.start_module(
        "so101_hilserl_actor.actor_node",
        *ros_args(use_sim_time=True, lockstep=True, network=TINY, max_episodes=2, max_steps=30, num_explore_steps=0,
                  reset_pause_s=0.2, seed=2),
        name="actor",
    )  # fmt: skip
    wait_until(lambda: not actor.alive(), 300, "the episodes and the actor's exit")
    assert actor.popen.returncode == 0, actor.output()
    steps = [m for m in transitions.messages if m.intervention]
    assert len(steps) >= 20, f"{len(steps)} intervention steps of {len(transitions.messages)}"

    kin = Kinematics()
    mapper = PolicyActionMapper(kin, PolicyConfig(), DEFAULT_ACTION_CONFIG)  # the actor's policy's semantics
    joints_at = {stamp_to_ns(m.header.stamp): positions_by_name(m.name, m.position)[0] for m in follower.messages}
    commanded_at = {stamp_to_ns(m.header.stamp): positions_by_name(m.name, m.position)[0] for m in commands.messages}
    checked = closing = 0
    for m in steps:
        t = stamp_to_ns(m.header.stamp)
        if t not in joints_at or t not in commanded_at:
            continue  # a best-effort joint state the probe missed
        q = joints_at[t]
        np.testing.assert_allclose(q, np.asarray(m.observation.state[:6]), atol=1e-6)  # the joints the actor read
        action = np.asarray(m.action, dtype=np.float32)
        assert np.all(np.abs(action) <= 1.0)
        mapper.reset(q)
        np.testing.assert_array_equal(mapper.to_joints(action, q), commanded_at[t], err_msg=f"step {m.step}")
        checked += 1
        if commanded_at[t][GRIPPER] < q[GRIPPER] - 0.05:  # the follower's jaw was commanded to close
            assert action[3] < 0, f"a closing step labelled {action[3]} at step {m.step}"
            closing += 1
    assert checked >= 0.9 * len(steps), f"only {checked} of {len(steps)} steps had their joint state and command"
    assert closing >= 2, "the operator never closed the jaw"


def test_stopping_the_actor_commits_its_open_episode_as_truncated(processes, probe):
    transitions = probe.subscribe(Transition, "hilserl/transitions", qos.TRANSITIONS)
    episodes = probe.subscribe(EpisodeSummary, "hilserl/episodes", qos.EVENTS)
    processes.start_module(
        "so101_driver.sim.sim_node", *ros_args(operator_mode="none", publish_ground_truth_reward=True), name="sim"
    )
    actor = processes.start_module(
        "so101_hilserl_actor.actor_node",
        *ros_args(network=TINY, max_steps=500, num_explore_steps=0, reset_pause_s=0.0), name="actor",
    )  # fmt: skip
    wait_until(lambda: len(transitions) >= 8, 180, "the actor to be mid-episode")
    assert actor.stop(grace_s=15.0) == 0, actor.output()  # SIGINT
    summary = episodes.wait_for(1, 10, "the stopped episode's summary")[0]
    received = transitions.messages
    assert [m.step for m in received] == list(range(len(received)))
    last = received[-1]
    assert last.truncated and not last.terminated and len(last.next_observation) == 1
    assert (summary.end_reason, summary.steps) == ("stopped", len(received))
