"""import_bag: recorded sessions (rosbag2 bags with hilserl/transitions) into a learner run directory, for warm starts.

A bag holds the serialized Transition messages the learner journals, so the importer appends them to the run's
journal and the learner replays them through the same ingest as live messages (no second conversion path). No step
is stored twice; a damaged message is left out and named (bag, topic, index); a step a broken import missed is
refilled in place. A bag already imported, or a run directory in use, is refused."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path

from tqdm import tqdm

from so101_bringup.records.bag_types import TypeDefinitionError, project_typestore
from so101_bringup.records.refill import Key, key_of, refilled
from so101_contract.files import atomic_write_text
from so101_contract.run_dir import LearnerDir
from so101_contract.state import STATE_DIM
from so101_hilserl_core.messages import MessageFormatError
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_learner.ingest import TransitionIngest, decode_transition
from so101_hilserl_learner.journal import TransitionJournal, read_journal, rewrite_journal
from so101_hilserl_learner.replay import ReplayBuffer
from so101_hilserl_learner.run_lock import RunDirBusy, RunDirLock
from so101_reward.bags import BagReadError, open_bags, read_messages

TRANSITION_TYPE = "so101_hilserl_interfaces/msg/Transition"
IMPORTED_FILE = "imported_bags.json"  # in the run dir: content hash -> what was imported (bags, datasets), when


class BagImportError(RuntimeError):
    """A bag or run directory that cannot be imported; the text says which file and what to do."""


@dataclass
class ImportResult:
    bag_transitions: int  # Transition messages read from the bag(s) or dataset
    journal_records_before: int  # records already in the run directory's journal
    accepted: int  # transitions the learner accepts from the whole journal
    dropped: int  # rejected (invalid, duplicated, out of order, broken segments)
    invalid: int  # of those, messages that failed their checks (left out of the journal)
    appended: int  # records appended to the journal (0 in a dry run)
    episodes: int
    evaluation_episodes_skipped: int
    intervention_steps: int
    online_size: int  # what the learner's online buffer will hold (before its capacity limit)
    demo_size: int  # what its demonstration buffer will hold
    refilled: int = 0  # steps the journal lacked inside its stream, inserted where they belong
    damage: list[str] = field(default_factory=list)  # one line per message left out: bag, topic, index, why

    def summary(self) -> str:
        return (
            f"{self.bag_transitions} transitions read; the learner will hold {self.online_size} online "
            f"and {self.demo_size} demonstration transitions ({self.intervention_steps} intervention steps) from "
            f"{self.episodes} episodes ({self.evaluation_episodes_skipped} evaluation episodes not trained on); "
            f"{self.dropped} rejected ({self.invalid} invalid); {self.appended} records appended to a journal of "
            f"{self.journal_records_before}"
            + (f", {self.refilled} inserted where it lacked them" if self.refilled else "")
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
        """(where, serialized Transition) in time order; ``where``: the bag, the topic and the message's index on
        that topic in that bag (from 0)."""
        messages = read_messages(self.reader, self.connections, self.bags)
        counts: dict[tuple[str, str], int] = {}
        try:
            for connection, _, raw in tqdm(messages, total=self.count, desc="transitions", unit="msg"):
                bag = str(getattr(connection.owner, "path", ", ".join(map(str, self.bags))))
                index = counts[bag, connection.topic] = counts.get((bag, connection.topic), -1) + 1
                yield f"{bag}: {connection.topic} message {index}", bytes(raw)
        except BagReadError as err:
            raise BagImportError(str(err)) from None

    def digests(self) -> list[tuple[str, str]]:
        """(name, content hash) of each bag: what the run directory remembers as imported."""
        return [(str(bag), bag_hash(bag)) for bag in self.bags]

    def __enter__(self) -> TransitionBags:
        return self

    def __exit__(self, *exc) -> None:
        self.reader.close()


def _buffers(capacity: int, config: PolicyConfig) -> tuple[ReplayBuffer, ReplayBuffer]:
    make = lambda: ReplayBuffer.for_policy(config, max(capacity, 1), state_dim=STATE_DIM)  # noqa: E731
    return make(), make()


def bag_hash(bag: Path) -> str:
    """SHA-256 of a bag's data (its .mcap/.db3 files in name order, or the file itself): the same recording under
    another name or path has the same hash; metadata.yaml is left out (a reindex rewrites it)."""
    bag = Path(bag)
    files = sorted(f for f in bag.iterdir() if f.suffix in (".mcap", ".db3")) if bag.is_dir() else [bag]
    digest = hashlib.sha256()
    for path in files:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _imported(run_dir: Path) -> dict:
    path = Path(run_dir) / IMPORTED_FILE
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise BagImportError(
            f"{path}: unreadable ({err}); it lists the bags imported already, fix or remove it"
        ) from None
    if not isinstance(record, dict):
        raise BagImportError(f"{path}: not a JSON object; it lists the bags imported already, fix or remove it")
    return record


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
    run_dir = Path(run_dir)
    with TransitionBags(bags, topic) as source:  # a bag that cannot be read is refused before the run dir is touched
        lock = None
        if not dry_run:
            try:  # one writer per run dir: a running learner holds this lock
                lock = RunDirLock(run_dir, "the importer")
            except (RunDirBusy, OSError) as err:
                raise BagImportError(str(err)) from None
        try:
            return import_locked(source, run_dir, config, train_on_evaluation, dry_run)
        finally:
            if lock is not None:
                lock.release()


def import_locked(source, run_dir: Path, config: PolicyConfig, train_on_evaluation, dry_run):
    """Append ``source``'s serialized transitions to the locked run directory's journal (see ``import_bag``).
    ``source``: ``digests()`` -> [(name, content hash)], ``count`` (an upper bound) and iteration over (where, raw),
    repeatable: a bag (TransitionBags) or a LeRobot dataset (so101_bringup.lerobot_datasets.import_dataset)."""
    imported = _imported(run_dir)
    hashes = {}
    for name, digest in source.digests():
        hashes[name] = digest
        if digest in imported:
            was = imported[digest]
            what = was.get("source", was.get("bag"))  # "bag": what imports before datasets wrote
            raise BagImportError(
                f"{name}: already imported into {run_dir} ({what}, {was.get('imported_at')}, sha256 "
                f"{digest[:12]}); importing it again would add nothing"
            )
    journal_dir = LearnerDir(run_dir).journal
    existing = [key_of(raw) for raw in read_journal(journal_dir)] if journal_dir.is_dir() else []
    keys: set[Key] = {key for key in existing if key is not None}
    online, demo = _buffers(len(existing) + source.count, config)
    ingest = TransitionIngest(online, demo, config.image_size, config.frame_stack, train_on_evaluation)
    for raw in read_journal(journal_dir) if existing else ():  # as the learner replays it at start
        ingest.receive(raw)
    journal = None if dry_run else TransitionJournal(journal_dir)
    before = journal.records if journal is not None else len(existing)
    order = list(existing)  # the key of each journal record, in journal order (None: not a Transition)
    taken: list[int] = []  # which bag messages were (or, in a dry run, would be) appended
    fills: list[tuple[Key, bytes]] = []  # steps the journal lacks inside its stream
    damage: list[str] = []
    read = 0
    try:
        for where, raw in source:  # streamed: a long session is never held in memory twice
            read += 1
            try:
                item = ingest.check(decode_transition(raw, ingest.max_message_bytes))
            except MessageFormatError as err:  # left out: the ingest loses only the transitions that need it
                ingest.reject(str(err))
                damage.append(f"{where}: {err}; left out (a clean copy of the recording imported later fills it in)")
                continue
            key = (item.msg.actor_id, int(item.msg.episode_id), int(item.msg.step))
            if key in keys:  # never stored twice
                continue
            keys.add(key)
            if ingest.is_copy(item):  # the stream went past it: a hole of the journal, filled below
                fills.append((key, raw))
                continue
            if journal is not None:
                journal.append(raw)
            order.append(key)
            taken.append(read - 1)
            ingest.ingest(item)
    finally:
        if journal is not None:
            journal.close()  # fsync'ed: the import survives a power cut once this returns
    if fills:  # the learner replays the journal in order: each fill goes where its actor sent it
        records = read_journal(journal_dir)
        if journal is None:  # a dry run: what would have been appended, read from the bag again
            wanted = set(taken)
            records = chain(records, (raw for index, (_, raw) in enumerate(source) if index in wanted))
        merged = refilled(zip(order, records, strict=True), fills)
        if journal is not None:
            rewrite_journal(journal_dir, merged)
            merged = read_journal(journal_dir)
        online, demo = _buffers(len(order) + len(fills), config)
        ingest = TransitionIngest(online, demo, config.image_size, config.frame_stack, train_on_evaluation)
        for raw in merged:  # the counts of the journal as the learner will replay it
            ingest.receive(raw)
        ingest.counters.invalid += len(damage)
    if journal is not None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        for name, digest in hashes.items():
            imported[digest] = {"source": name, "imported_at": stamp, "transitions": read}
        atomic_write_text(run_dir / IMPORTED_FILE, json.dumps(imported, indent=1, sort_keys=True) + "\n")
    counters = ingest.counters
    return ImportResult(
        bag_transitions=read,
        journal_records_before=len(existing),
        accepted=counters.accepted,
        dropped=ingest.dropped,
        invalid=counters.invalid,
        appended=journal.records - before if journal is not None else 0,
        episodes=counters.episodes,
        evaluation_episodes_skipped=counters.evaluation_episodes_skipped,
        intervention_steps=counters.intervention_steps,
        online_size=len(online),
        demo_size=len(demo),
        refilled=len(fills),
        damage=damage,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m so101_bringup.records.importer",
        description="Import recorded sessions (rosbag2 bags with hilserl/transitions, from the recorder or "
        "`ros2 bag record`) into a learner run directory: the transitions are appended to its journal, and the "
        "learner started with run_dir:=RUN_DIR loads them into its online and demonstration buffers. "
        "Refused while a learner runs on that run directory, and for a bag imported there already. "
        "Record with `ros2 bag record --all-topics` or a topic list: "
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
    for line in result.damage:
        print(f"import_bag: {line}", file=sys.stderr)
    print(("dry run: " if args.dry_run else f"imported into {args.run_dir / 'journal'}: ") + result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
