"""The actor in the graph (real processes over DDS): what it feeds its policy is what the learner trains on, the human
action it stores is the person's motion, and a stopped actor commits its open episode.

* Policy input vs the learner's stack: the actor writes the pixels and state stack its policy saw at each
  (episode, step) (its debug_policy_inputs_dir parameter). The learner's journal holds the transitions it received;
  replayed through the learner's own ingest into a replay buffer, every sampled stack must equal the actor's input
  for that transition, bit for bit (stacking is implemented on both sides).
* Human action vs the leader: with the simulated operator driving the leader (intervention forced on), the stored
  action, decoded back through the policy's action mapping, must move the TCP where the leader's joints are (FK of
  the leader, recorded independently by the test) and the way the follower actually moved: a wrong sign or scale in
  the encoding fails.
"""

import numpy as np
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import JointState

from so101_contract import qos
from so101_contract.joints import GRIPPER, positions_by_name
from so101_contract.stamps import stamp_to_ns
from so101_driver.model.kinematics import Kinematics
from so101_hilserl_actor.action_mapping import DEFAULT_ACTION_CONFIG, PolicyActionMapper
from so101_hilserl_actor.policy import PolicyConfig
from so101_hilserl_interfaces.msg import EpisodeSummary, Transition
from so101_hilserl_interfaces.srv import OperatorCommand
from so101_hilserl_learner.ingest import TransitionIngest
from so101_hilserl_learner.journal import read_journal
from so101_hilserl_learner.replay import ReplayBuffer
from so101_testing.graph import wait_until
from so101_testing.processes import ros_args

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


def _leader_at(leader_msgs, stamp_ns: int) -> np.ndarray:
    """The leader's joints in the newest message stamped at or before ``stamp_ns`` (what the actor had read)."""
    best = None
    for msg in leader_msgs:
        if stamp_to_ns(msg.header.stamp) <= stamp_ns:
            best = msg
    assert best is not None, "no leader reading before the step"
    q, _ = positions_by_name(best.name, best.position)
    return q


def test_the_stored_human_action_is_the_leaders_motion(processes, probe):
    transitions = probe.subscribe(Transition, "hilserl/transitions", qos.TRANSITIONS)
    leader = probe.subscribe(JointState, "leader/joint_states", qos.SENSOR_DATA)
    processes.start_module(
        "so101_driver.sim.sim_node", *ros_args(seed=2, operator_mode="demo", publish_ground_truth_reward=True),
        name="sim",
    )  # fmt: skip
    processes.start_module("so101_hilserl_actor.intervention_node", name="intervention")
    leader.wait_for(5, 60, "leader joint states at the probe")  # it sees every reading the actor will use
    start = OperatorCommand.Request(command=OperatorCommand.Request.START_INTERVENTION)
    assert probe.call(OperatorCommand, "operator/command", start, timeout_s=60).accepted  # the person drives
    actor = processes.start_module(
        "so101_hilserl_actor.actor_node",
        *ros_args(network=TINY, max_episodes=3, max_steps=40, num_explore_steps=0, reset_pause_s=0.2, seed=2),
        name="actor",
    )  # fmt: skip
    wait_until(lambda: not actor.alive(), 240, "the episodes and the actor's exit")
    assert actor.popen.returncode == 0, actor.output()
    steps = [m for m in transitions.messages if m.intervention]
    assert len(steps) >= 20

    kin, cfg = Kinematics(), DEFAULT_ACTION_CONFIG
    mapper = PolicyActionMapper(kin, PolicyConfig(), cfg)  # the semantics of the actor's policy (the defaults)
    leader_msgs = leader.messages
    decoded, wanted, moved, jaw_checks = [], [], [], []
    for index, m in enumerate(steps):
        follower = np.asarray(m.observation.state[:6], dtype=float)
        lead = _leader_at(leader_msgs, stamp_to_ns(m.header.stamp))
        action = np.asarray(m.action, dtype=float)
        mapper.reset(follower)
        target = mapper.to_joints(action, follower)
        step_decoded = kin.fk(target)[0] - kin.fk(follower)[0]
        step_wanted = kin.fk(lead)[0] - kin.fk(follower)[0]
        unclipped = np.abs(action[:3]) < 0.95
        decoded += list(step_decoded[unclipped])
        wanted += list(step_wanted[unclipped])
        follows = index + 1 < len(steps) and (steps[index + 1].episode_id, steps[index + 1].step) == (
            m.episode_id,
            m.step + 1,
        )
        if follows:
            nxt = np.asarray(steps[index + 1].observation.state[12:15]) - np.asarray(m.observation.state[12:15])
            if np.linalg.norm(nxt) > 0.003:
                moved.append((step_decoded, nxt))
        if index > 0 and action[3] != 0 and steps[index - 1].episode_id == m.episode_id:
            previous = _leader_at(leader_msgs, stamp_to_ns(steps[index - 1].header.stamp))
            jaw_checks.append(action[3] * (lead[GRIPPER] - previous[GRIPPER]))
    decoded, wanted = np.asarray(decoded), np.asarray(wanted)
    assert len(wanted) >= 20 and np.abs(wanted).max() > 0.005  # the leader really moved
    # (one DLS step undershoots a little: slope ~0.85; a wrong sign gives < 0, a factor 2 either way leaves the band)
    slope = float(decoded @ wanted / (wanted @ wanted))
    assert 0.6 <= slope <= 1.15, f"decoded human actions move the TCP {slope:.2f} x the leader's offset"
    assert np.corrcoef(decoded, wanted)[0, 1] > 0.8
    # The follower's actual next motion goes the way the decoded action says.
    cosines = [d @ n / (np.linalg.norm(d) * np.linalg.norm(n) + 1e-12) for d, n in moved]
    assert len(cosines) >= 5 and float(np.mean(cosines)) > 0.3, f"mean cosine {np.mean(cosines):.2f}"
    assert all(c > 0 for c in jaw_checks)  # +1 = the leader's jaw opened, -1 = it closed
    assert cfg.step_m == 0.02  # the scale this test was written against (0.02 m per unit)


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
