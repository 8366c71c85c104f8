"""pytest plugin (entry point ``pytest11``): isolates every test process on its own ROS domain, on loopback.

It also gives graph tests three fixtures: ``ros_domain`` (the claimed id), ``processes`` (a ProcessGroup whose
nodes are stopped after the test, with their logs printed if the test failed) and ``probe`` (a GraphProbe).
"""

from __future__ import annotations

import os

import pytest

from so101_testing.domain import TEST_CLAIM_ENV, isolate_ros_environment


def pytest_configure(config: pytest.Config) -> None:
    # Before any test imports rclpy: every node of this process and of its children joins the private domain.
    if TEST_CLAIM_ENV not in os.environ:
        domain = isolate_ros_environment()
        os.environ[TEST_CLAIM_ENV] = str(os.getpid())
        config.stash[_DOMAIN_KEY] = domain


_DOMAIN_KEY = pytest.StashKey[int]()


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID')} "
        f"ROS_AUTOMATIC_DISCOVERY_RANGE={os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE')}"
    )


@pytest.fixture
def ros_domain() -> int:
    return int(os.environ["ROS_DOMAIN_ID"])


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    item.stash.setdefault(_FAILED_KEY, False)
    if report.failed:
        item.stash[_FAILED_KEY] = True
    return report


_FAILED_KEY = pytest.StashKey[bool]()


@pytest.fixture
def processes(request, tmp_path):
    from so101_testing.processes import ProcessGroup

    group = ProcessGroup(tmp_path / "logs")
    yield group
    group.close()
    if request.node.stash.get(_FAILED_KEY, False):
        print(group.logs())


@pytest.fixture
def probe():
    from so101_testing.graph import GraphProbe

    with GraphProbe() as graph:
        yield graph
