"""One ROS domain, one user: runs (the runner, the benchmarks) and test processes on one machine never share DDS.

A domain is claimed by holding an exclusive ``flock`` on a lock file named after it for the life of the process;
the kernel drops the lock when the process dies, so a crashed run never leaks a domain. A test process claims a
free one (``isolate_ros_environment``); a run claims the one it was given (``claim_domain``), so a test never picks
the domain of a run in progress and two runs on one domain are refused instead of training on each other's data.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

# Fast DDS maps domain d to UDP ports 7400 + 250 d + ...; ids above 101 can collide with ephemeral ports on Linux.
# 0 is everybody's default, so tests never use it.
DOMAIN_RANGE = range(20, 100)
LOCK_DIR = Path(tempfile.gettempdir()) / "so101-ros-domains"

_held: dict[int, int] = {}  # domain id -> open lock fd, kept open for the life of the process


def claim_private_domain(candidates: range = DOMAIN_RANGE) -> int:
    """Claim a ROS domain id that no other process on this machine holds, and keep it until exit."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    start = os.getpid() % len(candidates)  # spread concurrent claimants so they rarely contend
    for offset in range(len(candidates)):
        domain = candidates[(start + offset) % len(candidates)]
        if domain in _held:
            continue
        fd = os.open(LOCK_DIR / f"{domain}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        os.set_inheritable(fd, False)
        _held[domain] = fd
        return domain
    raise RuntimeError(
        f"all ROS domain ids {candidates.start}..{candidates.stop - 1} are held by other processes "
        f"(lock files in {LOCK_DIR}); stop other test runs or free stale ones"
    )


TEST_CLAIM_ENV = "SO101_TEST_DOMAIN_CLAIMED"  # set in a test process that holds its domain for its children


def claim_domain(domain: int) -> bool:
    """Claim ``domain`` for the life of this process; False when another process holds it. A process started by a
    test that holds its domain (``$SO101_TEST_DOMAIN_CLAIMED``) uses that claim."""
    if os.environ.get(TEST_CLAIM_ENV) or domain in _held:
        return True
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK_DIR / f"{domain}.lock", os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    os.set_inheritable(fd, False)
    _held[domain] = fd
    return True


def isolate_ros_environment(environ: dict | None = None) -> int:
    """Put this process (and every child it starts) on a private domain with loopback-only discovery."""
    environ = os.environ if environ is None else environ
    domain = claim_private_domain()
    environ["ROS_DOMAIN_ID"] = str(domain)
    environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    environ.pop("ROS_STATIC_PEERS", None)
    return domain
