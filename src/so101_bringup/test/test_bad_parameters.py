"""Every node refuses a parameter it cannot run with at start: exit code 2 and one line naming the parameter and
what is allowed (issue 15), never a node that starts and then idles, busy-loops or dies in a thread.

A parameter the node does not declare is refused the same way, naming the closest declared one; in a params file
only the node's own section counts (so101_contract.parameters.check_given), which the last test starts a node with.

Each case is a real node process started as `python -m <module> --ros-args -p name:=value`, as launch and the
runner start them. Many nodes import torch (a few seconds each on a loaded machine), so all cases start together
once for the module and each test then reads its own process's exit code and output.
"""

from __future__ import annotations

import re
import time

import pytest
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState

from so101_contract.joints import JOINT_NAMES
from so101_testing.processes import ProcessGroup

LEARNER = "so101_hilserl_learner.learner_node"
ACTOR = "so101_hilserl_actor.actor_node"
SIM = "so101_driver.sim.sim_node"
FK = "so101_driver.model.fk_node"

# (module, parameter, value as on a command line, words the refusal must contain besides the parameter's name)
CASES = [
    (LEARNER, "batch_size", "-5", "expected integer in [1, "),
    (LEARNER, "utd_ratio", "-1", "expected float in [0.0, "),
    (LEARNER, "stats_period_s", "0", "expected float in ["),
    (LEARNER, "stddev_schedule", "'linear(1.0,0.1)'", "linear(start,end,duration)"),
    (LEARNER, "checkpoints_kept", "0", "expected integer in [1, "),
    (SIM, "state_rate_hz", "0", "expected float in [1.0, "),
    (SIM, "camera_rate_hz", "-10", "expected float in [0.1, "),
    (SIM, "operator_mode", "chaos", "one of correct, demo, none"),
    (ACTOR, "reset_mode", "teleport", "one of sim, ik"),
    (ACTOR, "control_rate_hz", "0", "expected float in [1.0, 100.0]"),
    ("so101_driver.hardware.follower_node", "baudrate", "115201", "one of (4800"),
    ("so101_driver.hardware.leader_node", "state_rate_hz", "-100", "expected float in [1.0, "),
    ("so101_driver.hardware.camera_node", "fps", "0", "expected float in [0.1, "),
    ("so101_reward.reward_node", "threshold", "2.0", "expected float in [-1.0, 1.0]"),
    ("so101_hilserl_actor.intervention_node", "start_window", "9", "queue_size=4"),
    ("so101_hilserl_actor.intervention_node", "control_rate_hz", "0", "expected float in [1.0, 100.0]"),
    # A parameter the node does not declare (ROS alone would ignore it): the closest declared name, if any.
    (LEARNER, "batch_sise", "256", "is not a parameter of node learner; did you mean batch_size?"),
    (ACTOR, "stddev_schedule", "'linear(1.0,0.1,100)'", "is not a parameter of node actor"),
    (FK, "frame_idd", "base", "is not a parameter of node fk_node; did you mean frame_id?"),
    # A URDF that is not there: the file and the fix, not a traceback from the model's loader.
    (FK, "urdf_path", "/nonexistent/so101.urdf", "='/nonexistent/so101.urdf': no such file; give an existing URDF"),
    (SIM, "urdf_path", "/nonexistent/so101.urdf", "='/nonexistent/so101.urdf': no such file; give an existing URDF"),
]
EXIT_TIMEOUT_S = 240.0  # every case's process started at once on two loaded cores, each importing torch or MuJoCo


def case_id(case) -> str:
    return f"{case[0].rsplit('.', 1)[-1]}-{case[1]}"


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """{case id: (exit code or None, output)} of every case, started together."""
    run_dir = tmp_path_factory.mktemp("runs")
    with ProcessGroup(tmp_path_factory.mktemp("logs")) as group:
        started = {}
        for case in CASES:
            module, name, value, _ = case
            extra = ["-p", f"run_dir:={run_dir / case_id(case)}"] if module == LEARNER else []
            started[case_id(case)] = group.start_module(module, "--ros-args", "-p", f"{name}:={value}", *extra,
                                                        name=case_id(case))  # fmt: skip
        deadline = time.monotonic() + EXIT_TIMEOUT_S
        results = {}
        for key, process in started.items():
            code = process.wait_exit(max(deadline - time.monotonic(), 0.1))
            results[key] = (code, process.output())
        yield results


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_a_bad_parameter_exits_2_with_one_line_naming_it(refusals, case):
    module, name, value, allowed = case
    code, output = refusals[case_id(case)]
    assert code == 2, f"{module} with {name}:={value}: exit code {code}\n{output}"
    lines = [line for line in output.splitlines() if re.search(rf"\bparameter {name}\b", line)]
    assert lines, f"no line names parameter {name}:\n{output}"
    assert any(allowed in line for line in lines), f"the refusal does not say what is allowed ({allowed!r}):\n{output}"
    assert "Traceback" not in output, output


def test_a_params_file_refuses_a_typo_in_the_nodes_own_section_only(processes, probe, tmp_path):
    """fk_node with a typo in its own section exits 2; with another node's parameter in the all-node section and in
    that node's section, it runs: it answers a joint state with its end-effector pose."""
    own = tmp_path / "own.yaml"
    own.write_text("/**/fk_node:\n  ros__parameters:\n    frame_id: base_link\n    urdf: ''\n")
    shared = tmp_path / "shared.yaml"
    shared.write_text(
        "/**:\n  ros__parameters:\n    batch_size: 256\n/**/learner:\n  ros__parameters:\n    utd_ratio: 1.0\n"
    )
    refused = processes.start_module(FK, "--ros-args", "--params-file", str(own), name="own")
    runs = processes.start_module(FK, "--ros-args", "--params-file", str(shared), name="shared")

    code = refused.wait_exit(EXIT_TIMEOUT_S)
    assert code == 2, refused.output()
    line = f"parameter urdf (from {own}) is not a parameter of node fk_node; did you mean urdf_path?"
    assert line in refused.output() and "Traceback" not in refused.output(), refused.output()

    poses = probe.subscribe(PoseStamped, "follower/ee_pose")
    joints = probe.publisher(JointState, "follower/joint_states")
    deadline = time.monotonic() + EXIT_TIMEOUT_S
    while not len(poses) and runs.alive() and time.monotonic() < deadline:
        joints.publish(JointState(name=list(JOINT_NAMES), position=[0.0] * len(JOINT_NAMES)))
        time.sleep(0.1)
    assert len(poses), f"fk_node with the shared file published no pose (alive: {runs.alive()}):\n{runs.output()}"
