"""Datasets: fixed-length training crops, log-mel features, and strong labels as segment matrices.

Segment time spans
------------------
The network max-pools time four times by 2, so output segment ``t`` pools input frames
``16t .. 16t+15``; frames are 10 ms apart, so segment ``t`` *starts* at ``0.16 t`` s. We
define its span as ``[0.16 t, 0.16 (t + 1))`` s: the stride, not the receptive field
(which is wider and overlaps neighbours). A class is active in segment ``t`` of Y when
one of its events overlaps that span by more than zero; a zero-length event marks the
segment that contains its onset. The same spans turn segment outputs back into times
(``segment_times``), so labels and detections use one convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from .audio import SAMPLE_RATE, AudioError, LogMel, load_audio, pad_or_truncate, warn_skipped
from .labels import Clip, Event, Manifest
from .models import num_segments, segment_duration
from .supervision import Batch

CLIP_SECONDS = 10.0
CLIP_SAMPLES = int(CLIP_SECONDS * SAMPLE_RATE)
CLIP_FRAMES = 998  # 1 + (160000 - 400) // 160: the paper's 998 x 64 input


def segment_times(num_segs: int, segment_seconds: float | None = None) -> np.ndarray:
    """(T, 2) array of [start, end) seconds for each output segment."""
    step = segment_duration() if segment_seconds is None else segment_seconds
    starts = np.arange(num_segs) * step
    return np.stack([starts, starts + step], axis=1)


def segment_labels(events: Sequence[Event], classes: Sequence[str], num_segs: int,
                   segment_seconds: float | None = None) -> np.ndarray:
    """Strong events -> Y in {0, 1}^(C, T) for ``num_segs`` output segments (see module doc)."""
    step = segment_duration() if segment_seconds is None else segment_seconds
    index = {name: i for i, name in enumerate(classes)}
    y = np.zeros((len(classes), num_segs), dtype=np.float32)
    for event in events:
        if event.label not in index:
            raise ValueError(f"event label {event.label!r} is not in the class list")
        first = int(math.floor(event.onset / step))
        if event.offset > event.onset:
            last = int(math.ceil(event.offset / step)) - 1  # last segment whose start < offset
        else:
            last = first
        first, last = max(first, 0), min(last, num_segs - 1)
        if first <= last:
            y[index[event.label], first : last + 1] = 1.0
    return y


def weak_vector(labels: frozenset[str] | set[str], classes: Sequence[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    y = np.zeros(len(classes), dtype=np.float32)
    for label in labels:
        y[index[label]] = 1.0
    return y


@dataclass
class SkippedClip:
    clip_id: str
    reason: str


@dataclass
class FeatureSet(Dataset):
    """Log-mel features of every usable clip in a manifest, computed once and kept in memory.

    Training clips are fixed at 998 x 64 frames (zero-padded or truncated audio, as the
    paper does). Clips whose audio cannot be used are skipped with a warning and listed in
    ``skipped`` so that a training run reports them instead of dying on them.
    """

    clips: list[Clip]
    classes: list[str]
    features: torch.Tensor  # (N, 998, 64) float32
    skipped: list[SkippedClip] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> int:
        return i  # the collate function gathers by index, avoiding per-item tensor copies

    @property
    def weak(self) -> np.ndarray:
        return np.stack([weak_vector(c.labels, self.classes) for c in self.clips]) if self.clips else np.zeros((0, len(self.classes)), np.float32)

    def collate(self, indices: list[int]) -> Batch:
        t = num_segments(CLIP_FRAMES)
        strong = np.zeros((len(indices), len(self.classes), t), dtype=np.float32)
        has_strong = np.zeros(len(indices), dtype=bool)
        for row, i in enumerate(indices):
            clip = self.clips[i]
            if clip.events is not None:
                strong[row] = segment_labels(clip.events, self.classes, t)
                has_strong[row] = True
        return Batch(
            features=self.features[indices],
            weak=torch.from_numpy(np.stack([weak_vector(self.clips[i].labels, self.classes) for i in indices])),
            strong=torch.from_numpy(strong),
            has_strong=torch.from_numpy(has_strong),
            clip_ids=[self.clips[i].clip_id for i in indices],
        )


def build_feature_set(manifest: Manifest, classes: Sequence[str] | None = None, batch_size: int = 64,
                      progress: bool = False) -> FeatureSet:
    """Load, crop to 10 s and compute log-mel for every clip; skip and record bad clips."""
    classes = list(classes) if classes is not None else list(manifest.classes)
    frontend = LogMel()
    kept: list[Clip] = []
    skipped: list[SkippedClip] = []
    chunks: list[torch.Tensor] = []
    pending: list[np.ndarray] = []

    def flush() -> None:
        if pending:
            with torch.no_grad():
                chunks.append(frontend(torch.from_numpy(np.stack(pending))))
            pending.clear()

    iterator = manifest.clips
    if progress:
        from tqdm import tqdm

        iterator = tqdm(manifest.clips, desc="features", unit="clip")
    for clip in iterator:
        try:
            if clip.audio_path is None:
                raise AudioError(clip.clip_id, "the manifest gives no audio path")
            unknown = set(clip.labels) - set(classes)
            if unknown:
                raise ValueError(f"labels not in the class list: {sorted(unknown)}")
            wave = load_audio(clip.audio_path)
        except (AudioError, ValueError) as exc:
            warn_skipped(clip.clip_id, str(exc))
            skipped.append(SkippedClip(clip.clip_id, str(exc)))
            continue
        kept.append(clip)
        pending.append(pad_or_truncate(wave, CLIP_SAMPLES))
        if len(pending) >= batch_size:
            flush()
    flush()
    features = torch.cat(chunks) if chunks else torch.zeros((0, CLIP_FRAMES, 64))
    return FeatureSet(kept, classes, features, skipped)
