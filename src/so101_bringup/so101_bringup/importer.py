"""import_bag: turns recorded sessions (rosbag2 bags with hilserl/transitions) into a learner run directory's
buffers, for offline warm starts.

Why through the journal: the learner already rebuilds its buffers at start by replaying ``run_dir/journal``
(serialized Transition messages) through TransitionIngest, the same code that handles live messages. A bag stores
exactly those serialized bytes, so the importer appends them to the journal and the learner started on that run
directory holds them: policy steps in the online buffer, intervention segments (with their stack context) in the
demonstration buffer, lost/duplicated/reordered steps rejected exactly as they would be live. No second conversion
path exists to drift from the first.

The counts it prints come from running that same ingest over the journal as the learner will see it (records
already there first, then the bag's). Stop the learner on that run directory before importing: two writers on one
journal would interleave records.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from rclpy.serialization import deserialize_message
from tqdm import tqdm

from so101_bringup.recorder import TypeDefinitionError, project_typestore
from so101_contract.state import STATE_DIM
from so101_hilserl_actor.policy import PolicyConfig
from so101_hilserl_interfaces.msg import Transition
from so101_hilserl_learner.ingest import TransitionIngest
from so101_hilserl_learner.journal import TransitionJournal, read_journal
from so101_hilserl_learner.replay import ReplayBuffer
from so101_reward.bags import BagReadError, open_bags, read_messages

TRANSITION_TYPE = "so101_hilserl_interfaces/msg/Transition"


class BagImportError(RuntimeError):
    """A bag or run directory that cannot be imported; the text says which file and what to do."""


@dataclass
class ImportResult:
    bag_transitions: int  # Transition messages read from the bag(s)
    journal_records_before: int  # records already in the run directory's journal
    accepted: int  # transitions the learner accepts from the whole journal
    dropped: int  # rejected (invalid, duplicated, out of order, broken segments)
    episodes: int
    evaluation_episodes_skipped: int
    intervention_steps: int
    online_size: int  # what the learner's online buffer will hold (before its capacity limit)
    demo_size: int  # what its demonstration buffer will hold

    def summary(self) -> str:
        return (
            f"{self.bag_transitions} transitions read from the bag; the learner will hold {self.online_size} online "
            f"and {self.demo_size} demonstration transitions ({self.intervention_steps} intervention steps) from "
            f"{self.episodes} episodes ({self.evaluation_episodes_skipped} evaluation episodes not trained on); "
            f"{self.dropped} rejected; the journal had {self.journal_records_before} records before"
        )


class TransitionBags:
    """The Transition topics of one or more bags, opened with rosbags (use as a context manager).

    The bag's stored type hash must equal this workspace's: a bag from an older Transition definition would
    otherwise be misread byte by byte.
    """

    def __init__(self, bags: list[Path], topic: str | None = None):
        self.bags = [Path(b) for b in bags]
        names = ", ".join(map(str, self.bags))
        try:
            # Jazzy's standard types and the project's messages deserialize a bag that stores no definitions.
            typestore = project_typestore()
        except TypeDefinitionError as err:
            raise BagImportError(str(err)) from None
        expected = typestore.hash_rihs01(TRANSITION_TYPE)
        try:
            self.reader = open_bags(self.bags, default_typestore=typestore)
        except BagReadError as err:
            raise BagImportError(str(err)) from None
        self.connections = [
            c for c in self.reader.connections if c.msgtype == TRANSITION_TYPE and (topic is None or c.topic == topic)
        ]
        if not self.connections:
            found = ", ".join(sorted({f"{c.topic} ({c.msgtype})" for c in self.reader.connections})) or "no topics"
            self.reader.close()
            raise BagImportError(f"{names}: no {TRANSITION_TYPE} topic to import; it holds {found}")
        for connection in self.connections:
            if connection.digest and connection.digest != expected:
                self.reader.close()
                raise BagImportError(
                    f"{connection.topic} in {names}: recorded with another Transition definition "
                    f"({connection.digest}, this workspace has {expected}); use the workspace version that recorded it"
                )
        self.count = sum(c.msgcount for c in self.connections)
        if self.count == 0:  # an empty recording imports nothing: surely not what the user meant
            self.reader.close()
            topics = ", ".join(sorted({c.topic for c in self.connections}))
            raise BagImportError(f"{names}: {topics} holds no messages (an empty recording); nothing to import")

    def __iter__(self):
        """Serialized Transition messages in time order."""
        messages = read_messages(self.reader, self.connections, self.bags)
        try:
            for _, _, raw in tqdm(messages, total=self.count, desc="transitions", unit="msg"):
                yield bytes(raw)
        except BagReadError as err:
            raise BagImportError(str(err)) from None

    def __enter__(self) -> TransitionBags:
        return self

    def __exit__(self, *exc) -> None:
        self.reader.close()


def _buffers(capacity: int, config: PolicyConfig) -> tuple[ReplayBuffer, ReplayBuffer]:
    make = lambda: ReplayBuffer.for_policy(config, max(capacity, 1), state_dim=STATE_DIM)  # noqa: E731
    return make(), make()


def import_bag(
    bags: list[Path],
    run_dir: Path,
    topic: str | None = None,
    config: PolicyConfig | None = None,
    train_on_evaluation: bool = False,
    dry_run: bool = False,
) -> ImportResult:
    """Append the bags' transitions to ``run_dir/journal`` (unless ``dry_run``) and count what the learner gets."""
    config = config or PolicyConfig()
    journal_dir = Path(run_dir) / "journal"
    existing = sum(1 for _ in read_journal(journal_dir)) if journal_dir.is_dir() else 0
    with TransitionBags(bags, topic) as source:
        online, demo = _buffers(existing + source.count, config)
        ingest = TransitionIngest(online, demo, config.image_size, config.frame_stack, train_on_evaluation)
        for raw in read_journal(journal_dir) if existing else ():  # as the learner replays it at start
            ingest.ingest(deserialize_message(raw, Transition))
        journal = None if dry_run else TransitionJournal(journal_dir)
        read = 0
        try:
            for raw in source:  # streamed: a long session is never held in memory twice
                if journal is not None:
                    journal.append(raw)
                ingest.ingest(deserialize_message(raw, Transition))
                read += 1
        finally:
            if journal is not None:
                journal.close()  # fsync'ed: the import survives a power cut once this returns
    counters = ingest.counters
    return ImportResult(
        bag_transitions=read,
        journal_records_before=existing,
        accepted=counters.accepted,
        dropped=ingest.dropped,
        episodes=counters.episodes,
        evaluation_episodes_skipped=counters.evaluation_episodes_skipped,
        intervention_steps=counters.intervention_steps,
        online_size=len(online),
        demo_size=len(demo),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m so101_bringup.importer",
        description="Import recorded sessions (rosbag2 bags with hilserl/transitions, from the recorder or "
        "`ros2 bag record`) into a learner run directory: the transitions are appended to its journal, and the "
        "learner started with run_dir:=RUN_DIR loads them into its online and demonstration buffers. "
        "Stop the learner of that run directory first. Record with `ros2 bag record --all-topics` or a topic list: "
        "in Jazzy --all also records services, whose definitions the bag reader cannot parse.",
    )
    parser.add_argument("bags", nargs="+", type=Path, help="bag directories (or .mcap/.db3 bags) to import")
    parser.add_argument("--run-dir", required=True, type=Path, help="learner run directory (created if missing)")
    parser.add_argument("--topic", help="transition topic to import (default: every Transition topic in the bag)")
    parser.add_argument("--network", default="", help="the learner's network parameter (JSON PolicyConfig overrides)")
    parser.add_argument("--train-on-evaluation", action="store_true", help="as the learner parameter of that name")
    parser.add_argument("--dry-run", action="store_true", help="only count; leave the run directory untouched")
    args = parser.parse_args(argv)
    try:
        config = replace(PolicyConfig(), **(json.loads(args.network) if args.network else {}))
    except (TypeError, ValueError) as err:
        parser.error(f"--network {args.network!r}: {err}")
    try:
        result = import_bag(args.bags, args.run_dir, args.topic, config, args.train_on_evaluation, args.dry_run)
    except BagImportError as err:
        print(f"import_bag: {err}", file=sys.stderr)
        return 2
    print(("dry run: " if args.dry_run else f"imported into {args.run_dir / 'journal'}: ") + result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
