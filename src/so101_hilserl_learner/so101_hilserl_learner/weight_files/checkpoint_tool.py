"""Command line for checkpoints: import RoboBase snapshots and LeRobot drqv2 directories, export the project's own
learner checkpoints, inspect or repair any of them. Every output is an agent file that ``initial_weights`` of the
learner and the actor take; imports carry pick-101's semantics unless --gripper-action/--ee-target/--orientation say
otherwise. Nothing here executes code from an input file. Exit status: 0 on success, 2 on bad input (one line on
stderr saying why).

    python -m so101_hilserl_learner.weight_files.checkpoint_tool import-robobase SNAPSHOT.pt -o agent.safetensors
    python -m so101_hilserl_learner.weight_files.checkpoint_tool inspect RUN_DIR   # also import-lerobot, export, repair
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import zipfile
from pathlib import Path

from so101_contract.run_dir import LearnerDir
from so101_hilserl_core.messages import MessageFormatError
from so101_hilserl_core.policy_io import (
    POLICY_FORMAT,
    PolicyFormatError,
    parse_safetensors_header,
    policy_from_bytes,
)
from so101_hilserl_core.semantics import EE_TARGETS, GRIPPER_ACTIONS, ORIENTATIONS, PICK101_SEMANTICS
from so101_hilserl_learner.weight_files.agent_file import (
    AGENT_FORMAT,
    CheckpointImportError,
    import_learner_checkpoint,
    load_agent_weights,
    save_agent_weights,
)
from so101_hilserl_learner.weight_files.checkpoint_import import import_lerobot_with_source, import_robobase_with_source
from so101_hilserl_learner.weight_files.safe_unpickle import cfg_get, plain, safe_load_snapshot

EXIT_OK = 0
EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors are bad input too: exit 2 with one line
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _write(args: argparse.Namespace, imported: tuple, extra: dict[str, str] | None = None) -> None:
    tensors, config, training, source = imported
    out = Path(args.output)
    if out.is_dir():
        raise CheckpointImportError(f"-o {out}: is a directory; give the .safetensors file to write")
    if out.exists() and not args.force:
        raise CheckpointImportError(f"{out} exists; pass --force to replace it")
    try:
        digest = save_agent_weights(out, tensors, config, source, training, extra)
    except OSError as err:  # the message would name the temporary file beside it, not what the user gave
        raise CheckpointImportError(f"-o {out}: cannot write it ({err.strerror or err}); give another path") from None
    print(f"wrote {out} ({AGENT_FORMAT}, {len(tensors)} tensors, sha256 {digest})")
    print(f"policy_config: {config.to_json()}")
    print(f"semantics: {_semantics_line(config.semantics())}")
    if training:
        print(f"training: {json.dumps(training, sort_keys=True)}")
    print(f"source: {json.dumps(source, sort_keys=True)}")
    for key, value in sorted((extra or {}).items()):
        print(f"{key}: {value}")


def _semantics_line(semantics: dict[str, str]) -> str:
    return ", ".join(f"{name} {value}" for name, value in semantics.items())


def _semantics_args(args: argparse.Namespace) -> dict[str, str]:
    chosen = {"gripper_action": args.gripper_action, "ee_target": args.ee_target, "orientation": args.orientation}
    return {name: value for name, value in chosen.items() if value is not None}


def _export(args: argparse.Namespace) -> None:
    tensors, config, source, extra = import_learner_checkpoint(args.run_dir)
    _write(args, (tensors, config, None, source), extra)


def _print_tensors(entries: list[tuple[str, tuple, str]]) -> None:
    print(f"tensors: {len(entries)}")
    for name, shape, dtype in sorted(entries):
        print(f"  {name} {list(shape)} {dtype}")


def _inspect_safetensors(path: Path) -> int:
    with path.open("rb") as handle:
        head = handle.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        head += handle.read(min(length, 100 * 1024 * 1024))
    header, metadata = parse_safetensors_header(head)
    fmt = metadata.get("format")
    print(f"file: {path}")
    print(f"kind: safetensors, format: {fmt or '(none)'}")
    for key in sorted(metadata):
        if key != "format":
            print(f"{key}: {metadata[key]}")
    _print_tensors([(name, tuple(e.get("shape", [])), e.get("dtype", "?")) for name, e in header.items()])
    if fmt == AGENT_FORMAT:
        _, config, _ = load_agent_weights(path)
        print(f"semantics: {_semantics_line(config.semantics())}")
        print("valid: yes (complete agent: policy and critics)")
    elif fmt == POLICY_FORMAT:
        _, config = policy_from_bytes(path.read_bytes())
        print(f"semantics: {_semantics_line(config.semantics())}")
        print("valid: yes (policy)")
    return EXIT_OK


def _inspect_snapshot(path: Path) -> int:
    snapshot = safe_load_snapshot(path)  # refuses (exit 2) if the pickle names anything off the allowlist
    print(f"file: {path}")
    print("kind: torch.save archive (read with the weights-only unpickler; nothing executed)")
    for key in sorted(snapshot, key=str):
        value = snapshot[key]
        if key in ("agent", "cfg"):
            continue
        print(f"{key}: {plain(value)!r}")
    agent = snapshot.get("agent")
    if isinstance(agent, dict):
        entries = [
            (k, tuple(v.shape), str(v.dtype).replace("torch.", ""))
            if hasattr(v, "shape")
            else (k, (), type(v).__name__)
            for k, v in agent.items()
        ]
        print("agent:")
        _print_tensors(entries)
    if "cfg" in snapshot:
        cfg = plain(snapshot["cfg"])
        print(f"cfg: {json.dumps(cfg, sort_keys=True, default=repr)}")
        for dotted in ("frame_stack", "method.stddev_schedule", "replay.nstep", "replay.gamma"):
            value = cfg_get(cfg, dotted)
            if isinstance(value, (int, float, str)):
                print(f"cfg.{dotted}: {value!r}")
    try:
        _, config, _, _ = import_robobase_with_source(path)
        print(f"importable: yes, policy_config {config.to_json()}")
    except CheckpointImportError as err:
        print(f"importable: no ({err})")
    return EXIT_OK


def _inspect_run_dir(path: Path) -> int:
    """A learner run directory: what its journal holds (the buffers are rebuilt from it) and its checkpoints."""
    from so101_hilserl_learner.checkpoint import CheckpointError, load_newest_good
    from so101_hilserl_learner.journal import scan_journal
    from so101_hilserl_learner.sequencer import TransitionSequencer

    print(f"learner run directory: {path}")
    scans = scan_journal(LearnerDir(path).journal)
    size = sum(scan.path.stat().st_size for scan in scans)
    damage = [d for scan in scans for d in scan.damage]
    sequencer = TransitionSequencer()
    steps = episodes = interventions = evaluation = refused = 0
    actors: set[str] = set()
    check = _learner_check(path)
    for scan in scans:
        with open(scan.path, "rb") as handle:
            for offset, length in scan.records:
                handle.seek(offset)
                try:
                    msg = check(handle.read(length))
                except MessageFormatError as err:  # a record an older learner journaled unchecked
                    refused += 1
                    print(f"  refused record at byte {offset} of {scan.path.name}: {err}")
                    continue
                last = msg.terminated or msg.truncated
                sequencer.push(msg.actor_id, int(msg.episode_id), int(msg.step), last)
                steps += 1
                episodes += int(last)
                interventions += int(msg.intervention)
                evaluation += int(msg.evaluation)
                actors.add(msg.actor_id)
    records = sum(len(scan.records) for scan in scans)
    skipped = [d for d in damage if d.kind == "skipped"]
    torn = [d for d in damage if d.kind == "torn"]
    print(f"journal: {len(scans)} segment(s), {size / 1e6:.1f} MB, {steps} transitions in {episodes} episodes")
    print(
        f"  {records} valid records ({refused} refused by the learner's checks), {len(skipped)} skipped stretches "
        f"({sum(d.length for d in skipped)} bytes), torn tail {sum(d.length for d in torn)} bytes"
    )
    for stretch in damage:
        print(f"  {stretch}")
    if skipped or refused:
        print(f"  `checkpoint_tool repair {path}` rewrites the journal from its valid records")
    print(f"  intervention steps {interventions}, evaluation steps {evaluation}, actors {sorted(actors)}")
    print(
        f"  accepted {sequencer.accepted}, duplicates {sequencer.duplicates}, stale {sequencer.stale}, "
        f"broken segments {sequencer.broken_segments}, implausible episode ids {sequencer.implausible}"
    )
    try:  # what the learner would load (checksums, finiteness), and each newer one it would refuse
        loaded = load_newest_good(LearnerDir(path).checkpoints)
    except CheckpointError as err:  # a dangling LATEST, or none good: the learner would refuse to start
        print(f"checkpoints: {err}")
        return EXIT_OK
    if loaded is None:
        print("checkpoints: none")
    else:
        names = sorted(p.name for p in LearnerDir(path).checkpoints.glob("ckpt-*"))
        print(f"checkpoints: {names}; newest: {loaded.step} updates ({loaded.path.name}, what the learner "
              f"loads), counters {loaded.state['counters']}")  # fmt: skip
        for _, why in loaded.refused:
            print(f"  refused: {why}")
        print(f"  network: {loaded.state['policy_config']}")
    return EXIT_OK


def _repair(args: argparse.Namespace) -> int:
    """Rewrite a run dir's journal from its valid, checked records; the old one is kept as a backup."""
    from so101_hilserl_learner.journal import JournalError, repair_journal
    from so101_hilserl_learner.run_lock import RunDirBusy, RunDirLock

    run_dir = Path(args.run_dir)
    if not LearnerDir(run_dir).journal.is_dir():
        raise CheckpointImportError(f"{run_dir}: no journal/ directory; give a learner run directory")
    try:
        lock = RunDirLock(run_dir, "checkpoint_tool repair")
    except RunDirBusy as err:
        raise CheckpointImportError(str(err)) from None
    try:
        check = _learner_check(run_dir)

        def keep(payload: bytes) -> bool:
            try:
                check(payload)
            except MessageFormatError:
                return False
            return True

        kept, damage, backup = repair_journal(LearnerDir(run_dir).journal, keep=keep)
    except JournalError as err:
        raise CheckpointImportError(str(err)) from None
    finally:
        lock.release()
    if backup is None:
        print(f"{run_dir / 'journal'}: {kept} valid records, nothing to repair")
        return EXIT_OK
    for stretch in damage:
        print(f"dropped {stretch}")
    print(f"rewrote {run_dir / 'journal'} with {kept} valid records; the old journal is kept as {backup}")
    return EXIT_OK


def _learner_check(run_dir: Path):
    """bytes -> Transition with the learner's checks at the run's image size (its checkpoint's network, else the
    default): MessageFormatError for what the learner refuses."""
    from so101_hilserl_core.policy import PolicyConfig
    from so101_hilserl_learner.ingest import check_message, decode_transition, max_message_bytes

    size = PolicyConfig().image_size
    try:
        from so101_hilserl_learner.checkpoint import load_latest_checkpoint

        latest = load_latest_checkpoint(LearnerDir(run_dir).checkpoints)
        if latest is not None:
            size = PolicyConfig.from_json(latest[1]["policy_config"]).image_size
    except Exception:  # a damaged checkpoint is reported by the checkpoint part: check at the default size
        pass

    def check(raw: bytes):
        return check_message(decode_transition(raw, max_message_bytes(size)), size).msg

    return check


def _inspect(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if path.is_dir() and (LearnerDir(path).journal.is_dir() or LearnerDir(path).checkpoints.is_dir()):
        return _inspect_run_dir(path)
    if path.is_dir():
        config_path = path / "config.json"
        if not config_path.is_file():
            raise CheckpointImportError(f"{path}: a directory without config.json")
        print(f"directory: {path} (config.json type {json.loads(config_path.read_text()).get('type')!r})")
        weights = path / "model.safetensors"
        return _inspect_safetensors(weights) if weights.is_file() else EXIT_OK
    if not path.is_file():
        raise CheckpointImportError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        return _inspect_snapshot(path)
    if path.suffix in (".pt", ".pth", ".ckpt"):
        safe_load_snapshot(path)  # raises the precise "not a torch.save archive" error
    return _inspect_safetensors(path)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m so101_hilserl_learner.weight_files.checkpoint_tool",
        description="Import DrQ-v2 checkpoints into the project's safetensors agent format, or inspect checkpoints. "
        "No code from an input file is ever executed.",
        epilog="Exit status: 0 ok, 2 bad input (with a one-line error on stderr).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    robobase = commands.add_parser(
        "import-robobase",
        help="convert a RoboBase DrQ-v2 snapshot (.pt) to an agent .safetensors file",
        description="Convert a RoboBase snapshot ({N,latest,best}_snapshot.pt) to the agent format. The network "
        "sizes are inferred from the weights and cross-checked against the snapshot's cfg.",
    )
    robobase.add_argument("snapshot", help="the RoboBase snapshot .pt file")
    lerobot = commands.add_parser(
        "import-lerobot",
        help="convert a LeRobot drqv2 policy directory to an agent .safetensors file",
        description="Convert a LeRobot drqv2 policy directory (config.json + model.safetensors) to the agent format.",
    )
    lerobot.add_argument("directory", help="the directory holding config.json and model.safetensors")
    for sub in (robobase, lerobot):
        semantics = sub.add_argument_group(
            "semantics",
            "how the imported policy's action and state are to be read; default: pick-101's, as the "
            "sim checkpoints were trained",
        )
        for flag, choices in (
            ("--gripper-action", GRIPPER_ACTIONS),
            ("--ee-target", EE_TARGETS),
            ("--orientation", ORIENTATIONS),
        ):
            default = PICK101_SEMANTICS[flag[2:].replace("-", "_")]
            semantics.add_argument(flag, choices=choices, help=f"(default {default})")
    export = commands.add_parser(
        "export",
        help="turn a learner checkpoint into an agent .safetensors file (an initial_weights for a new run)",
        description="Write the newest complete learner checkpoint of RUN_DIR (checkpoints/LATEST) as an agent file, "
        "keeping its policy semantics and its exploration schedule and step. RUN_DIR may also be its checkpoints "
        "directory or one ckpt-N directory. Reads only: safe next to a running learner.",
    )
    export.add_argument("run_dir", metavar="RUN_DIR", help="a learner run directory (or checkpoints/, or ckpt-N)")
    for sub in (robobase, lerobot, export):
        sub.add_argument("-o", "--output", required=True, help="the agent .safetensors file to write")
        sub.add_argument("--force", action="store_true", help="replace the output file if it exists")
    inspect = commands.add_parser(
        "inspect",
        help="describe a checkpoint, a learner run directory (buffer journal + checkpoints) or a weights file",
        description="Describe a .safetensors file (policy, agent or foreign), a RoboBase .pt snapshot (read safely), "
        "a LeRobot policy directory, or a learner run directory (its transition journal, from which the replay "
        "buffers are rebuilt, and its checkpoints). Project files are also validated.",
    )
    inspect.add_argument(
        "file", help="a .safetensors file, a .pt snapshot, a LeRobot policy directory or a learner run_dir"
    )
    repair = commands.add_parser(
        "repair",
        help="rewrite a learner run directory's journal from its valid records (a backup of the old one is kept)",
        description="Rewrite RUN_DIR/journal keeping only whole records that pass their CRC and deserialize as a "
        "Transition (what `inspect RUN_DIR` reports as skipped, torn or not a transition is dropped). The new "
        "journal is written beside the old one, which is then kept as journal.bak-<time>. Refused while a learner "
        "(or the importer) holds the run directory.",
    )
    repair.add_argument("run_dir", metavar="RUN_DIR", help="a learner run directory")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "import-robobase":
            _write(args, import_robobase_with_source(args.snapshot, _semantics_args(args)))
        elif args.command == "import-lerobot":
            _write(args, import_lerobot_with_source(args.directory, _semantics_args(args)))
        elif args.command == "export":
            _export(args)
        elif args.command == "repair":
            return _repair(args)
        else:
            return _inspect(args)
    except (CheckpointImportError, PolicyFormatError, OSError, json.JSONDecodeError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
