"""Datasets: fixed-length training crops, log-mel features, and strong labels as segment matrices.

Clips are cropped (or zero-padded) to ``clip_seconds`` (10 s, the paper's input) at the
backbone's front end, then zero-padded to whole segments as tagging pads a recording of that length
(:meth:`weaktag.geometry.TimeGrid.padded_samples`), so the last segment covers the crop's end; strong labels become segment matrices on the backbone's time grid
(:class:`weaktag.geometry.TimeGrid`, which also defines the segment spans).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .audio import AudioError, LogMel, pad_or_truncate, pad_to_segments, warn_skipped
from .batch import Batch
from .errors import ConfigError
from .geometry import VGGISH_GRID, TimeGrid
from .labels import Clip, Event, Manifest
from .packing import close_shards, load_clip_audio, resampling_note

CLIP_SECONDS = 10.0  # the paper's fixed training input: 1008 x 64 log-mel frames (63 segments) on VGGish's grid


def weak_vector(labels: frozenset[str] | set[str], classes: Sequence[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    y = np.zeros(len(classes), dtype=np.float32)
    for label in labels:
        y[index[label]] = 1.0
    return y


def weak_matrix(clips: Sequence[Clip], classes: Sequence[str]) -> np.ndarray:
    """(N, C) clip-level targets of ``clips``."""
    if not clips:
        return np.zeros((0, len(classes)), np.float32)
    return np.stack([weak_vector(c.labels, classes) for c in clips])


@dataclass
class SkippedClip:
    clip_id: str
    reason: str


@dataclass
class FeatureSet(Dataset):
    """Log-mel features of every usable clip in a manifest, computed once and kept in memory.

    Training clips are fixed at ``clip_seconds`` of audio (zero-padded or truncated, as the paper
    does), then padded to whole segments: 1008 x 64 frames on VGGish's grid. Clips whose audio cannot be used are skipped with a warning and listed in
    ``skipped`` so that a training run reports them instead of dying on them.
    """

    clips: list[Clip]
    classes: list[str]
    features: torch.Tensor  # (N, frames, mel bands) float32: (N, 1008, 64) on VGGish's grid
    skipped: list[SkippedClip] = field(default_factory=list)
    grid: TimeGrid = VGGISH_GRID
    clip_seconds: float = CLIP_SECONDS
    # "logmel": features are (N, frames, bands); "backbone": a frozen backbone's outputs (N, channels, T),
    # computed once so that training runs only the head (see weaktag.training.predict.embed_frozen)
    level: str = "logmel"
    teacher: torch.Tensor | None = None  # (N, C) a teacher's clip probabilities for each clip (PSL chunks)
    teacher_segments: torch.Tensor | None = None  # (N, C, T) its segment probabilities on this grid (distillation)
    # made on first use by _label_tensors; not copied by dataclasses.replace (clips may change)
    _labels: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def num_segments(self) -> int:
        if self.level == "backbone":
            return self.features.shape[-1]
        return self.grid.num_segments(self.features.shape[1])

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> int:
        return i  # the collate function gathers by index, avoiding per-item tensor copies

    @property
    def weak(self) -> np.ndarray:
        return weak_matrix(self.clips, self.classes)

    def _label_tensors(self) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """The weak label matrix and the strong segment matrices, made once (not per batch: collating
        is on every training step's path); strong ones only for the clips that have them (a dense
        (N, C, T) array would be gigabytes for AudioSet)."""
        if self._labels is None:
            t = self.num_segments
            weak = torch.from_numpy(self.weak)
            strong = {i: torch.from_numpy(self.grid.segment_labels(c.events, self.classes, t))
                      for i, c in enumerate(self.clips) if c.events is not None}
            self._labels = (weak, strong)
        return self._labels

    def collate(self, indices: list[int]) -> Batch:
        weak, strong_rows = self._label_tensors()
        strong = torch.zeros((len(indices), len(self.classes), self.num_segments))
        has_strong = torch.zeros(len(indices), dtype=torch.bool)
        for row, i in enumerate(indices):
            if i in strong_rows:
                strong[row] = strong_rows[i]
                has_strong[row] = True
        return Batch(
            features=self.features[indices],
            weak=weak[indices],
            strong=strong,
            has_strong=has_strong,
            clip_ids=[self.clips[i].clip_id for i in indices],
            teacher=None if self.teacher is None else self.teacher[indices],
            teacher_segments=None if self.teacher_segments is None else self.teacher_segments[indices],
        )

    @property
    def segment_axis(self) -> int:
        """The time axis of ``features``: frames (log-mel) or segments (backbone outputs)."""
        return 1 if self.level == "logmel" else 2

    def chunk_starts(self, chunk_segments: int) -> list[int]:
        """The first segment of each chunk :meth:`chunks` cuts: back to back from the start, the last one
        ending at the clip's end (so the chunks cover the clip; it may overlap the one before)."""
        total = self.num_segments
        if not 1 <= chunk_segments <= total:
            raise ConfigError(f"a chunk must be 1 to {total} segments long, not {chunk_segments}")
        starts = list(range(0, total - chunk_segments + 1, chunk_segments))
        if starts[-1] + chunk_segments < total:
            starts.append(total - chunk_segments)
        return starts

    def chunks(self, chunk_segments: int, starts: Sequence[int] | None = None) -> "FeatureSet":
        """Every clip cut into chunks of ``chunk_segments`` segments beginning at ``starts`` (default:
        :meth:`chunk_starts`).

        A chunk keeps its clip's weak labels; its strong events are the clip's, cropped to the chunk and
        shifted to its start. Chunk ids are ``<clip id>@<first segment>``.
        """
        total = self.num_segments
        if starts is None:
            starts = self.chunk_starts(chunk_segments)
        elif not starts or any(s < 0 or s + chunk_segments > total for s in starts):
            raise ConfigError(f"chunks of {chunk_segments} segments at {list(starts)} do not fit {total} segments")
        per_segment = 1 if self.level == "backbone" else self.grid.time_stride
        seconds = self.grid.segment_seconds
        clips, parts = [], []
        for start in starts:
            begin = start * per_segment
            parts.append(self.features.narrow(self.segment_axis, begin, chunk_segments * per_segment))
        for clip in self.clips:
            for start in starts:
                clips.append(_chunk_clip(clip, start, start * seconds, chunk_segments * seconds))
        # (chunks per clip, N, ...) -> (N * chunks, ...), clip-major like ``clips``
        features = torch.stack(parts, dim=1).flatten(0, 1).contiguous()
        return replace(self, clips=clips, features=features, clip_seconds=chunk_segments * seconds,
                       teacher=None, teacher_segments=None)


@dataclass
class WithUnlabeled(Dataset):
    """The training set and unlabelled clips (the mean teacher's) as one dataset: indices below
    ``len(labeled)`` are labelled clips, the others ``unlabeled``'s clip ``i - len(labeled)``. Its batches
    hold their labelled clips first, then the unlabelled ones, and say which are which (``Batch.labeled``)."""

    labeled: FeatureSet
    unlabeled: FeatureSet

    def __len__(self) -> int:
        return len(self.labeled) + len(self.unlabeled)

    def __getitem__(self, i: int) -> int:
        return i

    def collate(self, indices: list[int]) -> Batch:
        n = len(self.labeled)
        parts = []
        for dataset, rows, is_labeled in ((self.labeled, [i for i in indices if i < n], True),
                                          (self.unlabeled, [i - n for i in indices if i >= n], False)):
            part = dataset.collate(rows)
            parts.append(replace(part, labeled=torch.full((len(rows),), is_labeled, dtype=torch.bool)))
        return Batch.join(*parts)


def _chunk_clip(clip: Clip, first_segment: int, start: float, length: float) -> Clip:
    events = None
    if clip.events is not None:
        events = tuple(Event(e.label, max(e.onset, start) - start, min(e.offset, start + length) - start)
                       for e in clip.events if e.offset > start and e.onset < start + length)
    return replace(clip, clip_id=f"{clip.clip_id}@{first_segment}", events=events, duration=length)


def no_usable_clip_reason(skipped: Sequence[SkippedClip], audio_option: str) -> str:
    """The rest of a "no usable clip" message: how many were skipped, the first reason, and, when every
    file was missing, the option that says where audio is (the commonest cause)."""
    if not skipped:
        return " (the label file lists no clip)"
    first = f"{skipped[0].clip_id}: {skipped[0].reason}"
    text = f": all {len(skipped)} skipped, e.g. {first}"
    if all("file not found" in s.reason for s in skipped):
        text += f"; is {audio_option} right? (default: the label file's folder)"
    return text


class _ClipWaves(Dataset):
    """Each clip's waveform, cropped or padded to ``samples`` and then to the ``grid``'s whole segments, or the
    reason it cannot be used: what :func:`build_feature_set`'s data-loader workers do (decode and resample, or
    read a pack shard)."""

    def __init__(self, clips: Sequence[Clip], grid: TimeGrid, samples: int) -> None:
        self.clips, self.grid, self.samples = clips, grid, samples

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> tuple[torch.Tensor | None, str | None]:
        try:
            wave = load_clip_audio(self.clips[i], self.grid.sample_rate)
        except (AudioError, ValueError) as exc:
            return None, str(exc)
        # a copy: a cropped view would send the whole clip's buffer back from a worker
        return torch.from_numpy(pad_to_segments(pad_or_truncate(wave, self.samples), self.grid)), None


def build_feature_set(manifest: Manifest, classes: Sequence[str] | None = None, batch_size: int = 64,
                      progress: bool = False, grid: TimeGrid = VGGISH_GRID,
                      clip_seconds: float = CLIP_SECONDS, num_workers: int = 0) -> FeatureSet:
    """Load, crop to ``clip_seconds`` and compute the ``grid``'s log-mel for every clip; skip and record
    clips whose audio cannot be used. A label outside ``classes`` is a label-file error, not a bad clip:
    :class:`~weaktag.labels.UnknownLabelError` names the file and line the clip was read from.

    Audio is read by :func:`weaktag.packing.load_clip_audio` (from a pack's shards or from the files) in
    ``num_workers`` data-loader processes (0: in this one); the features are the same either way."""
    classes = list(classes) if classes is not None else list(manifest.classes)
    manifest.with_classes(classes)  # before any audio is read
    frontend = LogMel(grid.frontend)
    clip_samples = int(round(clip_seconds * grid.sample_rate))
    kept: list[Clip] = []
    skipped: list[SkippedClip] = []
    chunks: list[torch.Tensor] = []
    pending: list[torch.Tensor] = []

    def flush() -> None:
        if pending:
            with torch.no_grad():
                chunks.append(frontend(torch.stack(pending)))
            pending.clear()

    note = resampling_note(manifest.clips, grid.sample_rate)
    if note:
        warnings.warn(note, stacklevel=2)
    close_shards()  # no worker inherits an open HDF5 file
    # small batches: workers hand back waveforms in order, a few clips at a time
    waves = DataLoader(_ClipWaves(manifest.clips, grid, clip_samples), batch_size=8,
                       num_workers=num_workers, collate_fn=list)
    from tqdm import tqdm

    bar = tqdm(total=len(manifest.clips), desc="features", unit="clip", disable=not progress)
    clips = iter(manifest.clips)
    for loaded in waves:
        for wave, reason in loaded:
            clip = next(clips)
            if reason is not None:
                warn_skipped(clip.clip_id, reason)
                skipped.append(SkippedClip(clip.clip_id, reason))
                continue
            kept.append(clip)
            pending.append(wave)
            if len(pending) >= batch_size:
                flush()
        bar.update(len(loaded))
    bar.close()
    close_shards()
    flush()
    empty = (0, grid.num_frames(grid.padded_samples(clip_samples)), grid.frontend.n_mels)
    features = torch.cat(chunks) if chunks else torch.zeros(empty)
    return FeatureSet(kept, classes, features, skipped, grid, clip_seconds)
