"""Leave-one-fold-out cross-validation: the folds of a labelled set, each fold's data, and single-label reporting.

``weaktag compare --folds`` reads ``data.train``, a labelled set whose clips carry folds (ESC-50's
``esc50.csv``, UrbanSound8K's ``UrbanSound8K.csv``, a table with a ``fold`` column, ESC-10's folder). Trial
``i`` tests on fold ``i`` and trains on the other folds, holding ``data.validation_fraction`` of them out
for validation, as a single run does. Each fold's training and test clips are written as manifests
under ``<out_dir>/folds/<fold>/``, so each trial is an ordinary one (resumable, fingerprinted by its data).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..config import ExperimentConfig
from ..errors import DataError, UsageError
from ..labels import Manifest, read_labels
from .plots import plot_confusion_matrix
from .trials import TrialRecord


@dataclass(frozen=True)
class FoldSplit:
    """One fold held out: its name, and the manifests of its training (the other folds) and test clips."""

    fold: str
    train: Path
    test: Path


def read_folded_set(config: ExperimentConfig) -> Manifest:
    """``config.data.train`` with every clip's fold; a clip without one is an error naming where it was read."""
    d = config.data
    if d.test or d.validation:
        raise UsageError("--folds makes each fold the test set in turn, with validation held out of the other folds: "
                         "leave data.test and data.validation unset")
    if not d.validation_fraction > 0:
        raise UsageError("--folds holds validation clips out of each trial's training folds: set "
                         "data.validation_fraction (e.g. 0.2)")
    if not d.train:
        raise UsageError("--folds needs data.train: a labelled set with folds (esc50.csv, UrbanSound8K.csv, ...)")
    manifest = read_labels(d.train, audio_dir=d.audio_dir_for("train"), classes=list(d.classes) or None,
                           classes_from="data.classes", class_labels_indices=d.class_labels_indices)
    unfolded = [c for c in manifest if c.fold is None]
    if unfolded:
        where = unfolded[0].source or d.train
        raise DataError(f"{where}: clip {unfolded[0].clip_id!r} has no fold ({len(unfolded)} of {len(manifest)} "
                        "clips lack one); --folds needs a fold for every clip (a 'fold' column in a table)")
    if any(c.packed is not None for c in manifest):
        raise DataError(f"{d.train}: --folds reads audio files, not a pack")
    return manifest


def fold_order(folds: Sequence[str]) -> list[str]:
    """Distinct folds, numerically when every one is a number ("2" before "10")."""
    distinct = sorted(set(folds))
    return sorted(distinct, key=int) if all(f.isdigit() for f in distinct) else distinct


def write_fold_splits(manifest: Manifest, out_dir: Path) -> list[FoldSplit]:
    """Per fold, ``folds/<fold>/train.jsonl`` (the other folds) and ``test.jsonl`` (its clips), audio paths
    absolute; at least two folds."""
    folds = fold_order([c.fold for c in manifest if c.fold is not None])
    if len(folds) < 2:
        raise DataError(f"--folds needs at least two folds; the labels have {folds or 'none'}")
    clips = [dataclasses.replace(c, audio_path=None if c.audio_path is None else c.audio_path.resolve())
             for c in manifest]
    splits = []
    for fold in folds:
        folder = out_dir / "folds" / fold
        folder.mkdir(parents=True, exist_ok=True)
        Manifest([c for c in clips if c.fold != fold], list(manifest.classes)).to_jsonl(folder / "train.jsonl")
        Manifest([c for c in clips if c.fold == fold], list(manifest.classes)).to_jsonl(folder / "test.jsonl")
        splits.append(FoldSplit(fold, folder / "train.jsonl", folder / "test.jsonl"))
    return splits


def fold_config(config: ExperimentConfig, split: FoldSplit, classes: Sequence[str]) -> ExperimentConfig:
    """``config`` training on ``split``'s training folds and testing on its fold (every fold, every class)."""
    c = copy.deepcopy(config)
    c.data = dataclasses.replace(c.data, train=str(split.train), test=str(split.test), validation=None,
                                 audio_dir=None, train_audio_dir=None, validation_audio_dir=None,
                                 test_audio_dir=None, classes=list(classes), class_labels_indices=None)
    return c


def draw_confusion_matrices(out_dir: Path, trials: Mapping[str, Sequence[TrialRecord]], classes: Sequence[str],
                            add_file: Callable[[str, Path, str], None]) -> dict[str, dict[str, Any]] | None:
    """Single-label test sets: each arm's confusion matrix summed over its trials (with folds: every clip once),
    drawn as ``confusion_<arm>.png``; None when no trial has one."""
    found = {}
    for arm, records in trials.items():
        matrices = [np.asarray(t.confusion) for t in records if t.confusion is not None]
        if not matrices:
            continue
        counts = np.sum(matrices, axis=0)
        accuracy = float(np.trace(counts) / counts.sum())
        png = out_dir / f"confusion_{arm.replace(':', '_')}.png"
        plot_confusion_matrix(counts, classes, png, f"{arm}: the test clips of {len(matrices)} trial(s), "
                              f"top-1 accuracy {accuracy:.3f}")
        add_file(png.name, png, f"confusion matrix of {arm}, summed over its trials' test clips")
        found[arm] = {"figure": png.name, "pooled_accuracy": accuracy, "counts": counts.tolist()}
    return found or None
