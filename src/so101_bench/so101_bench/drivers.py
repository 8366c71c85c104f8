"""Benchmark of the follower driver against the servo bus emulator at 1 Mbps wire timing.

(a) State rate: follower/joint_states received from the follower node (a real process) at the default 100 Hz and at
    the highest rate the bus allows, also with 5 % of the replies corrupted. Goal: >= 100 Hz.
(b) Command-to-bus latency: a joint command published here -> its goal-position packet at the emulated servos
    (in-process, behind a real pseudo-terminal; both times on this process's monotonic clock). p50/p99.

    python -m so101_bench.drivers --seconds 3       # 10 s per figure by default
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from so101_contract.joints import JOINT_NAMES

CALIBRATION = {  # the factory state of an uncalibrated bus: zero offset, full range
    name: {"id": i, "drive_mode": 0, "homing_offset": 0, "range_min": 0, "range_max": 4095}
    for i, name in enumerate(JOINT_NAMES, start=1)
}
STATE_RATE_GOAL_HZ = 100.0


def _percentiles_ms(samples_s: list[float]) -> dict[str, float]:
    values = np.asarray(samples_s) * 1e3
    return {"p50": float(np.percentile(values, 50)), "p99": float(np.percentile(values, 99)), "n": len(values)}


def measure(seconds: float, state_rate_hz: float, corrupt: float, commands: int, log_dir: Path) -> dict:
    """One node run against a fresh emulator: received state rate, and command latency when ``commands`` > 0."""
    from sensor_msgs.msg import JointState

    from so101_contract import qos
    from so101_driver.hardware.calibration import JointConversion, load_calibration
    from so101_driver.hardware.feetech.emulator import ServoBusEmulator
    from so101_testing.graph import GraphProbe, wait_until
    from so101_testing.processes import ProcessGroup

    calibration_file = log_dir / "calibration.json"
    calibration_file.write_text(json.dumps(CALIBRATION, indent=4))
    conversion = JointConversion(load_calibration(calibration_file))
    with (
        ServoBusEmulator(link_path=log_dir / f"bus-{time.monotonic_ns()}") as emulator,
        ProcessGroup(log_dir) as group,
        GraphProbe("so101_bench_drivers") as probe,
    ):
        emulator.corrupt_probability = corrupt
        node = group.start_module(
            "so101_driver.hardware.follower_node", "--ros-args", "-p", f"port:={emulator.port}",
            "-p", f"calibration_file:={calibration_file}", "-p", f"state_rate_hz:={state_rate_hz}",
            "-p", "on_shutdown:=limp", "-p", "command_timeout_s:=5.0", "-p", "max_joint_step:=1.0",
            name=f"follower-{state_rate_hz:g}",
        )  # fmt: skip
        states = probe.subscribe(JointState, "follower/joint_states", qos.SENSOR_DATA)
        try:
            states.wait_for(20, 60.0, "follower states")
        except AssertionError:
            raise RuntimeError(f"the follower node did not start:\n{node.output()[-3000:]}") from None
        time.sleep(1.0)
        count, start = len(states), time.monotonic()
        time.sleep(seconds)
        rate = (len(states) - count) / (time.monotonic() - start)

        latencies: list[float] = []
        if commands:
            publisher = probe.publisher(JointState, "follower/joint_commands", qos.COMMAND)
            probe.wait_for_subscribers(publisher, timeout_s=30.0)
            home = conversion.ticks_to_radians(np.full(6, 2048))
            for i in range(commands):
                target = home.copy()
                target[0] += 0.002 * ((i % 100) + 1)  # a distinct goal each time, to match its packet
                goal_ticks = int(conversion.radians_to_ticks(target)[0])
                seen = len(emulator.goal_writes)
                sent = time.monotonic()
                publisher.publish(JointState(name=list(JOINT_NAMES), position=target.tolist()))
                try:
                    wait_until(
                        lambda seen=seen, goal=goal_ticks: any(
                            w[1].get(1) == goal for w in emulator.goal_writes[seen:]
                        ),
                        1.0,
                        "the goal packet",
                        period_s=0.0002,
                    )
                except AssertionError:
                    continue
                arrived = next(t for t, goals in emulator.goal_writes[seen:] if goals.get(1) == goal_ticks)
                latencies.append(arrived - sent)
                time.sleep(0.02)
        stats = {"rate_hz": rate, "errors_injected": emulator.counters.get("corrupted", 0)}
        if latencies:
            stats["latency_ms"] = _percentiles_ms(latencies)
        return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m so101_bench.drivers",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of state reception per figure")
    parser.add_argument("--commands", type=int, default=200, help="commands timed for the latency")
    args = parser.parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if not os.environ.get("ROS_DOMAIN_ID"):
        from so101_testing.domain import claim_private_domain

        os.environ["ROS_DOMAIN_ID"] = str(claim_private_domain())

    ok = True
    with tempfile.TemporaryDirectory(prefix="so101_bench_drivers_") as tmp:
        for label, rate, corrupt, commands in (
            ("default 100 Hz", 100.0, 0.0, args.commands),
            ("back to back", 1000.0, 0.0, 0),
            ("back to back, 5 % corrupted replies", 1000.0, 0.05, 0),
        ):
            result = measure(args.seconds, rate, corrupt, commands, Path(tmp))
            line = f"follower states, {label}: {result['rate_hz']:.1f} Hz received"
            if "latency_ms" in result:
                lat = result["latency_ms"]
                line += f"; command -> bus latency p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms ({lat['n']} cmds)"
            print(line, flush=True)
            if rate == 1000.0:
                ok &= result["rate_hz"] >= STATE_RATE_GOAL_HZ
    print(f"state rate goal >= {STATE_RATE_GOAL_HZ:.0f} Hz at 1 Mbps: {'OK' if ok else 'BELOW GOAL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
