"""The sim node's core without ROS: simulated time, the camera schedule, the lockstep gate, resets and the pedal,
driven through Simulation's inputs with its outputs recorded (the physics and the renderer are real)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from so101_contract import settings
from so101_contract.joints import JOINT_NAMES
from so101_contract.stamps import NS_PER_S
from so101_driver.sim.simulation import SettingError, SimOutputs, Simulation, SimulationConfig
from so101_driver.sim.world import SimConfig
from so101_testing.graph import wait_until

MS = 1_000_000
TIMEOUT_S = 60.0  # a loaded 2-core machine renders slowly


class Recorder:
    """SimOutputs that keep what the simulation sent (from its thread) for the test to read."""

    def __init__(self, listening: bool = True):
        self.states: list[int] = []
        self.frames: list[tuple[int, tuple]] = []
        self.clocks: list[int] = []
        self.pedals: list[bool] = []
        self.listening = listening
        self.lock = threading.Lock()

    def outputs(self) -> SimOutputs:
        return SimOutputs(
            states=lambda t, q, v, leader: self.states.append(t),
            camera=lambda t, image, success, position, quat: self.frames.append((t, image.shape)),
            clock=self.clocks.append,
            pedal=self._pedal,
        )

    def _pedal(self, down: bool) -> bool:
        if self.listening:
            self.pedals.append(down)
        return self.listening


def simulation(recorder: Recorder, **values) -> Simulation:
    config = settings.build(SimulationConfig, {"camera_width": 64, "camera_height": 48, **values})
    return Simulation(config, recorder.outputs())


@pytest.fixture
def running():
    """Simulations started here are stopped at the end, failed or not."""
    started: list[Simulation] = []

    def start(sim: Simulation) -> Simulation:
        started.append(sim)
        sim.start()
        return sim

    yield start
    for sim in started:
        sim.stop(timeout_s=5.0)


def test_lockstep_steps_physics_per_tick_and_renders_every_camera_period(running):
    recorder = Recorder()
    sim = simulation(recorder, clock_mode="lockstep")
    world_start_s = sim.world.time
    running(sim)
    sim.grant(NS_PER_S)
    wait_until(lambda: recorder.clocks and recorder.clocks[-1] >= NS_PER_S, TIMEOUT_S, "one simulated second")

    assert recorder.states == [tick * 10 * MS for tick in range(101)]  # 100 Hz from 0 to 1 s, none skipped
    assert [t for t, _ in recorder.frames] == [k * 100 * MS for k in range(11)]  # 10 Hz, stamped on the grid
    assert {shape for _, shape in recorder.frames} == {(48, 64, 3)}
    assert sim.world.time - world_start_s == pytest.approx(1.0, abs=1e-9)  # the physics ran exactly 1 s


def test_lockstep_never_passes_the_grant(running):
    recorder = Recorder()
    sim = running(simulation(recorder, clock_mode="lockstep"))
    sim.grant(350 * MS)
    # held at the grant: without news it sends the held instant again (so late nodes learn the time)
    wait_until(lambda: recorder.clocks.count(350 * MS) >= 2, TIMEOUT_S, "a hold at 0.35 s")
    assert max(recorder.clocks) == 350 * MS and max(recorder.states) == 350 * MS
    assert sim.sim_ns == 350 * MS

    sim.grant(500 * MS)
    wait_until(lambda: recorder.clocks.count(500 * MS) >= 2, TIMEOUT_S, "a hold at 0.5 s")
    assert max(recorder.clocks) == 500 * MS and recorder.states[-1] == 500 * MS


def test_lockstep_holds_for_a_silent_learner_and_for_one_that_owes_updates(running):
    recorder = Recorder()
    sim = running(simulation(recorder, clock_mode="lockstep", lockstep_max_backlog_updates=3))
    sim.progress(backlog=0, stamp_ns=0)  # its first report, before it has simulated time: counts as made at 0
    sim.grant(NS_PER_S)
    wait_until(lambda: recorder.clocks.count(100 * MS) >= 2, TIMEOUT_S, "a hold one control period on")
    assert max(recorder.states) == 100 * MS  # lockstep_learner_lead_s past its newest report, not the grant

    held = recorder.clocks.count(100 * MS)
    sim.progress(backlog=10, stamp_ns=100 * MS)  # alive again, but it owes more updates than allowed
    wait_until(lambda: recorder.clocks.count(100 * MS) >= held + 2, TIMEOUT_S, "a hold for the backlog")
    assert max(recorder.states) == 100 * MS

    sim.progress(backlog=3, stamp_ns=100 * MS)
    wait_until(lambda: recorder.clocks.count(200 * MS) >= 2, TIMEOUT_S, "a hold at the next lead")
    assert max(recorder.clocks) == 200 * MS


def test_reset_puts_the_arm_home_and_starts_a_new_episode(running):
    recorder = Recorder()
    sim = simulation(recorder, clock_mode="lockstep", operator_mode="none", operator_demo_episodes=1)
    _, home = sim.reset(5, randomize=False, operator_hands_off=False)
    running(sim)
    away = np.asarray(home["joint_positions"]) + np.array([0.25, 0.25, -0.25, 0.0, 0.0, 0.0])
    result = sim.follower_command(JOINT_NAMES, away)
    assert result.target is not None
    sim.grant(NS_PER_S)
    wait_until(lambda: recorder.clocks and recorder.clocks[-1] >= NS_PER_S, TIMEOUT_S, "the arm to move")
    moved = sim.world.joint_positions()
    assert np.max(np.abs(moved - home["joint_positions"])) > 0.1

    seed, state = sim.reset(5, randomize=False, operator_hands_off=False)
    assert seed == 5
    np.testing.assert_allclose(state["joint_positions"], home["joint_positions"], atol=1e-3)
    tcp, _ = sim.world.kinematics.fk(sim.world.joint_positions())
    np.testing.assert_allclose(tcp, SimConfig.home_ee, atol=0.01)
    np.testing.assert_allclose(sim.leader.positions, state["joint_positions"], atol=1e-9)  # the leader comes along
    assert sim.follower_guard.target is None  # the old command does not pull the arm away from home again
    assert sim.operator.mode == "none"  # the one demonstration went to the first episode

    first = sim.reset(-1, randomize=True, operator_hands_off=False)
    second = sim.reset(first[0], randomize=True, operator_hands_off=False)
    assert first[0] >= 0 and np.array_equal(first[1]["cube_position"], second[1]["cube_position"])


def test_demonstrations_go_to_the_first_episodes_and_hands_off_keeps_them():
    recorder = Recorder()
    sim = simulation(recorder, operator_mode="correct", operator_demo_episodes=1)
    sim.reset(1, randomize=True, operator_hands_off=True)
    assert sim.operator.mode == "none"  # an evaluation episode: the policy alone, no demonstration spent
    sim.reset(2, randomize=True, operator_hands_off=False)
    assert sim.operator.mode == "demo"
    sim.reset(3, randomize=True, operator_hands_off=False)
    assert sim.operator.mode == "correct"


def test_pedal_is_pressed_once_somebody_listens_and_released_at_a_reset(running):
    recorder = Recorder(listening=False)
    sim = running(simulation(recorder, clock_mode="lockstep", operator_mode="demo", operator_pedal=True))
    sim.grant(NS_PER_S)
    wait_until(lambda: recorder.clocks and recorder.clocks[-1] >= NS_PER_S, TIMEOUT_S, "the operator to take over")
    assert recorder.pedals == []  # nobody listened: nothing sent
    recorder.listening = True
    sim.grant(2 * NS_PER_S)
    wait_until(lambda: recorder.clocks and recorder.clocks[-1] >= 2 * NS_PER_S, TIMEOUT_S, "the next second")
    assert recorder.pedals == [True]  # pressed once, not once per tick
    sim.reset(0, randomize=True, operator_hands_off=False)
    assert recorder.pedals == [True, False]


def test_settings_it_cannot_run_with_are_named():
    with pytest.raises(SettingError, match="urdf_path="):
        simulation(Recorder(), urdf_path="/nonexistent/so101.urdf")
    with pytest.raises(SettingError, match="state_rate_hz=300.*clock_mode lockstep"):
        simulation(Recorder(), clock_mode="lockstep", state_rate_hz=300.0)
