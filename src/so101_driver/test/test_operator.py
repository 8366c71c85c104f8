"""The simulated leader arm and the simulated person (so101_driver.sim.operator).

The detection tests run the seed system's variance detector, written out here, on the leader and follower joint
traces of a closed loop with SimWorld: the operator's corrections must be visible in the leader joints alone, the
only channel a real person has.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest

from so101_driver.model.kinematics import HOME_SEED, TOOL_DOWN, Kinematics
from so101_driver.sim.grasp_controller import ScriptedGrasp
from so101_driver.sim.operator import LeaderArm, LeaderArmConfig, OperatorConfig, SimulatedOperator
from so101_driver.sim.world import SimConfig, SimWorld

DT = 0.1  # control period
SUBSTEPS = 10  # leader and physics at 100 Hz, as the sim node steps them


@pytest.fixture(scope="module")
def kin() -> Kinematics:
    return Kinematics()


def home_q(kin: Kinematics, position=(0.25, 0.0, 0.07)) -> np.ndarray:
    q, error = kin.solve_ik(HOME_SEED, np.array(position), tool_direction=TOOL_DOWN)
    assert error < 1e-3
    q[5] = 1.0
    return q


# ---- LeaderArm ---------------------------------------------------------------------------------------------------


def test_leader_tracks_command_with_configured_lag(kin):
    q0 = home_q(kin)
    goal = q0 + np.array([0.2, -0.2, 0.2, -0.2, 0.2, 0.0])
    for tau in (0.1, 0.2):
        remaining = []
        for dt, steps in ((0.01, round(tau / 0.01)), (0.05, round(tau / 0.05))):  # rate independent
            leader = LeaderArm(kin, LeaderArmConfig(tracking_time_constant_s=tau, jitter_rad=0.0), seed=0)
            leader.reset(q0)
            leader.command(goal)
            for _ in range(steps):
                leader.step(dt, None)
            remaining.append((goal - leader.positions)[:5] / (goal - q0)[:5])
        for r in remaining:  # one time constant: e^-1 of the step is left
            np.testing.assert_allclose(r, math.exp(-1.0), rtol=1e-6)

    # Default jitter: ~0.1 deg of noise around a settled command, no drift.
    leader = LeaderArm(kin, seed=1)
    leader.reset(q0)
    leader.command(goal)
    readings = []
    for i in range(400):
        leader.step(0.01, None)
        if i >= 200:
            readings.append(leader.positions)
    readings = np.rad2deg(np.array(readings) - goal)
    assert 0.07 < readings.std() < 0.13
    assert np.abs(readings.mean(axis=0)).max() < 0.05


def test_leader_is_limp_when_torque_off_and_respects_limits(kin):
    q0 = home_q(kin)
    leader = LeaderArm(kin, seed=0)
    leader.reset(q0)
    leader.set_torque(False)
    assert not leader.torque_enabled
    leader.command(q0 + 0.3)
    for _ in range(100):
        leader.step(0.01, None)
    np.testing.assert_array_equal(leader.positions, q0)  # stays exactly where it was left

    leader.set_torque(True)
    leader.command(kin.upper + 1.0)  # beyond every limit: clipped
    for _ in range(300):
        leader.step(0.01, None)
    assert np.all(leader.positions <= kin.upper + 1e-12)
    np.testing.assert_allclose(leader.positions, kin.upper, atol=math.radians(1.0))
    with pytest.raises(ValueError, match="q_target"):
        leader.command(np.zeros(5))


def test_leader_follows_the_hand_over_its_command(kin):
    q0 = home_q(kin)
    hand = q0 + np.array([0.3, 0.3, -0.3, -0.3, 0.3, -0.5])
    leader = LeaderArm(kin, seed=3)
    leader.reset(q0)
    leader.command(q0)  # torque on, commanded to stay: the person overpowers the low gains
    for _ in range(10):
        leader.step(0.01, hand)
    tremor = leader.config.tremor_rad
    assert np.abs(leader.positions - hand).max() < 4 * tremor  # there within one control period
    errors = []
    for _ in range(1000):
        leader.step(0.01, hand)
        errors.append(leader.positions - hand)
    std = np.array(errors).std()
    assert 0.5 * tremor < std < 1.5 * tremor  # the hand is never perfectly still
    leader.step(0.01, kin.lower - 1.0)
    leader.step(0.5, kin.lower - 1.0)
    assert np.all(leader.positions >= kin.lower - 1e-12)


# ---- decisions on synthetic follower trajectories ----------------------------------------------------------------


CUBE = np.array([0.22, 0.06, 0.015])


def drive(operator: SimulatedOperator, positions_at, duration_s: float) -> list:
    """Feed the operator a follower trajectory (the follower ignores the leader); return the hand targets."""
    hands, q = [], None
    for i in range(round(duration_s / DT)):
        t = i * DT
        q = positions_at(t, q)
        hands.append(operator.update(t, DT, q, CUBE, False))
    return hands


def straight_line(kin: Kinematics, direction: np.ndarray, speed: float):
    start = kin.fk(home_q(kin))[0]
    direction = direction / np.linalg.norm(direction)

    def positions_at(t, q_prev):
        q_prev = home_q(kin) if q_prev is None else q_prev
        q, error = kin.solve_ik(q_prev, start + speed * t * direction, tol=1e-4)
        assert error < 1e-3
        return q

    return positions_at


def test_a_stalled_policy_is_taken_over_after_its_own_time_and_the_reaction_and_held_to_the_end(kin):
    config = OperatorConfig()
    operator = SimulatedOperator(kin, ScriptedGrasp(), config, seed=0)
    assert operator.helps  # no episode seen yet: it helps
    q_stuck = home_q(kin)
    hands = drive(operator, lambda t, q: q_stuck, 8.0)
    assert len(operator.events) == 1
    start, end, reason = operator.events[0]
    assert reason == "stalled" and end is None and operator.holding  # it drives until the episode ends
    low, high = config.reaction_delay_s
    assert config.min_policy_time_s + low - 1e-6 <= start <= config.min_policy_time_s + high + DT + 1e-6
    assert all(h is None for h in hands[: round(start / DT)]) and all(h is not None for h in hands[round(start / DT) :])


def test_policy_moving_toward_the_grasp_is_left_alone_and_moving_away_is_taken_over(kin):
    operator = SimulatedOperator(kin, ScriptedGrasp(), OperatorConfig(), seed=0)
    start = kin.fk(home_q(kin))[0]
    hands = drive(operator, straight_line(kin, CUBE - start, 0.015), 5.0)
    assert operator.events == [] and all(h is None for h in hands)

    operator.reset(0)
    away = start - CUBE
    away[2] = 0.0
    drive(operator, straight_line(kin, away, 0.03), 5.0)
    assert [reason for _, _, reason in operator.events] == ["away"]


def test_taking_over_keeps_the_policys_progress(kin):
    """A policy that brought the open gripper 1.5 cm above the grasp point and stalled: the person descends from
    there (the hand never lifts the arm back to the approach height) and closes."""
    grasp = ScriptedGrasp()
    above = grasp.grasp_tcp_position(CUBE) + np.array([0.0, 0.0, 0.015])
    q_above, error = kin.solve_ik(HOME_SEED, above, tool_direction=TOOL_DOWN)
    assert error < 1e-3
    q_above[5] = 1.0
    operator = SimulatedOperator(kin, grasp, OperatorConfig(), seed=1)
    hands = drive(operator, lambda t, q: q_above, 5.0)
    taken = [h for h in hands if h is not None]
    assert taken and operator.last_phase in ("descend", "close")
    assert max(kin.fk(h)[0][2] for h in taken) <= above[2] + 0.003


def test_help_tapers_as_the_policy_succeeds_alone(kin):
    config = OperatorConfig(taper_episodes=10, min_help_probability=0.1)
    operator = SimulatedOperator(kin, ScriptedGrasp(), config, seed=0)
    q = home_q(kin)
    assert operator.help_probability == 1.0
    for _ in range(10):  # the policy succeeds alone in 10 episodes: help drops to its floor
        operator.update(0.0, DT, q, CUBE, False)
        operator.end_episode(True)
        operator.reset()
    assert operator.help_probability == pytest.approx(0.1)
    helped = 0
    for _ in range(200):
        operator.reset()
        helped += operator.helps
    assert 5 <= helped <= 40
    for _ in range(5):  # half of the last ten fail: it helps half the time
        operator.update(0.0, DT, q, CUBE, False)
        operator.end_episode(False)
        operator.reset()
    assert operator.help_probability == pytest.approx(0.5)
    # a success the person made happen does not count for the policy
    operator.reset()
    operator.helps = True
    drive(operator, lambda t, q_: q, 5.0)
    assert operator.holding
    operator.end_episode(True)
    assert operator.help_probability == pytest.approx(0.6)


def test_probability_zero_never_helps_and_seeds_are_deterministic(kin):
    q_stuck = home_q(kin)
    never = SimulatedOperator(kin, ScriptedGrasp(), OperatorConfig(intervene_probability=0.0), seed=0)
    assert all(h is None for h in drive(never, lambda t, q: q_stuck, 15.0))
    assert never.events == []

    def run(seed):
        operator = SimulatedOperator(kin, ScriptedGrasp(), OperatorConfig(), seed=seed)
        hands = drive(operator, lambda t, q: q_stuck, 6.0)
        return operator.events, hands

    events_a, hands_a = run(7)
    events_b, hands_b = run(7)
    assert events_a == events_b and len(events_a) == 1
    assert all((a is None and b is None) or np.array_equal(a, b) for a, b in zip(hands_a, hands_b, strict=True))
    starts = {run(seed)[0][0][0] for seed in range(6)}
    assert len(starts) > 1  # the reaction delay is random across seeds

    off = SimulatedOperator(kin, ScriptedGrasp(), OperatorConfig(mode="none"), seed=0)
    assert all(h is None for h in drive(off, lambda t, q: q_stuck, 5.0))
    with pytest.raises(ValueError, match="mode"):
        OperatorConfig(mode="sometimes")
    with pytest.raises(ValueError, match="reaction_delay_s"):
        OperatorConfig(reaction_delay_s=(0.5, 0.3))
    assert OperatorConfig(reaction_delay_s=0.4).reaction_delay_s == (0.4, 0.4)


# ---- the devlog-022 signature in a closed loop -------------------------------------------------------------------


class DevlogDetector:
    """GearedLeaderAutomaticControlWrapper: error queue of 4 (degrees, 5 arm joints); start when the variance of
    the last 2 errors exceeds 10 deg^2, release when the variance of all 4 is below 0.01 deg^2; the queue is
    cleared at each transition."""

    def __init__(self):
        self.queue: deque[float] = deque(maxlen=4)
        self.active = False

    def update(self, follower_q: np.ndarray, leader_q: np.ndarray) -> float:
        error = float(np.linalg.norm(np.rad2deg(follower_q[:5] - leader_q[:5])))
        self.queue.append(error)
        if len(self.queue) == 4:
            if not self.active and np.var(list(self.queue)[-2:]) > 10.0:
                self.active = True
                self.queue.clear()
            elif self.active and np.var(self.queue) < 0.01:
                self.active = False
                self.queue.clear()
        return error


def closed_loop(seed: int, policy: str, duration_s: float, operator_config: OperatorConfig) -> dict:
    """The intervention node's loop around SimWorld, a simulated leader and the operator; returns traces."""
    world = SimWorld(SimConfig(), seed=seed)
    kin = world.kinematics
    operator = SimulatedOperator(kin, ScriptedGrasp(), operator_config, seed=seed)
    leader = LeaderArm(kin, seed=seed)
    leader.reset(world.joint_positions())
    detector = DevlogDetector()
    target = world.joint_positions()
    centre = world.tcp_position()
    trace = {"t": [], "error": [], "detected": [], "holding": []}
    was_active = False
    for _ in range(round(duration_s / DT)):
        t, follower_q, leader_q = world.time, world.joint_positions(), leader.positions
        cube = world.cube_pose()[0]
        error = detector.update(follower_q, leader_q)
        if detector.active:  # the follower mirrors the leader; the leader goes limp under the hand
            world.set_joint_targets(leader_q)
            leader.set_torque(False)
        else:  # a deliberately bad policy; the leader tracks the follower
            if was_active:
                target = follower_q.copy()  # the policy takes over from where the person left the arm
            tcp = kin.fk(target)[0]
            if policy == "away":  # drifts away from the cube at 4 cm/s
                away = (tcp - cube) * np.array([1.0, 1.0, 0.0])
                target = kin.ik_step(target, tcp + 0.004 * away / np.linalg.norm(away))
            elif policy == "circle":  # moves slowly (1.5 cm/s) around where it started
                angle = 0.015 / 0.04 * t
                target = kin.ik_step(target, centre + 0.04 * np.array([np.sin(angle), 1 - np.cos(angle), 0.0]))
            world.set_joint_targets(target)  # "hold": keeps its pose
            leader.set_torque(True)
            leader.command(follower_q)
        was_active = detector.active
        hand = operator.update(t, DT, follower_q, cube, world.grasp_success(), leader_q=leader_q)
        for _ in range(SUBSTEPS):
            leader.step(DT / SUBSTEPS, hand)
            world.step(DT / SUBSTEPS)
        for key, value in zip(trace, (t, error, detector.active, operator.holding), strict=True):
            trace[key].append(value)
    trace = {key: np.array(value) for key, value in trace.items()}
    trace["events"] = operator.events
    return trace


def edges(times: np.ndarray, flags: np.ndarray) -> tuple[list, list]:
    """Times of the ticks whose reading turned a flag on, and off (flags[i] is the state after reading tick i)."""
    on = [times[i] for i in range(1, len(flags)) if flags[i] and not flags[i - 1]]
    off = [times[i] for i in range(1, len(flags)) if flags[i - 1] and not flags[i]]
    return on, off


@pytest.mark.parametrize("policy", ["hold", "away"])
def test_devlog_detector_sees_the_takeover_within_two_periods(policy):
    latencies, jumps = [], []
    for seed in range(3):
        trace = closed_loop(seed, policy, 8.0, OperatorConfig())
        events = trace["events"]
        assert len(events) == 1 and events[0][1] is None  # one takeover, held to the end
        starts, _ = edges(trace["t"], trace["detected"])
        # The detection reads the leader/follower state at the start of a tick (the grab happens during the tick).
        grab = events[0][0]
        assert starts and 0.0 < starts[0] - grab <= 2 * DT + 1e-6
        latencies.append(starts[0] - grab)
        i = round(grab / DT)
        jumps.append(trace["error"][i + 1] - trace["error"][i])
    print(
        f"\n[{policy}] detection latency {min(latencies):.2f}..{max(latencies):.2f} s, error jump at the grab "
        f"{min(jumps):.1f}..{max(jumps):.1f} deg"
    )


def test_devlog_detector_never_fires_on_idle_tracking():
    trace = closed_loop(0, "circle", 60.0, OperatorConfig(mode="none"))
    assert not trace["detected"].any()
    errors = trace["error"]
    var2 = np.array([np.var(errors[i - 1 : i + 1]) for i in range(1, len(errors))])
    assert var2.max() < 1.0  # two orders of magnitude below the 10 deg^2 start threshold
    print(
        f"\nidle tracking error {errors.mean():.2f} deg (max {errors.max():.2f}), var of last 2: max {var2.max():.3f}"
    )


# ---- demonstrations ----------------------------------------------------------------------------------------------


def test_demo_mode_grasps_the_cube():
    successes = 0
    for seed in range(3):
        world = SimWorld(SimConfig(), seed=seed)
        operator = SimulatedOperator(world.kinematics, ScriptedGrasp(), OperatorConfig(mode="demo"), seed=seed)
        leader = LeaderArm(world.kinematics, seed=seed)
        leader.reset(world.joint_positions())
        leader.set_torque(False)  # recording: the intervention is on for the whole episode
        for _ in range(50):
            leader_q = leader.positions
            world.set_joint_targets(leader_q)
            hand = operator.update(
                world.time, DT, world.joint_positions(), world.cube_pose()[0], world.grasp_success(), leader_q=leader_q
            )
            assert hand is not None and operator.holding
            for _ in range(SUBSTEPS):
                leader.step(DT / SUBSTEPS, hand)
                world.step(DT / SUBSTEPS)
        successes += world.grasp_success()
    assert successes >= 2
