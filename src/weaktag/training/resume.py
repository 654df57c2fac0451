"""What a run leaves in its output_dir, and continuing a stopped run from there.

A run refuses to train over an earlier run's outputs unless resuming it or told to overwrite them;
a resumed run continues from ``checkpoints/last.ckpt`` only when that file was written by a run
with the same settings.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ..card import CARD_FILE
from ..config import DEFAULT_SCHEME, ExperimentConfig, TrainSection, from_flat_scheme
from ..errors import CheckpointError, UsageError
from ..models.transfer import load_weights_file
from ..stopping import Stopped

#: what a run writes into its output_dir: what ``overwrite`` clears, and nothing else there
RUN_OUTPUTS = ("model.pt", "summary.json", CARD_FILE, "diagnostics.json", "checkpoints", "logs")


def stopped_run(exc: BaseException, output_dir: str | Path) -> Stopped:
    """The stop ``exc`` (Ctrl-C, SIGTERM) of a run into ``output_dir``, saying how to continue it."""
    name = Stopped.of(exc).signal_name
    last = Path(output_dir) / "checkpoints" / "last.ckpt"
    if last.is_file():
        return Stopped.of(exc, f"stopped by {name}; the last checkpoint is {last} (saved after every epoch): run the "
                          "same command with --resume to continue")
    return Stopped.of(exc, f"stopped by {name} before the first epoch ended (nothing to resume): run the same command "
                      "again")


def resumable_settings(config: ExperimentConfig) -> dict[str, Any]:
    """What must match for a run to be resumed: every section but ``train``, and the train fields
    :meth:`~weaktag.config.TrainSection.resume_must_match` names."""
    values = config.to_dict()
    values.pop("output_dir", None)
    values["train"] = {k: values["train"][k] for k in TrainSection.resume_must_match()}
    return values


def resumable_checkpoint(config: ExperimentConfig) -> Path:
    """The checkpoint ``train(config, resume=True)`` continues from; ValueError when there is none or it was
    written by a run with different settings."""
    path = Path(config.output_dir) / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise UsageError(f"{path}: no checkpoint to resume from (a run saves one after each epoch)")
    # tensors and plain values only, as every load: a crafted last.ckpt never runs code (ValueError in one
    # line for that, or for a file cut short by the kill)
    saved = load_weights_file(path, "a training checkpoint to resume from")
    if not isinstance(saved, dict) or "state_dict" not in saved:
        raise CheckpointError(f"not a training checkpoint to resume from: {path} (not a Lightning checkpoint)")
    finished = int(saved.get("epoch", -1)) + 1  # Lightning's 0-based epoch of the checkpoint
    if finished > config.train.max_epochs:
        raise UsageError(f"{path}: the run finished {finished} epochs already; resume with train.max_epochs of at "
                         f"least {finished}")
    written = (saved.get("weaktag") or {}).get("experiment")
    if isinstance(written, dict) and isinstance(written.get("scheme"), dict):  # also the old flat scheme section
        scheme = written["scheme"]
        written = {**written, "scheme": from_flat_scheme(scheme, scheme.get("name", DEFAULT_SCHEME))}
    if written is not None and written != resumable_settings(config):
        keys = _differing_keys(written, resumable_settings(config))
        raise UsageError(f"{path}: written by a run with other settings ({', '.join(keys)}); resume with the "
                         "same config, or train into another output_dir")
    return path


def _differing_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key), b.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            keys += _differing_keys(left, right, f"{prefix}{key}.")
        elif left != right:
            keys.append(f"{prefix}{key}")
    return keys


def earlier_run_outputs(output_dir: str | Path) -> list[str]:
    """What an earlier run left in ``output_dir`` (its model.pt, summary.json, epoch checkpoints); a
    folder without any is free to train into, whatever else it holds."""
    out = Path(output_dir)
    found = [name for name in ("model.pt", "summary.json") if (out / name).exists()]
    if any((out / "checkpoints").glob("*.ckpt")):
        found.append("checkpoints/")
    return found


def clear_output_dir(config: ExperimentConfig, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse to train over an earlier run's outputs unless resuming it or ``overwrite`` (which removes
    :data:`RUN_OUTPUTS`, never other files)."""
    out = Path(config.output_dir)
    if resume and overwrite:
        raise UsageError("--resume continues the run in output_dir and --overwrite replaces it: give one of them")
    found = [] if resume else earlier_run_outputs(out)
    if found and not overwrite:
        raise UsageError(f"{out}: holds an earlier run ({', '.join(found)}); continue it with --resume, replace "
                         "it with --overwrite, or set another output_dir")
    if found:
        for name in RUN_OUTPUTS:
            path = out / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
