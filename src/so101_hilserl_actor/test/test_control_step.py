"""The actor's control step and loop pieces without a ROS graph: fake clock, fake readings, a tiny real policy."""

import numpy as np
import pytest
import torch

from so101_contract.joints import GRIPPER, JOINT_NAMES
from so101_contract.stamps import ns_to_stamp
from so101_driver.model.kinematics import HOME_SEED, Kinematics
from so101_driver.vision.image_messages import array_to_image_msg
from so101_driver.vision.preprocessing import DEFAULT_PREPROCESSING
from so101_hilserl_actor.actor_inputs import Readings
from so101_hilserl_actor.actor_loop import IkReset, Pacer, ResetConfig, ResetFailed, call_sim_reset, run_ik_reset
from so101_hilserl_actor.control_step import ControlConfig, ControlStep, StepInputs
from so101_hilserl_core.action_mapping import HumanActionEncoder, policy_action_to_joints
from so101_hilserl_core.episode import EpisodeConfig
from so101_hilserl_core.exploration import ExplorationConfig, stddev
from so101_hilserl_core.policy import Policy, PolicyConfig
from so101_hilserl_core.policy_io import policy_to_bytes, sha256_hex

TINY = PolicyConfig(encoder_channels=4, hidden=(16, 16), bottleneck=8)
PERIOD_NS = 100_000_000
KIN = Kinematics()


class FakeClock:
    def __init__(self):
        self.t = 100.0
        self.sleeps = []

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def test_pacer_starts_steps_on_the_period_grid_whatever_the_compute_took():
    clock = FakeClock()
    pacer = Pacer(0.1, clock.monotonic, clock.sleep)
    starts = []
    for compute in (0.01, 0.07, 0.0, 0.099, 0.03):
        pacer.step_started()
        starts.append(clock.t)
        clock.t += compute
        pacer.wait()
    assert np.allclose(np.diff(starts), 0.1)
    assert np.allclose(list(pacer.intervals), 0.1) and pacer.overruns == 0


def test_pacer_overrun_starts_the_next_step_at_once_without_a_catch_up_burst():
    clock = FakeClock()
    pacer = Pacer(0.1, clock.monotonic, clock.sleep)
    starts = []
    for compute in (0.01, 0.25, 0.01, 0.01):
        pacer.step_started()
        starts.append(clock.t)
        clock.t += compute
        pacer.wait()
    intervals = np.diff(starts)
    assert intervals[0] == pytest.approx(0.1)
    assert intervals[1] == pytest.approx(0.25)  # the overrun step: the next starts right away ...
    assert intervals[2] == pytest.approx(0.1)  # ... and then on the period again, not two steps at once
    assert pacer.overruns == 1
    pacer.restart()  # a pause (reset) does not show up as an interval
    clock.t += 5.0
    pacer.step_started()
    assert max(pacer.intervals) < 0.3


def _arm(sag: float = 0.0, speed: float = 1.0):
    """A fake follower that moves ``speed`` of the way to each target and stops ``sag`` rad short on shoulder_lift."""
    state = {"q": HOME_SEED + np.array([0.3, -0.2, 0.25, 0.1, -0.2, 0.4])}

    def command(target):
        q = state["q"]
        new = q + speed * (target - q)
        new[1] = min(new[1], home[1] - sag) if sag else new[1]
        state["q"] = new

    home = HOME_SEED.copy()
    return state, command, home


def test_ik_reset_reaches_home_and_gives_up_on_a_stuck_joint_or_the_cap():
    state, command, home = _arm()
    clock = FakeClock()
    problem = run_ik_reset(IkReset(home), lambda: state["q"], command, Pacer(0.1, clock.monotonic, clock.sleep),
                           lambda: False)  # fmt: skip
    assert problem == "" and np.abs(state["q"] - home).max() < 0.02

    state, command, home = _arm(sag=0.035)  # gravity holds shoulder_lift 0.035 rad short: never within 0.02
    reset = IkReset(home, ResetConfig(reset_max_iterations=1000, reset_stuck_iterations=10))
    problem = run_ik_reset(reset, lambda: state["q"], command, Pacer(0.1, clock.monotonic, clock.sleep), lambda: False)
    assert "stuck" in problem and "shoulder_lift" in problem and "0.035" in problem
    assert reset.iterations < 30  # well before the cap: the stuck test fired

    state, command, home = _arm(speed=0.02)  # progressing, but too slowly: the iteration cap ends it
    reset = IkReset(home, ResetConfig(reset_max_iterations=25, reset_stuck_iterations=20, min_progress_rad=0.001))
    with pytest.raises(ResetFailed, match="gave up after 25 steps"):
        for _ in range(100):
            target = reset.next(state["q"])
            command(target)


class FakeResetClient:
    """The sim/reset client as the actor sees it: available after ``available_after`` polls, answering or not."""

    def __init__(self, available_after: int = 0, answers: bool = True):
        self.polls, self.available_after, self.answers, self.requests = 0, available_after, answers, []

    def wait_for_service(self, timeout_sec: float) -> bool:
        self.polls += 1
        return self.polls > self.available_after

    def call_async(self, request):
        self.requests.append(request)
        answers = self.answers

        class Future:
            def done(self) -> bool:
                return answers

        return Future()


def test_the_sim_reset_waits_for_the_service_and_its_answer_and_says_what_failed():
    client = FakeResetClient(available_after=3)
    assert call_sim_reset(client, "request", lambda: False) == "" and client.requests == ["request"]
    assert client.polls == 4
    never = FakeResetClient(available_after=10**9)
    assert "not available" in call_sim_reset(never, "request", lambda: False, timeout_s=0.05)
    assert never.requests == []
    assert "did not answer within 0.05 s" in call_sim_reset(FakeResetClient(answers=False), "r", lambda: False, 0.05)
    stopped = FakeResetClient(available_after=10**9)
    assert "not available" in call_sim_reset(stopped, "request", lambda: True) and stopped.polls == 1


# ---- the actor's readings (actor_inputs) ---------------------------------------------------------------------------
def _image(stamp_ns: int, value: int = 0):
    return array_to_image_msg(np.full((480, 640, 3), value, np.uint8), "rgb8", stamp=ns_to_stamp(stamp_ns))


def test_readings_say_which_inputs_are_missing_and_ignore_incomplete_joint_states():
    readings = Readings()
    assert readings.missing() == ["follower/joint_states", "leader/joint_states", "wrist_camera/image_raw"]
    assert readings.snapshot() is None and readings.step_inputs(0, len) is None
    readings.store_follower(["shoulder_pan"], [0.1], 5)  # not every joint: ignored
    readings.store_leader(list(JOINT_NAMES), [0.2] * 6)
    assert readings.missing() == ["follower/joint_states", "wrist_camera/image_raw"]
    readings.store_follower(list(reversed(JOINT_NAMES)), [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], 5)  # by name, any order
    readings.add_image(7, _image(7))
    assert readings.missing() == []
    np.testing.assert_allclose(readings.follower(), [0.5, 0.4, 0.3, 0.2, 0.1, 0.0])


def test_readings_give_the_step_the_image_it_chooses_and_forget_images_from_before_a_reset():
    readings = Readings(images_kept=3)
    readings.store_follower(list(JOINT_NAMES), [0.0] * 6, 1)
    readings.store_leader(list(JOINT_NAMES), [0.1] * 6)
    for stamp in (10, 20, 30, 40):  # only the newest three are kept
        readings.add_image(stamp, _image(stamp, value=stamp))
    seen = []
    readings.intervention = True

    def choose(stamps):
        seen.append(stamps)
        return 1

    inputs = readings.step_inputs(99, choose)
    assert seen == [[20, 30, 40]] and inputs.image_stamp_ns == 30 and int(inputs.image[0, 0, 0]) == 30
    assert (inputs.now_ns, inputs.intervention, inputs.encoding) == (99, True, "rgb8")
    np.testing.assert_allclose(inputs.leader, [0.1] * 6)
    assert readings.image_after(39) and not readings.image_after(40)
    readings.keep_images_after(30)
    assert readings.step_inputs(100, lambda stamps: 0).image_stamp_ns == 40
    readings.keep_images_after(40)
    assert readings.missing() == ["wrist_camera/image_raw"] and not readings.image_after(0)


def test_the_readings_of_a_steps_instant_are_in_once_both_are_stamped_at_it_and_judged_if_asked():
    readings = Readings()
    readings.store_leader(list(JOINT_NAMES), [0.0] * 6)
    assert not readings.instant_in(100)
    readings.add_image(100, _image(100))
    readings.store_follower(list(JOINT_NAMES), [0.0] * 6, 90)  # the follower state is older than the instant
    assert not readings.instant_in(100)
    readings.store_follower(list(JOINT_NAMES), [0.0] * 6, 100)
    assert readings.instant_in(100) and not readings.instant_in(101)  # the image is older than 101
    judged = set()
    assert not readings.instant_in(100, judged.__contains__)
    judged.add(100)
    assert readings.instant_in(100, judged.__contains__)


# ---- the control step ----------------------------------------------------------------------------------------------
class Feed:
    """Camera frames, joints and reward signals for a ControlStep, one control period apart."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.t = 10_000_000_000
        self.q = HOME_SEED.copy()
        self.q[GRIPPER] = 0.5

    def next(self, intervention=False, leader=None, age_ns=0) -> StepInputs:
        self.t += PERIOD_NS
        image = self.rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        leader = self.q.copy() if leader is None else leader
        return StepInputs(self.t, self.q.copy(), leader, image, self.t - age_ns, intervention)


def make_step(seed=0, policy=None, **config) -> ControlStep:
    episode = config.pop("episode", EpisodeConfig(max_steps=8, min_steps_before_success=2))
    cfg = ControlConfig(seed=seed, episode=episode, **config)
    torch.manual_seed(seed)
    return ControlStep(cfg, policy or Policy(TINY), KIN, DEFAULT_PREPROCESSING, pretrained=True)


def run_steps(control, feed, count, signal=None, **kw):
    """``count`` steps; ``signal(probability)`` -> (probability, success) reward-node output for each image."""
    results = []
    for _ in range(count):
        inputs = feed.next(**kw)
        if signal is not None:
            control.record_reward(inputs.image_stamp_ns, *signal)
        results.append(control.step(inputs))
        if results[-1].episode is not None:
            break
    return results


def transitions(results):
    return [r.transition for r in results if r.transition is not None]


def test_a_step_commands_the_policy_and_the_next_step_completes_its_transition():
    control, feed = make_step(), Feed()
    control.begin_episode(feed.t)
    first = control.step(feed.next())
    assert first.transition is None and first.command.shape == (6,) and first.step_index == 0
    pixels, state = first.policy_inputs
    assert pixels.shape == (9, 84, 84) and state.shape == (54,)
    assert np.array_equal(pixels[0:3], pixels[6:9])  # the first observation fills the stack
    second = control.step(feed.next())
    t0 = second.transition
    assert (t0.step, t0.episode_id, t0.terminated, t0.truncated, t0.next_observation) == (0, 1, False, False, None)
    assert np.array_equal(t0.observation.frame.transpose(2, 0, 1), pixels[6:9])
    assert np.array_equal(second.policy_inputs[0][:6], pixels[3:9])  # the stack moved on by one frame
    assert t0.action_time_ns == feed.t - PERIOD_NS  # stamped when commanded, not when published
    expected = policy_action_to_joints(t0.action, t0.observation.state[:6], KIN)
    assert np.allclose(first.command, expected)


def test_timeout_ends_with_the_next_observation_and_an_episode_record():
    control, feed = make_step(), Feed()
    control.begin_episode(feed.t)
    results = run_steps(control, feed, 20, signal=(0.1, False))
    done = transitions(results)
    assert [t.step for t in done] == list(range(8))
    last = done[-1]
    assert last.truncated and not last.terminated and last.next_observation is not None
    assert results[-1].command is None  # nothing commanded once the episode is over
    episode = results[-1].episode
    assert (episode.steps, episode.end_reason, episode.success) == (8, "timeout", False)
    assert episode.episode_return == pytest.approx(sum(t.reward for t in done))
    assert episode.duration_s == pytest.approx(0.9)
    assert not control.episode_open
    with pytest.raises(RuntimeError, match="begin_episode"):
        control.step(feed.next())


def test_stop_commits_the_open_episode_as_truncated_stopped():
    control, feed = make_step(), Feed()
    control.begin_episode(feed.t)
    done = transitions(run_steps(control, feed, 3))
    final = control.stop(feed.next(age_ns=10 * PERIOD_NS))  # even a stale last image: it is the last one there is
    last = final.transition
    assert last.step == len(done) == 2
    assert last.truncated and not last.terminated and last.next_observation is not None
    assert final.episode.end_reason == "stopped" and final.episode.steps == 3
    assert control.stop(feed.next()).transition is None  # nothing left to commit


def test_stale_image_holds_the_arm_and_counts():
    control, feed = make_step(), Feed()
    control.begin_episode(feed.t)
    control.step(feed.next())
    held = control.step(feed.next(age_ns=int(0.5e9)))
    assert held.stale and held.transition is None and np.array_equal(held.command, feed.q)
    assert control.tracker.stale_frames == 1


def test_failure_mark_truncates_or_with_a_penalty_terminates():
    for penalty, terminated in ((0.0, False), (3.0, True)):
        episode = EpisodeConfig(max_steps=50, failure_penalty=penalty)
        control, feed = make_step(episode=episode), Feed()
        control.begin_episode(feed.t)
        run_steps(control, feed, 3)
        control.mark_failure()
        result = control.step(feed.next())
        last = result.transition
        assert result.episode.end_reason == "failure_mark"
        assert (last.terminated, last.truncated) == (terminated, not terminated)
        assert last.reward == (-penalty if penalty else pytest.approx(-0.05))


def test_success_mark_terminates_with_the_success_reward():
    control, feed = make_step(episode=EpisodeConfig(max_steps=50)), Feed()
    control.begin_episode(feed.t)
    run_steps(control, feed, 2)
    control.mark_success()
    result = control.step(feed.next())
    assert result.episode.end_reason == "success_mark" and result.episode.success
    assert result.transition.terminated and result.transition.reward == 10.0


def test_the_reward_nodes_threshold_decides_episode_outcomes():
    """Same probabilities (0.8 on every image), two reward-node thresholds: the verdict field decides, not a
    re-threshold of the probability in the actor (the old fixed 0.7 would call both runs a success)."""
    outcomes = {}
    for node_threshold in (0.9, 0.5):
        control, feed = make_step(), Feed()
        control.begin_episode(feed.t)
        results = run_steps(control, feed, 20, signal=(0.8, 0.8 >= node_threshold))
        outcomes[node_threshold] = results[-1].episode.end_reason
        assert all(t.success_probability == pytest.approx(0.8) for t in transitions(results))
    assert outcomes == {0.9: "timeout", 0.5: "success"}


def test_policy_action_during_an_intervention_is_what_the_policy_would_have_executed():
    """Twin control steps, same seed and readings: one with the person driving, one without. The intervened one
    stores the human's action as ``action`` and, as ``policy_action``, exactly what its twin executed."""
    policy = Policy(TINY)
    human, alone = make_step(seed=3, policy=policy), make_step(seed=3, policy=policy)
    feed_h, feed_a = Feed(seed=1), Feed(seed=1)
    human.begin_episode(feed_h.t)
    alone.begin_episode(feed_a.t)
    leader = feed_h.q + np.array([0.1, -0.1, 0.1, 0.0, 0.0, 0.35])
    results = run_steps(human, feed_h, 4, intervention=True, leader=leader)
    h = transitions(results)
    a = transitions(run_steps(alone, feed_a, 4))
    for th, ta in zip(h, a, strict=True):
        assert th.intervention and not ta.intervention
        assert np.array_equal(th.policy_action, ta.action) and np.array_equal(ta.action, ta.policy_action)
        assert not np.allclose(th.action, th.policy_action)
    q = feed_h.q
    expected = HumanActionEncoder(KIN, TINY).encode(leader, q)
    assert expected[3] == 1.0  # the leader's jaw is 0.35 rad more open: an opening action
    for result, stored in zip(results, h, strict=False):
        np.testing.assert_array_equal(stored.action, expected)
        # executed = stored: the command is the stored action through the policy's own mapping, bit for bit
        np.testing.assert_array_equal(result.command, policy_action_to_joints(stored.action, q, KIN))


WALL_NOW_NS = 1_750_000_000 * 10**9  # the actor machine's wall clock when weights arrive


def _weights(policy, version, epoch, steps=0, schedule="linear(0.2,0.1,1000)", now_ns=WALL_NOW_NS):
    data = policy_to_bytes(policy)
    return dict(version=version, epoch=epoch, data=data, sha256=sha256_hex(data), schedule=schedule,
                environment_steps=steps, now_ns=now_ns)  # fmt: skip


def test_weights_swap_at_the_episode_boundary_and_a_new_learner_epoch_is_taken_despite_its_version():
    control, feed = make_step(swap_weights_at="step"), Feed()
    control.begin_episode(feed.t)
    assert control.offer_weights(**_weights(Policy(TINY), 5, "runA:100", steps=400)) == ""
    run_steps(control, feed, 2)
    assert control.policy_version == 0  # a new epoch (none in force yet) waits for the episode boundary
    control.begin_episode(feed.t)
    assert (control.policy_version, control.epoch, control.exploration_step) == (5, "runA:100", 400)
    run_steps(control, feed, 3)
    assert control.exploration_step == 403  # the weights' environment steps + the steps taken since

    assert "not newer" in control.offer_weights(**_weights(Policy(TINY), 4, "runA:100"))
    assert control.offer_weights(**_weights(Policy(TINY), 6, "runA:100", steps=410)) == ""
    result = control.step(feed.next())  # same epoch, swap_weights_at=step: taken between steps
    assert control.policy_version == 6 and result.transition.policy_version == 5

    restarted = Policy(TINY)
    assert control.offer_weights(**_weights(restarted, 1, "runA:200", steps=380)) == ""  # learner restarted
    run_steps(control, feed, 1)
    assert control.policy_version == 6  # not mid-episode
    control.begin_episode(feed.t)
    assert (control.policy_version, control.epoch) == (1, "runA:200")
    assert all(torch.equal(a, b) for a, b in zip(control.policy.state_dict().values(),
                                                  restarted.state_dict().values(), strict=True))  # fmt: skip
    assert "not newer" in control.offer_weights(**_weights(Policy(TINY), 9, "runA:100"))  # the old learner: refused
    bad = _weights(Policy(TINY), 2, "runA:200")
    assert control.offer_weights(**{**bad, "sha256": "0" * 64}) == "checksum mismatch"


def test_a_forged_future_epoch_does_not_block_the_next_real_update():
    """Weights stamped with an epoch that starts a day ahead are refused with why; the running learner's next
    version, and then a learner restarted (a later start time, in the past), are still taken and applied."""
    control, feed = make_step(), Feed()
    real = f"runA:{WALL_NOW_NS - 600 * 10**9}"
    control.begin_episode(feed.t)
    assert control.offer_weights(**_weights(Policy(TINY), 3, real)) == ""
    control.begin_episode(feed.t)
    assert (control.policy_version, control.epoch) == (3, real)

    forged = f"runA:{WALL_NOW_NS + 86_400 * 10**9}"
    problem = control.offer_weights(**_weights(Policy(TINY), 1, forged))
    assert "starts 86400 s ahead of this machine's clock" in problem
    later = WALL_NOW_NS + 10 * 10**9
    assert control.offer_weights(**_weights(Policy(TINY), 4, real, now_ns=later)) == ""
    control.begin_episode(feed.t)
    assert (control.policy_version, control.epoch) == (4, real)

    restarted = f"runA:{later - 10**9}"
    taken = Policy(TINY)
    assert control.offer_weights(**_weights(taken, 1, restarted, now_ns=later)) == ""
    control.begin_episode(feed.t)
    assert (control.policy_version, control.epoch) == (1, restarted)
    assert all(torch.equal(a, b) for a, b in zip(control.policy.state_dict().values(),
                                                  taken.state_dict().values(), strict=True))  # fmt: skip


def test_exploration_noise_follows_the_weights_schedule_at_the_shared_step():
    control, feed = make_step(seed=4), Feed()
    control.offer_weights(**_weights(Policy(TINY), 1, "e:1", steps=500, schedule="linear(0.6,0.1,1000)"))
    control.begin_episode(feed.t)
    assert stddev(control.schedule, control.exploration_step) == pytest.approx(0.35)
    first = control.step(feed.next())
    pixels, state = first.policy_inputs
    with torch.no_grad():
        mean = control.policy(torch.from_numpy(pixels)[None], torch.from_numpy(state)[None])[0].numpy()
    generator = torch.Generator().manual_seed(4)
    noise = torch.randn(4, generator=generator).numpy() * 0.35
    second = control.step(feed.next())
    assert np.allclose(second.transition.policy_action, np.clip(mean + noise, -1, 1), atol=1e-5)


def test_random_actions_only_for_an_actor_started_without_weights_below_num_explore_steps():
    config = ControlConfig(exploration=ExplorationConfig(num_explore_steps=3), episode=EpisodeConfig(max_steps=50))
    fresh = ControlStep(config, Policy(TINY), KIN, DEFAULT_PREPROCESSING, pretrained=False)
    feed = Feed()
    fresh.begin_episode(feed.t)
    actions = [t.action for t in transitions(run_steps(fresh, feed, 6))]
    generator = torch.Generator().manual_seed(0)  # exploration.act draws from the step's one torch generator
    uniform = [(torch.rand((1, 4), generator=generator) * 2.0 - 1.0)[0].numpy() for _ in range(4)]
    assert all(np.array_equal(a, u) for a, u in zip(actions[:3], uniform, strict=False))
    assert not np.array_equal(actions[3], uniform[3])  # from exploration step 3 on: the policy (and its noise)
    assert fresh.exploration_step == 6
    assert fresh.schedule == "linear(1.0,0.1,100000)"  # the from-scratch default until weights carry one
    # started from a checkpoint: never uniform
    pretrained = make_step(exploration=ExplorationConfig(num_explore_steps=3))
    pretrained.begin_episode(feed.t)
    first = transitions(run_steps(pretrained, Feed(), 2))[0]
    assert not np.array_equal(first.action, uniform[0])


def test_new_semantics_are_taken_only_at_an_episode_boundary_and_then_applied():
    from dataclasses import replace

    from so101_hilserl_core.action_mapping import absolute_gripper_position
    from so101_hilserl_core.semantics import PICK101_SEMANTICS

    control, feed = make_step(swap_weights_at="step", episode=EpisodeConfig(max_steps=50)), Feed()
    control.offer_weights(**_weights(Policy(TINY), 1, "e:1"))
    control.begin_episode(feed.t)
    pick101 = Policy(replace(TINY, **PICK101_SEMANTICS))
    assert control.offer_weights(**_weights(pick101, 2, "e:1")) == ""
    run_steps(control, feed, 3)
    assert control.policy_version == 1 and control.mapper.gripper_action == "delta"  # same epoch, but new semantics
    control.begin_episode(feed.t)
    assert control.policy_version == 2 and control.policy.config.semantics() == PICK101_SEMANTICS
    assert control.state_builder.orientation == "euler_zyx"
    first = control.step(feed.next())
    second = control.step(feed.next())
    action = second.transition.action
    assert first.command[GRIPPER] == pytest.approx(
        np.clip(absolute_gripper_position(action[3]), feed.q[GRIPPER] - 0.3, feed.q[GRIPPER] + 0.3)
    )


def test_the_step_acts_on_the_newest_judged_image_or_the_newest_without_rewards():
    control = make_step()
    stamps = [100, 200, 300, 400]
    assert control.choose_image(stamps) == 3  # nothing judged yet: the newest
    control.record_reward(200, 0.4, False)
    assert control.choose_image(stamps) == 1  # its reward will be known when the step's outcome is
    control.record_reward(400, 0.9, True)
    assert control.choose_image(stamps) == 3
    blind = make_step(use_reward_signal=False)
    blind.record_reward(200, 0.4, False)
    assert blind.choose_image(stamps) == 3
