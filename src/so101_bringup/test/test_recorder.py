"""The recorder in a real graph: probe publishers of a joint-state, an image and two project topics; the bag is read
back with rosbags' AnyReader using only the definitions stored in the bag (no project types given to the reader)."""

from __future__ import annotations

import json
import signal
import time

import numpy as np
import pytest
from ament_index_python.packages import get_package_share_directory
from rclpy.serialization import deserialize_message
from rosbags.highlevel import AnyReader
from sensor_msgs.msg import Image, JointState

from so101_contract import qos
from so101_hilserl_core.messages import observation_to_msg
from so101_hilserl_interfaces.msg import EpisodeSummary, Transition

STARTUP_S = 40.0  # first discovery on a loaded 2-core machine
COUNTS = {"/follower/joint_states": 30, "/wrist_camera/image_raw": 8, "/hilserl/episodes": 5, "/hilserl/transitions": 6}


def joint_state(i: int) -> JointState:
    msg = JointState(name=["shoulder_pan", "gripper"], position=[0.01 * i, -0.02 * i], velocity=[0.5, float(i)])
    msg.header.stamp.sec, msg.header.frame_id = i, "base_link"
    return msg


def image(i: int) -> Image:
    pixels = np.full((12, 16, 3), i, np.uint8)
    return Image(height=12, width=16, encoding="rgb8", step=48, data=pixels.tobytes())


def episode(i: int) -> EpisodeSummary:
    return EpisodeSummary(actor_id="probe", episode_id=i, steps=100 + i, episode_return=0.5 * i, success=i % 2 == 0)


def transition(i: int) -> Transition:
    state = np.arange(18, dtype=np.float32) + i
    msg = Transition(actor_id="probe", episode_id=7, step=i, action=[0.1, -0.2, 0.3, float(i % 2)], reward=0.25 * i)
    msg.observation = observation_to_msg(np.full((84, 84, 3), i, np.uint8), state)
    return msg


MAKERS = {
    "/follower/joint_states": (JointState, joint_state, qos.SENSOR_DATA),
    "/wrist_camera/image_raw": (Image, image, qos.SENSOR_DATA),
    "/hilserl/episodes": (EpisodeSummary, episode, qos.EVENTS),
    "/hilserl/transitions": (Transition, transition, qos.TRANSITIONS),
}


def installed_hash(name: str) -> str:
    """The RIHS01 hash rosidl computed for a project message at build time (what a ROS install compares against)."""
    path = f"{get_package_share_directory('so101_hilserl_interfaces')}/msg/{name}.json"
    with open(path) as handle:
        hashes = json.load(handle)["type_hashes"]
    return next(h["hash_string"] for h in hashes if h["type_name"] == f"so101_hilserl_interfaces/msg/{name}")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_recorded_bag_reads_back_complete(processes, probe, tmp_path, stop_signal):
    bag = tmp_path / "bag"
    publishers = {topic: probe.publisher(kind, topic, profile) for topic, (kind, _, profile) in MAKERS.items()}
    recorder = processes.start_module(
        "so101_bringup.records.recorder",
        "--out",
        str(bag),
        "--topics",
        *COUNTS,
        "--poll-period",
        "0.2",
        name="recorder",
    )
    for publisher in publishers.values():
        probe.wait_for_subscribers(publisher, timeout_s=STARTUP_S)
    time.sleep(0.3)  # let the matched endpoints settle before the best-effort streams start

    sent: dict[str, list] = {topic: [] for topic in COUNTS}
    for i in range(max(COUNTS.values())):
        for topic, count in COUNTS.items():
            if i < count:
                msg = MAKERS[topic][1](i)
                publishers[topic].publish(msg)
                sent[topic].append(msg)
        time.sleep(0.01)
    time.sleep(1.0)  # delivery; the recorder writes as messages arrive

    recorder.popen.send_signal(stop_signal)
    assert recorder.popen.wait(timeout=20.0) == 0, recorder.output()
    assert (bag / "metadata.yaml").is_file()
    assert len(list(bag.glob("*.mcap"))) == 1

    with AnyReader([bag]) as reader:  # only the bag's own definitions: proves they are in it
        assert {c.topic for c in reader.connections} == set(COUNTS)
        by_topic = {c.topic: c for c in reader.connections}
        transitions = by_topic["/hilserl/transitions"]
        assert transitions.msgtype == "so101_hilserl_interfaces/msg/Transition"
        assert "MSG: so101_hilserl_interfaces/Observation" in transitions.msgdef.data
        assert transitions.digest == installed_hash("Transition")
        assert by_topic["/hilserl/episodes"].digest == installed_hash("EpisodeSummary")
        received: dict[str, list] = {topic: [] for topic in COUNTS}
        for connection, _, raw in reader.messages():
            received[connection.topic].append((raw, reader.deserialize(raw, connection.msgtype)))

    for topic, count in COUNTS.items():
        assert len(received[topic]) == count, f"{topic}: {len(received[topic])} of {count} recorded"
        kind = MAKERS[topic][0]  # the stored bytes are the wire's: rclpy reads them back to the sent messages
        assert [deserialize_message(bytes(raw), kind) for raw, _ in received[topic]] == sent[topic], topic

    joints = [m for _, m in received["/follower/joint_states"]]
    assert [list(m.position) for m in joints] == [list(m.position) for m in sent["/follower/joint_states"]]
    images = [m for _, m in received["/wrist_camera/image_raw"]]
    assert [bytes(m.data) for m in images] == [bytes(m.data) for m in sent["/wrist_camera/image_raw"]]
    episodes = [m for _, m in received["/hilserl/episodes"]]
    assert [(m.episode_id, m.steps, m.success) for m in episodes] == [(i, 100 + i, i % 2 == 0) for i in range(5)]
    steps = [m for _, m in received["/hilserl/transitions"]]
    assert [m.step for m in steps] == list(range(6))
    for i, m in enumerate(steps):
        np.testing.assert_array_equal(m.observation.state, np.arange(18, dtype=np.float32) + i)
        assert m.observation.image.encoding == "rgb8" and bytes(m.observation.image.data) == bytes([i]) * 84 * 84 * 3


def test_refuses_an_existing_bag_directory(processes, tmp_path):
    (tmp_path / "bag").mkdir()
    proc = processes.start_module("so101_bringup.records.recorder", "--out", str(tmp_path / "bag"), name="recorder")
    assert proc.popen.wait(timeout=20.0) != 0
    assert "already exists" in proc.output()
