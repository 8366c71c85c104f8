"""The simulation node in a real graph: its topics at their rates, commands with the driver's safety, services."""

import itertools

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import SetBool

from so101_contract import qos
from so101_contract.joints import JOINT_NAMES
from so101_contract.stamps import stamp_to_ns
from so101_driver.model.kinematics import Kinematics
from so101_hilserl_interfaces.srv import ResetEpisode
from so101_testing.graph import wait_until
from so101_testing.processes import ProcessGroup


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """One simulation process for the module (start-up costs seconds); operator off so nothing moves by itself."""
    with ProcessGroup(tmp_path_factory.mktemp("sim_logs")) as group:
        process = group.start_module(
            "so101_driver.sim.sim_node", "--ros-args", "-p", "operator_mode:=none", "-p", "seed:=3", name="sim"
        )
        yield process
        if not process.alive():
            print(group.logs())


def latest_positions(recorder) -> np.ndarray:
    msg = recorder.messages[-1]
    index = {name: i for i, name in enumerate(msg.name)}
    return np.array([msg.position[index[name]] for name in JOINT_NAMES])


def median_period_s(recorder, skip: int) -> float:
    stamps = [stamp_to_ns(m.header.stamp) * 1e-9 for m in recorder.messages[skip:]]
    return float(np.median(np.diff(stamps)))


def test_topics_at_their_rates(sim, probe):
    follower = probe.subscribe(JointState, "follower/joint_states", qos.SENSOR_DATA)
    leader = probe.subscribe(JointState, "leader/joint_states", qos.SENSOR_DATA)
    images = probe.subscribe(Image, "wrist_camera/image_raw", qos.SENSOR_DATA)
    infos = probe.subscribe(CameraInfo, "wrist_camera/camera_info", qos.SENSOR_DATA)
    images.wait_for(3, timeout_s=60, what="wrist images")
    start_f, start_l, start_i = len(follower), len(leader), len(images)
    wait_until(lambda: len(images) >= start_i + 30, 60, "30 more images")
    # The rate each topic is stamped at (capture instants): the median period, which a loaded machine's occasional
    # late tick does not move, as the count of messages per wall second did (9.2 Hz under a benchmark).
    assert median_period_s(follower, start_f) == pytest.approx(0.01, rel=0.1)  # state_rate_hz 100
    assert median_period_s(leader, start_l) == pytest.approx(0.01, rel=0.1)
    assert median_period_s(images, start_i) == pytest.approx(0.1, rel=0.1)  # camera_rate_hz 10

    image, info = images.messages[-1], infos.messages[-1]
    assert (image.width, image.height, image.encoding) == (640, 480, "rgb8")
    assert image.header.frame_id == info.header.frame_id == "wrist_camera_optical_frame"
    assert info.k[2] == pytest.approx(319.5) and info.k[5] == pytest.approx(239.5)  # pixel-centre convention
    assert list(follower.messages[-1].name) == list(JOINT_NAMES) and len(follower.messages[-1].velocity) == 6


def test_commands_are_limited_like_the_real_driver(sim, probe):
    kinematics = Kinematics()
    follower = probe.subscribe(JointState, "follower/joint_states", qos.SENSOR_DATA)
    commands = probe.publisher(JointState, "follower/joint_commands", qos.COMMAND)
    probe.wait_for_subscribers(commands, timeout_s=30)
    follower.wait_for(5, timeout_s=30, what="follower states")
    start = latest_positions(follower)

    far = start.copy()
    far[0] = start[0] + 2.0  # far beyond the per-command step limit (0.3 rad)
    commands.publish(JointState(name=list(JOINT_NAMES), position=[float(v) for v in far]))
    count = len(follower)
    follower.wait_for(count + 80, timeout_s=10, what="states after the command")  # ~0.8 s to get there
    moved = latest_positions(follower)
    assert moved[0] - start[0] < 0.3 + 0.05  # one step of at most max_joint_step, never the whole 2 rad
    assert moved[0] - start[0] > 0.1  # but it did move towards the target

    beyond = moved.copy()
    beyond[2] = kinematics.upper[2] + 1.0
    for _ in range(8):  # several commands: each may advance 0.3 rad, the limit still caps it
        commands.publish(JointState(name=list(JOINT_NAMES), position=[float(v) for v in beyond]))
        count = len(follower)
        follower.wait_for(count + 20, timeout_s=10, what="states")
    assert latest_positions(follower)[2] <= kinematics.upper[2] + 0.02


def test_reset_service_randomises_within_bounds(sim, probe):
    first = probe.call(ResetEpisode, "sim/reset", ResetEpisode.Request(seed=11, randomize=True), timeout_s=30)
    again = probe.call(ResetEpisode, "sim/reset", ResetEpisode.Request(seed=11, randomize=True), timeout_s=30)
    other = probe.call(ResetEpisode, "sim/reset", ResetEpisode.Request(seed=12, randomize=True), timeout_s=30)
    assert first.success and again.success and other.success
    np.testing.assert_allclose(first.joint_positions, again.joint_positions, atol=1e-9)
    assert (first.cube_position.x, first.cube_position.y) == (again.cube_position.x, again.cube_position.y)
    assert (first.cube_position.x, first.cube_position.y) != (other.cube_position.x, other.cube_position.y)
    kinematics = Kinematics()
    tcp, _ = kinematics.fk(np.array(first.joint_positions))
    assert np.abs(tcp - np.array([0.25, 0.0, 0.07])).max() < 0.012 + 0.005  # home +- 1 cm noise, IK tolerance
    assert 0.0 < first.cube_position.z < 0.03


def test_torque_services_answer(sim, probe):
    for name in ("follower/enable_torque", "leader/enable_torque"):
        off = probe.call(SetBool, name, SetBool.Request(data=False), timeout_s=30)
        on = probe.call(SetBool, name, SetBool.Request(data=True), timeout_s=30)
        assert off.success and on.success and "on" in on.message


def test_curriculum_stage_three_starts_the_open_gripper_three_cm_above_the_cube(tmp_path, probe):
    """The HIL benchmark runs the graph on the stage its checkpoint was pretrained on (sim.curriculum)."""
    from so101_driver.sim.grasp_controller import ScriptedGrasp

    with ProcessGroup(tmp_path) as group:
        group.start_module(
            "so101_driver.sim.sim_node",
            "--ros-args",
            "-p",
            "operator_mode:=none",
            "-p",
            "curriculum_stage:=3",
            "-p",
            "camera_width:=64",
            "-p",
            "camera_height:=48",
            "-r",
            "__ns:=/stage3",
            name="sim_stage3",
        )  # fmt: skip  (its own namespace: the module's simulation runs beside it)
        reset = "/stage3/sim/reset"
        started = probe.call(ResetEpisode, reset, ResetEpisode.Request(seed=5, randomize=True), timeout_s=60)
        other = probe.call(ResetEpisode, reset, ResetEpisode.Request(seed=6, randomize=True), timeout_s=30)
    for response in (started, other):
        cube = np.array([response.cube_position.x, response.cube_position.y, response.cube_position.z])
        tcp, _ = Kinematics().fk(np.array(response.joint_positions))
        above = ScriptedGrasp().grasp_tcp_position(cube) + np.array([0.0, 0.0, 0.03])
        assert np.abs(tcp - above).max() < 0.005, (tcp, above)  # not the robot's home 7 cm up
        assert np.abs(cube[:2] - np.array([0.25, 0.0])).max() <= 0.021  # stage 3's +- 2 cm
    assert started.cube_position.x != other.cube_position.x


def test_operator_pedal_is_down_exactly_while_the_hand_is_on_the_leader(tmp_path, probe):
    """With operator_pedal the simulated person says when it takes over (START) and lets go (END, also at a reset),
    which the intervention node takes as the truth instead of guessing from the leader's motion."""
    from std_msgs.msg import UInt8

    from so101_hilserl_interfaces.srv import OperatorCommand

    start, end = OperatorCommand.Request.START_INTERVENTION, OperatorCommand.Request.END_INTERVENTION
    pedal = probe.subscribe(UInt8, "/pedal/operator/commands", qos.EVENTS)
    leader = probe.subscribe(JointState, "/pedal/leader/joint_states", qos.SENSOR_DATA)
    with ProcessGroup(tmp_path) as group:
        group.start_module(
            "so101_driver.sim.sim_node",
            "--ros-args",
            "-p",
            "operator_mode:=demo",
            "-p",
            "operator_pedal:=true",
            "-p",
            "camera_width:=64",
            "-p",
            "camera_height:=48",
            "-r",
            "__ns:=/pedal",
            name="sim_pedal",
        )  # fmt: skip  (its own namespace: the module's simulation runs beside it)
        probe.wait_for_publishers("/pedal/operator/commands", 1, timeout_s=60)

        def reset(hands_off: bool) -> None:
            request = ResetEpisode.Request(seed=1, randomize=True, operator_hands_off=hands_off)
            assert probe.call(ResetEpisode, "/pedal/sim/reset", request, timeout_s=30).success

        # the demo person's first press, sent once the sim knows the probe listens (the topic keeps no history)
        wait_until(lambda: [m.data for m in pedal.messages][-1:] == [start], 30, "the first press")
        reset(False)  # the demo person lets go at the reset and takes the leader again at once
        wait_until(lambda: [m.data for m in pedal.messages][-2:] == [end, start], 30, "release, then press")
        reset(True)  # an evaluation episode: hands off until the next reset
        wait_until(lambda: pedal.messages[-1].data == end, 30, "the pedal released at the hands-off reset")
        presses = len(pedal)
        # a hands-off episode: the pedal stays up (the demo person would otherwise grab within a tick) while the
        # simulation runs on for 100 ticks (1 s)
        before = len(leader)
        wait_until(lambda: len(leader) >= before + 100, 30, "100 more leader states")
        assert len(pedal) == presses, [m.data for m in pedal.messages]
        presses_seen = [m.data for m in pedal.messages]
        assert all(a != b for a, b in itertools.pairwise(presses_seen)), presses_seen
