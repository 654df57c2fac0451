"""PSL's data step: cut the training clips into chunks and label each chunk with a teacher checkpoint.

The teacher sees each chunk alone (as PSL's machine annotator does) and its clip probabilities
become the chunk's targets (:class:`~weaktag.supervision.psl.PseudoStrongLabelStudent`); for
distillation (:class:`~weaktag.supervision.distill.DistilledStudent`) also its segment scores, on the
student's time grid.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoint import load_checkpoint
from ..data import FeatureSet, build_feature_set
from ..errors import CheckpointError, DataError
from ..labels import Manifest
from ..models import WeakTagNet
from ..postprocess import segment_scores
from .predict import embed_frozen, predict_features


def chunk_segments_for(chunk_seconds: float, segment_seconds: float, clip_segments: int) -> int:
    """Whole segments per chunk: ``chunk_seconds`` rounded to the grid, at least 1, at most the clip."""
    return max(1, min(clip_segments, int(round(chunk_seconds / segment_seconds))))


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def teacher_labelled_chunks(train: FeatureSet, teacher_path: str | Path, chunk_seconds: float,
                            student: WeakTagNet, cache: str | Path | None = None,
                            with_segments: bool = False) -> FeatureSet:
    """``train`` cut into chunks of about ``chunk_seconds``, each with the teacher's clip probabilities, and
    with ``with_segments`` its segment scores too (:func:`teacher_segment_targets`).

    The teacher reads the student's features when it can (the same front end and time grid, and for a
    frozen backbone's precomputed outputs the same backbone); otherwise it labels the same chunks of
    audio through its own front end (:func:`teacher_inputs`), its backbone's outputs kept in ``cache``
    (``train.feature_cache``) when given. Raises CheckpointError (naming the checkpoint) when the
    teacher is missing or knows other classes.
    """
    path = Path(teacher_path)
    if not path.exists():
        raise CheckpointError(f"{path}: PSL teacher checkpoint not found (scheme.teacher)")
    teacher = load_checkpoint(path)
    if list(teacher.classes) != list(train.classes):
        raise CheckpointError(f"{path}: the PSL teacher knows other classes ({len(teacher.classes)}) than the training "
                         f"labels ({len(train.classes)})")
    chunk_segments = chunk_segments_for(chunk_seconds, train.grid.segment_seconds, train.num_segments)
    starts = train.chunk_starts(chunk_segments)
    chunks = train.chunks(chunk_segments, starts)
    if reads_student_features(teacher.model, train, student):
        inputs = chunks
    else:
        inputs = teacher_inputs(train, teacher.model, starts, chunk_segments, cache)
    said = predict_features(teacher.model, inputs)
    segments = None
    if with_segments:
        scores = segment_scores(teacher.events.output, said.segment_probs, said.attention, said.clip_probs)
        segments = teacher_segment_targets(scores, chunks.num_segments)
    return replace(chunks, teacher=torch.from_numpy(said.clip_probs).float(), teacher_segments=segments)


def teacher_segment_targets(scores, segments: int) -> torch.Tensor:
    """The teacher's segment scores (N, C, T_teacher) (its event output, the one it chose on validation) on the
    student's ``segments`` per chunk: linear interpolation in time (the identity on the same grid)."""
    tensor = torch.as_tensor(scores, dtype=torch.float32)
    if tensor.shape[-1] == segments:
        return tensor.clamp(0.0, 1.0)
    return F.interpolate(tensor, size=segments, mode="linear", align_corners=False).clamp(0.0, 1.0)


def reads_student_features(teacher: WeakTagNet, train: FeatureSet, student: WeakTagNet) -> bool:
    """Whether the teacher's network takes ``train``'s features as they are."""
    grid = teacher.grid
    if grid.frontend != train.grid.frontend or grid.time_stride != train.grid.time_stride:
        return False
    return train.level != "backbone" or _same_weights(teacher.backbone, student.backbone)


def teacher_inputs(train: FeatureSet, teacher: WeakTagNet, starts: list[int], chunk_segments: int,
                   cache: str | Path | None = None, batch_size: int = 32) -> FeatureSet:
    """The student's chunks (``chunk_segments`` segments from each of ``starts`` on its grid) as the teacher
    sees them: the clips' audio through the teacher's front end, cut at the nearest segments of its grid,
    and through its backbone (read from ``cache`` when computed before)."""
    own = build_feature_set(Manifest(list(train.clips), list(train.classes)), train.classes, grid=teacher.grid,
                            clip_seconds=train.clip_seconds)
    read = {clip.clip_id for clip in own.clips}
    lost = [c.clip_id for c in train.clips if c.clip_id not in read]
    if lost:
        raise DataError(f"the PSL teacher's front end could not read {len(lost)} training clip(s), e.g. {lost[0]}: "
                        f"{own.skipped[0].reason if own.skipped else ''}")
    seconds, theirs = train.grid.segment_seconds, teacher.grid.segment_seconds
    length = chunk_segments_for(chunk_segments * seconds, theirs, own.num_segments)
    chunks = own.chunks(length, [min(own.num_segments - length, int(round(s * seconds / theirs))) for s in starts])
    if cache is None:
        return chunks
    return embed_frozen(teacher, chunks, batch_size=batch_size, cache=cache)
