"""Every project message and service type survives serialization, in one process and between two over DDS."""

import hashlib
import re

import pytest
from rclpy.serialization import deserialize_message, serialize_message

from so101_hilserl_interfaces import msg as project_msgs
from so101_hilserl_interfaces import srv as project_srvs
from so101_testing.graph import wait_until

MESSAGE_TYPES = [
    project_msgs.Observation,
    project_msgs.Transition,
    project_msgs.PolicyWeights,
    project_msgs.RewardSignal,
    project_msgs.EpisodeSummary,
    project_msgs.LearnerStats,
    project_msgs.LearnerProgress,
]
SERVICE_TYPES = [project_srvs.ResetEpisode, project_srvs.OperatorCommand]
SERVICE_PARTS = [part for srv in SERVICE_TYPES for part in (srv.Request, srv.Response)]

_BASIC = {
    "boolean": lambda i: True,
    "octet": lambda i: bytes([i % 256]),
    "char": lambda i: i % 128,
    "float": lambda i: 0.25 + i,
    "double": lambda i: -1.5e-3 * (i + 1),
    "int8": lambda i: -(i % 100),
    "uint8": lambda i: (i * 7) % 256,
    "int16": lambda i: -300 - i,
    "uint16": lambda i: 60000 - i,
    "int32": lambda i: -70000 - i,
    "uint32": lambda i: 4_000_000_000 - i,
    "int64": lambda i: -(2**40) - i,
    "uint64": lambda i: 2**63 + i,
    "string": lambda i: f"value-{i}-ünïcode",
}


def _import_type(name: str):
    package, type_name = name.split("/")
    import importlib

    return getattr(importlib.import_module(f"{package}.msg"), type_name)


def fill(msg_type, seed: int = 1):
    """An instance with a distinct, non-default value in every field, recursively."""
    msg = msg_type()
    for index, (field, type_str) in enumerate(msg_type.get_fields_and_field_types().items()):
        setattr(msg, field, _value(type_str, seed * 31 + index))
    return msg


def _value(type_str: str, i: int):
    if seq := re.fullmatch(r"sequence<(.+?)(?:, (\d+))?>", type_str):
        inner, bound = seq.group(1), seq.group(2)
        count = 1 if bound else 3
        if inner == "uint8":
            return bytes((i + k) % 256 for k in range(300))
        return [_value(inner, i + k) for k in range(count)]
    if arr := re.fullmatch(r"(.+)\[(\d+)\]", type_str):
        return [_value(arr.group(1), i + k) for k in range(int(arr.group(2)))]
    if type_str in _BASIC:
        return _BASIC[type_str](i)
    if bounded := re.fullmatch(r"string<(\d+)>", type_str):
        return "s" * int(bounded.group(1))
    return fill(_import_type(type_str), i)


@pytest.mark.parametrize("msg_type", MESSAGE_TYPES + SERVICE_PARTS, ids=lambda t: t.__qualname__)
def test_serialization_round_trip(msg_type):
    original = fill(msg_type)
    assert original != msg_type()  # the filler really set something
    assert deserialize_message(serialize_message(original), msg_type) == original


def test_transition_carries_at_most_one_next_observation():
    transition = project_msgs.Transition()
    transition.next_observation = [project_msgs.Observation()]
    serialize_message(transition)
    transition.next_observation = [project_msgs.Observation(), project_msgs.Observation()]
    with pytest.raises(Exception, match="serialize"):  # the bound is enforced on the wire
        serialize_message(transition)


def _type_name(msg_type) -> str:
    module = msg_type.__module__.split(".")
    return f"{module[0]}/{module[1]}/{msg_type.__name__}"


@pytest.fixture
def echo(processes):
    def start(msg_type, latched=False):
        args = [_type_name(msg_type), "echo_in", "echo_out"] + (["--latched"] if latched else [])
        return processes.start_module("so101_testing.echo", *args, name=f"echo_{msg_type.__name__}")

    return start


@pytest.mark.parametrize("msg_type", MESSAGE_TYPES, ids=lambda t: t.__name__)
def test_two_process_round_trip_over_dds(msg_type, echo, probe):
    echo(msg_type)
    original = fill(msg_type, seed=5)
    received = probe.subscribe(msg_type, "echo_out")
    publisher = probe.publisher(msg_type, "echo_in")
    probe.wait_for_subscribers(publisher, timeout_s=30)
    probe.wait_for_publishers("echo_out", timeout_s=30)

    def publish_until_echoed():
        publisher.publish(original)
        return len(received) > 0

    wait_until(publish_until_echoed, 30, f"{msg_type.__name__} echoed back", period_s=0.5)
    assert received.messages[0] == original


def test_ten_megabyte_policy_weights_latched_round_trip(echo, probe):
    """Weights are published once, reliable + transient local: a late-joining actor must still get them whole."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    payload = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    weights = project_msgs.PolicyWeights(
        version=3, learner_updates=1200, format="safetensors", data=payload, sha256=hashlib.sha256(payload).hexdigest()
    )
    publisher = probe.publisher(project_msgs.PolicyWeights, "echo_in", latched)
    publisher.publish(weights)  # before anybody listens: only durability can deliver it
    echo(project_msgs.PolicyWeights, latched=True)
    received = probe.subscribe(project_msgs.PolicyWeights, "echo_out", latched)
    (back,) = received.wait_for(1, timeout_s=60, what="10 MB PolicyWeights echoed back")
    assert len(back.data) == len(payload)
    assert hashlib.sha256(bytes(back.data)).hexdigest() == back.sha256 == weights.sha256
    assert back.version == 3 and back.learner_updates == 1200
