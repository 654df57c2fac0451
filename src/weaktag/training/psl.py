"""PSL's data step: cut the training clips into chunks and label each chunk with a teacher checkpoint.

The teacher sees each chunk alone (as PSL's machine annotator does) and its clip probabilities
become the chunk's targets (:class:`~weaktag.supervision.psl.PseudoStrongLabelStudent`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..checkpoint import load_checkpoint
from ..data import FeatureSet
from ..errors import CheckpointError, UsageError
from ..models import WeakTagNet
from .predict import predict_features


def chunk_segments_for(chunk_seconds: float, segment_seconds: float, clip_segments: int) -> int:
    """Whole segments per chunk: ``chunk_seconds`` rounded to the grid, at least 1, at most the clip."""
    return max(1, min(clip_segments, int(round(chunk_seconds / segment_seconds))))


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def teacher_labelled_chunks(train: FeatureSet, teacher_path: str | Path, chunk_seconds: float,
                            student: WeakTagNet) -> FeatureSet:
    """``train`` cut into chunks of about ``chunk_seconds``, each with the teacher's clip probabilities.

    Raises ValueError (naming the checkpoint) when the teacher cannot label these features: other
    classes, another front end or time grid, or (for a frozen backbone's precomputed outputs) another
    backbone than the student's.
    """
    path = Path(teacher_path)
    if not path.exists():
        raise CheckpointError(f"{path}: PSL teacher checkpoint not found (scheme.teacher)")
    teacher = load_checkpoint(path)
    if list(teacher.classes) != list(train.classes):
        raise CheckpointError(f"{path}: the PSL teacher knows other classes ({len(teacher.classes)}) than the training "
                         f"labels ({len(train.classes)})")
    if teacher.model.grid.frontend != train.grid.frontend or teacher.model.grid.time_stride != train.grid.time_stride:
        raise CheckpointError(f"{path}: the PSL teacher's front end or time grid differs from the student's; train both "
                         "on the same backbone family")
    if train.level == "backbone" and not _same_weights(teacher.model.backbone, student.backbone):
        raise UsageError(f"{path}: these features are the student's frozen backbone outputs, and the PSL teacher "
                         "has another backbone; set train.cache_frozen_features=false")
    chunks = train.chunks(chunk_segments_for(chunk_seconds, train.grid.segment_seconds, train.num_segments))
    probs = predict_features(teacher.model, chunks).clip_probs
    return replace(chunks, teacher=torch.from_numpy(probs).float())
