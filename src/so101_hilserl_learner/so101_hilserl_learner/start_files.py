"""The learner's start-up files: ``run_dir`` and ``initial_weights`` (checked before anything is built), and the
journal against the checkpoint it is resumed with (checked once the journal is replayed).

Each problem is a ParameterError naming the parameter, its value, the cause and the fix, which node_main turns into
one line and exit code 2 (``parameter initial_weights='x.safetensors': no such file; ...``), never a traceback from
deep inside mkdir or the safetensors reader.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from so101_contract.settings import ParameterError
from so101_hilserl_core import exploration
from so101_hilserl_core.policy import PolicyConfig
from so101_hilserl_core.policy_io import config_differences
from so101_hilserl_learner.weight_files.agent_file import CheckpointImportError, load_agent_weights

AGENT_FILE_FIX = (
    "give an agent .safetensors file (python -m so101_hilserl_learner.weight_files.checkpoint_tool import-robobase)"
)


def check_run_dir(run_dir: Path) -> None:
    """``run_dir`` is a writable directory, created (with its parents) when missing."""
    where = f"parameter run_dir={str(run_dir)!r}"
    if run_dir.exists() and not run_dir.is_dir():
        raise ParameterError(f"{where}: is a file, not a directory; give the run's directory (created if missing)")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        cause = f"{err.strerror}: {err.filename}" if err.strerror and err.filename else str(err)
        raise ParameterError(f"{where}: cannot create it ({cause}); give a writable directory") from None
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise ParameterError(f"{where}: the directory is not writable; give a writable directory")


def load_initial_weights(
    value: str, network: PolicyConfig
) -> tuple[dict[str, torch.Tensor], PolicyConfig, str | None, int]:
    """(tensors, the file's config, carried schedule or None, carried environment steps) of the agent file ``value``
    names, fully validated (agent_file), whose network sizes must be ``network``'s."""
    where = f"parameter initial_weights={value!r}"
    path = Path(value)
    if not path.exists():
        raise ParameterError(f"{where}: no such file; {AGENT_FILE_FIX}, or '' to start from scratch")
    if not path.is_file():
        raise ParameterError(f"{where}: not a file; {AGENT_FILE_FIX}")
    try:
        tensors, config, metadata = load_agent_weights(path)
        schedule, steps = exploration.from_metadata(metadata, "the file")
    except CheckpointImportError as err:
        cause = str(err).removeprefix(f"{path}: ")
        raise ParameterError(f"{where}: {cause}; {AGENT_FILE_FIX}") from None
    except ValueError as err:  # the exploration metadata entry
        raise ParameterError(f"{where}: {err}") from None
    except OSError as err:
        raise ParameterError(f"{where}: cannot read it ({err.strerror or err})") from None
    if differences := config_differences(config, network):
        raise ParameterError(
            f"{where}: its network differs from the configured one ({'; '.join(differences)}); set the network "
            "parameter to match, or give other weights"
        )
    return tensors, config, schedule, steps


SHORT_JOURNAL_PARAMETER = "accept_short_journal"


def check_journal_covers(
    run_dir: Path, replayed: int, checkpoint: str, counted: int | None, accept_short: bool
) -> str | None:
    """A journal that yields fewer training transitions (``replayed``) than its ``checkpoint`` counted
    (``counted``; None for a checkpoint that does not say) lost data: ParameterError naming both counts and the
    fix, unless ``accept_short`` (then the warning to log)."""
    if counted is None or replayed >= counted:
        return None
    what = (
        f"the journal {run_dir / 'journal'} yields {replayed} training transitions, fewer than the {counted} its "
        f"checkpoint {checkpoint} counts (emptied, truncated or replaced)"
    )
    if accept_short:
        return f"{what}; starting with the {replayed} it holds ({SHORT_JOURNAL_PARAMETER}: true)"
    raise ParameterError(
        f"parameter run_dir={str(run_dir)!r}: {what}; restore the journal (a journal.bak-* beside it, a backup), or "
        f"set {SHORT_JOURNAL_PARAMETER}:=true to start with what it holds"
    )
