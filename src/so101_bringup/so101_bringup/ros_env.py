"""The environment every process the project starts runs in: its DDS domain and discovery range, decided once.

DDS discovery by multicast leaves the machine; the project keeps it on loopback unless the user set
ROS_AUTOMATIC_DISCOVERY_RANGE (e.g. SUBNET for an actor PC and a GPU learner on one robot network).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# Fast DDS derives UDP ports from the domain id; above 101 they can collide with Linux ephemeral ports.
MAX_DOMAIN_ID = 101
DISCOVERY_RANGES = ("LOCALHOST", "SUBNET", "OFF", "SYSTEM_DEFAULT")


class RosEnvironmentError(ValueError):
    pass


def node_environment(base: Mapping[str, str] | None = None, domain_id: int | None = None) -> dict[str, str]:
    """A copy of ``base`` (default: this process's environment) ready for a node process."""
    env = dict(os.environ if base is None else base)
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    raw_domain = env.get("ROS_DOMAIN_ID", "0")
    try:
        domain = int(raw_domain)
    except ValueError:
        raise RosEnvironmentError(f"ROS_DOMAIN_ID={raw_domain!r} is not an integer; use 0..{MAX_DOMAIN_ID}") from None
    if not 0 <= domain <= MAX_DOMAIN_ID:
        raise RosEnvironmentError(f"ROS_DOMAIN_ID={domain} is outside 0..{MAX_DOMAIN_ID} (Fast DDS port range)")
    discovery = env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if discovery not in DISCOVERY_RANGES:
        raise RosEnvironmentError(
            f"ROS_AUTOMATIC_DISCOVERY_RANGE={discovery!r} is not one of {', '.join(DISCOVERY_RANGES)}"
        )
    env.setdefault("MUJOCO_GL", "egl")  # headless rendering; the simulation has no screen
    env["PYTHONUNBUFFERED"] = "1"  # node logs reach the run directory as they happen
    return env
