"""The message types of a bag: ROS 2 Jazzy's standard types plus the project's own, registered in a rosbags typestore
from the installed ``.msg`` files (with their full definitions and type hashes, as ``ros2 bag`` stores them). The
recorder writes with it, the importer and the report read with it."""

from __future__ import annotations

import importlib
from pathlib import Path

from rosbags.interfaces import Nodetype
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore


class TypeDefinitionError(LookupError):
    pass


def _share_msg_file(msgtype: str) -> Path:
    """``pkg/msg/Name`` -> the installed ``share/pkg/msg/Name.msg`` (ament index), or the source tree's copy."""
    package, _, name = msgtype.split("/")
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    candidates = []
    try:
        candidates.append(Path(get_package_share_directory(package)) / "msg" / f"{name}.msg")
    except PackageNotFoundError:
        pass
    candidates.append(Path(__file__).resolve().parents[2] / package / "msg" / f"{name}.msg")  # source tree (src/)
    for path in candidates:
        if path.is_file():
            return path
    raise TypeDefinitionError(
        f"no message definition for {msgtype}: looked in {', '.join(map(str, candidates))}; "
        "source the workspace (install/setup.bash) that built its package"
    )


def message_class(msgtype: str) -> type:
    """``pkg/msg/Name`` -> the generated Python class (what rosidl_runtime_py's get_message does)."""
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def _referenced_types(typestore: Typestore, msgtype: str) -> set[str]:
    def names(node) -> set[str]:
        kind, detail = node
        if kind == Nodetype.NAME:
            return {detail}
        if kind in (Nodetype.ARRAY, Nodetype.SEQUENCE):
            return names(detail[0])
        return set()

    _, fields = typestore.fielddefs[msgtype]
    return set().union(*(names(node) for _, node in fields)) if fields else set()


def ensure_type(typestore: Typestore, msgtype: str) -> None:
    """Register ``msgtype`` (and what it references) in ``typestore`` from the installed ``.msg`` files if missing."""
    pending, seen = [msgtype], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in typestore.fielddefs:
            typestore.register(get_types_from_msg(_share_msg_file(name).read_text(), name))
        pending.extend(_referenced_types(typestore, name))


def project_typestore(extra_types: tuple[str, ...] = ()) -> Typestore:
    """ROS 2 Jazzy's standard types plus the project's messages (so101_hilserl_interfaces) and ``extra_types``."""
    typestore = get_typestore(Stores.ROS2_JAZZY)
    for name in ("Transition", "EpisodeSummary", "LearnerStats", "PolicyWeights", "RewardSignal", "Observation"):
        ensure_type(typestore, f"so101_hilserl_interfaces/msg/{name}")
    for msgtype in extra_types:
        ensure_type(typestore, msgtype)
    return typestore
