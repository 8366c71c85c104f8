"""Opening rosbag2 bags with ``rosbags``, for every tool that reads them (``so101_reward.sources``,
``so101_bringup.records.importer``): each way a bag can be unreadable becomes one line naming the bag, the cause and the
fix (``BagReadError``), instead of rosbags' exception (a traceback, or a dump of a message definition it could not
parse). It lives in so101_reward because that is the lowest package that reads bags (driver <- reward <- bringup).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import yaml
from rosbags.highlevel import AnyReader
from rosbags.typesys.store import Typestore

STORAGE_SUFFIXES = (".mcap", ".db3")
SERVICE_EVENT_TYPE = re.compile(r"[A-Za-z0-9_]+/srv/[A-Za-z0-9_]+_Event\b")
MESSAGE_TYPE = re.compile(r"[A-Za-z0-9_]+/(?:msg|srv|action)/[A-Za-z0-9_]+")
NO_SERVICES_FIX = (
    "record without services (`ros2 bag record --all-topics` or a topic list: in Jazzy --all also records services) "
    "or with `--exclude-services NAME...`"
)
MAX_CAUSE_CHARS = 160


class BagReadError(ValueError):
    """A bag that cannot be read; the one-line message names the bag, the cause and the fix."""


def _first_line(text: str) -> str:
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    return line if len(line) <= MAX_CAUSE_CHARS else line[: MAX_CAUSE_CHARS - 3] + "..."


def _check_path(path: Path) -> None:
    """What can be said about a path before rosbags opens it: it exists and looks like a bag."""
    if not path.exists():
        raise BagReadError(f"bag {path} does not exist")
    if path.is_file():
        if path.name == "metadata.yaml":
            raise BagReadError(f"{path}: pass the bag folder that holds metadata.yaml, not the file itself")
        return
    if (path / "metadata.yaml").is_file():
        return
    entries = sorted(path.iterdir())
    if not entries:
        raise BagReadError(
            f"{path} is an empty folder, not a rosbag2 bag (a bag is the folder `ros2 bag record -o NAME` writes: "
            "metadata.yaml and .mcap or .db3 files)"
        )
    nested = [p.name for p in entries if (p / "metadata.yaml").is_file()]
    if nested:
        raise BagReadError(f"{path} is not a bag but holds bags: pass those instead ({', '.join(nested[:5])}...)")
    storage = [p.name for p in entries if p.suffix in STORAGE_SUFFIXES]
    if storage:
        raise BagReadError(
            f"{path} has no metadata.yaml (it holds {', '.join(storage[:3])}): rebuild it with "
            f"`ros2 bag reindex {path}`, or pass the .mcap file itself"
        )
    raise BagReadError(
        f"{path} is not a rosbag2 bag: it has no metadata.yaml (pass the folder `ros2 bag record -o NAME` wrote)"
    )


def _metadata_topics(path: Path) -> list[dict]:
    """The topic entries of a bag's metadata.yaml ({name, type, serialization_format, ...}); [] if unreadable."""
    try:
        info = yaml.safe_load((path / "metadata.yaml").read_text(encoding="utf-8"))["rosbag2_bagfile_information"]
        return [dict(entry["topic_metadata"]) for entry in info["topics_with_message_count"]]
    except Exception:  # any damage: the caller explains the bag from rosbags' error instead
        return []


def _explain(path: Path, err: BaseException) -> str:
    """One line for the bag ``path`` that rosbags failed to open with ``err``.

    Causes told apart, here and in ``_check_path``:

    * a path that is no bag: missing, an empty folder, a folder without metadata.yaml (or one holding bags), a text
      file named .mcap/.db3, a truncated recording;
    * a broken metadata.yaml (fixed by ``ros2 bag reindex``) or one listing storage files that are not there;
    * service events: Jazzy's ``ros2 bag record --all`` (or ``-a``) records every service's ``*/_service_event``
      topic, whose stored definitions (an ``SRV:`` section, or encoding ``unknown``) the pinned rosbags cannot parse,
      so no topic of that bag can be read. The fix is on the recording side: ``--all-topics`` instead of ``--all``,
      or ``--exclude-services`` with the services' names;
    * a topic recorded without its definition (MCAP schema encoding ``unknown``: the recorder could not find the
      .msg files, e.g. a workspace that was not sourced);
    * a serialization format other than CDR, an unsupported storage plugin, compression or format version.
    """
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    cause = _first_line(text).replace("; please report issue.", ".")
    topics = _metadata_topics(path) if path.is_dir() else []
    services = sorted({t.get("name", "?") for t in topics if SERVICE_EVENT_TYPE.fullmatch(str(t.get("type", "")))})
    if services or SERVICE_EVENT_TYPE.search(text):
        where = f" ({', '.join(services[:3])}{', ...' if len(services) > 3 else ''})" if services else ""
        return (
            f"bag {path} holds service events{where}, whose definitions the pinned rosbags cannot parse, so none "
            f"of its topics can be read: {NO_SERVICES_FIX}"
        )
    if "Serialization format" in text:
        formats = sorted({str(t.get("serialization_format")) for t in topics} - {"cdr"}) or [cause]
        return (
            f"bag {path} stores messages serialized as {', '.join(formats)}; only cdr (ROS 2's default) can be read: "
            "record without --serialization-format"
        )
    if isinstance(err, KeyError) and text == "unknown":
        return (
            f"bag {path} has a topic recorded without its message definition (MCAP schema encoding 'unknown': the "
            "recorder could not find the type's .msg files); source the workspace that defines every recorded type "
            "before `ros2 bag record`, or record only the topics you need"
        )
    if "no type definitions" in text:
        return f"bag {path} stores no message definitions and no default typestore was given ({cause})"
    if "hash mismatch" in text:
        return f"bag {path}: a stored message definition does not match its type hash ({cause}); re-record it"
    if "Could not parse" in text:
        found = MESSAGE_TYPE.search(text)
        what = f"of {found.group(0)} " if found else ""
        return (
            f"bag {path}: rosbags cannot parse the stored definition {what}(a type it does not support); record "
            "without that topic"
        )
    if "database files are missing" in text:
        return f"bag {path}: storage files listed in its metadata.yaml are missing ({cause}); copy the whole bag folder"
    if "Storage plugin" in text or "Compression format" in text:
        return f"bag {path}: {cause} rosbags reads mcap and sqlite3 bags; convert it with `ros2 bag convert`"
    if "version" in text and "not supported" in text:
        return f"bag {path}: {cause} It was written by a newer rosbag2 than the pinned rosbags reads"
    if any(s in text for s in ("Could not load YAML", "metadata key is missing", "Invalid bag metadata")) or (
        isinstance(err, UnicodeDecodeError)
    ):
        return (
            f"bag {path}: its metadata.yaml is broken ({cause}); rebuild it from the storage files with "
            f"`ros2 bag reindex {path}`"
        )
    if any(s in text for s in ("magic is invalid", "seems to be empty", "not a database", "Truncated", "Invalid MCAP")):
        what = f"bag {path} is" if path.is_file() else f"bag {path}: its storage file is"
        return (
            f"{what} not a readable MCAP or sqlite3 file ({cause}); a recording that was cut off can be salvaged "
            "with `mcap recover`, anything else is not a bag"
        )
    return f"bag {path}: rosbags cannot read it: {cause or type(err).__name__}"


def open_bags(bags: Sequence[Path | str], default_typestore: Typestore | None = None) -> AnyReader:
    """An opened AnyReader over ``bags`` (rosbag2 folders or single .mcap/.db3 files); BagReadError otherwise.

    ``default_typestore`` deserializes bags that store no definitions (sqlite3 bags from Humble and older); pass
    ROS 2 Jazzy's (``get_typestore(Stores.ROS2_JAZZY)``) plus any custom messages the caller reads.
    """
    paths = [Path(bag) for bag in bags]
    if not paths:
        raise BagReadError("no bag given")
    for path in paths:
        _check_path(path)
    try:
        reader = AnyReader(paths, default_typestore=default_typestore)
        reader.open()
        return reader
    except Exception as err:  # rosbags parsing user files: every failure becomes one explained line
        culprit = paths[0] if len(paths) == 1 else _failing_bag(paths, default_typestore)
        if culprit is None:
            names = ", ".join(map(str, paths))
            raise BagReadError(f"bags {names}: rosbags cannot read them together: {_first_line(err)}") from None
        raise BagReadError(_explain(culprit, err)) from None


def _failing_bag(paths: list[Path], default_typestore: Typestore | None) -> Path | None:
    """Which of several bags rosbags cannot open on its own (None if each opens alone)."""
    for path in paths:
        try:
            with AnyReader([path], default_typestore=default_typestore):
                pass
        except Exception:
            return path
    return None


def read_messages(reader: AnyReader, connections: Iterable, bags: Sequence[Path | str]) -> Iterator[tuple]:
    """``reader.messages(connections=...)`` with damage found while reading (a truncated chunk, a corrupt
    database page) raised as BagReadError naming the bags."""
    try:
        yield from reader.messages(connections=list(connections))
    except Exception as err:  # raised by rosbags reading the file (the caller's own code runs outside this frame)
        names = ", ".join(str(b) for b in bags)
        raise BagReadError(f"bag {names} is damaged: reading its messages failed ({_first_line(err)})") from None
