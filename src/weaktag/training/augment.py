"""Data augmentation on batches of log-mel features, off unless a config turns it on (``augment.*``).

The field's standard set, applied in this order to each training batch (never to validation):

* **random gain** (±``gain_db``, per clip): exact in the feature domain, by undoing the front
  end's compression, scaling the mel energies by the gain (squared for a power spectrum) and
  compressing again;
* **time shift** (circular, per clip, up to ``shift_seconds``, in whole output segments): features
  and strong labels Y roll together, so Y stays aligned with the sound;
* **mixup** (``mixup_alpha`` > 0, with probability ``mixup_prob`` per batch): each clip is mixed
  with another clip of the batch, ``x = lam x_i + (1 - lam) x_j`` with lam ~ Beta(alpha, alpha)
  folded to >= 0.5, and the labels are the *union* of both clips' labels (weak and strong: a
  mixed clip contains both sounds); strong labels are kept only when both clips have them;
* **SpecAugment** masks: ``time_masks`` masks of up to ``time_mask_frames`` frames and
  ``freq_masks`` masks of up to ``freq_mask_bins`` bands per clip, filled with the front end's
  value for silence. Labels are unchanged (the paper's convention: a masked event is still there).

torchaudio's SpecAugment does not run with this project's torch, and waveform libraries cannot
work on the precomputed features, so these are written here and tested in
``tests/unit/training/test_augment.py``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from ..config import AugmentConfig
from ..batch import Batch
from ..geometry import FrontEndSpec, TimeGrid


def decompress(features: torch.Tensor, spec: FrontEndSpec) -> torch.Tensor:
    """Mel energies from features: the inverse of :func:`weaktag.audio.compress`."""
    x = features * spec.scale
    if spec.compression == "log":
        return (torch.exp(x) - spec.log_offset).clamp(min=0.0)
    return ((10.0 ** x) - 1.0).clamp(min=0.0) / spec.log_scale


def apply_gain(features: torch.Tensor, gain_db: torch.Tensor, spec: FrontEndSpec) -> torch.Tensor:
    """Features of the same audio ``gain_db`` (per clip, shape (B,)) louder."""
    from ..audio import compress

    factor = (10.0 ** (gain_db / 20.0)) ** spec.power  # amplitude gain, squared for a power spectrum
    return compress(decompress(features, spec) * factor.view(-1, 1, 1), spec)


def time_shift(batch: Batch, segments: torch.Tensor, grid: TimeGrid) -> Batch:
    """Roll each clip's features by ``segments[i]`` output segments (and its strong labels by as many)."""
    frames = batch.features.shape[1]
    usable = (frames // grid.time_stride) * grid.time_stride  # a partial last segment stays in place
    features = batch.features.clone()
    strong = batch.strong.clone()
    # a teacher's segment targets (distillation) stay with the sound, as the strong labels do
    teacher_segments = None if batch.teacher_segments is None else batch.teacher_segments.clone()
    for i, k in enumerate(segments.tolist()):
        if k:
            features[i, :usable] = torch.roll(batch.features[i, :usable], k * grid.time_stride, dims=0)
            strong[i] = torch.roll(batch.strong[i], k, dims=-1)
            if teacher_segments is not None:
                teacher_segments[i] = torch.roll(batch.teacher_segments[i], k, dims=-1)
    return replace(batch, features=features, strong=strong, teacher_segments=teacher_segments)


def mixup(batch: Batch, lam: torch.Tensor, partner: torch.Tensor) -> Batch:
    """Mix clip i with clip ``partner[i]`` with weight ``lam[i]``; labels are the union of both clips'."""
    lam3 = lam.view(-1, 1, 1).to(batch.features.dtype)
    features = lam3 * batch.features + (1.0 - lam3) * batch.features[partner]
    weak = torch.maximum(batch.weak, batch.weak[partner])
    strong = torch.maximum(batch.strong, batch.strong[partner])
    has_strong = batch.has_strong & batch.has_strong[partner]
    teacher = None if batch.teacher is None else torch.maximum(batch.teacher, batch.teacher[partner])
    teacher_segments = (None if batch.teacher_segments is None
                        else torch.maximum(batch.teacher_segments, batch.teacher_segments[partner]))
    return replace(batch, features=features, weak=weak, strong=strong * has_strong.view(-1, 1, 1).to(strong.dtype),
                   has_strong=has_strong, teacher=teacher, teacher_segments=teacher_segments)


def mask(features: torch.Tensor, starts: torch.Tensor, widths: torch.Tensor, dim: int, fill: float) -> torch.Tensor:
    """Set ``features[i]`` to ``fill`` on ``[starts[i, m], starts[i, m] + widths[i, m])`` along ``dim`` (1 or 2)."""
    out = features.clone()
    positions = torch.arange(features.shape[dim], device=features.device)
    for i in range(features.shape[0]):
        for start, width in zip(starts[i].tolist(), widths[i].tolist()):
            hit = (positions >= start) & (positions < start + width)
            if dim == 1:
                out[i, hit, :] = fill
            else:
                out[i, :, hit] = fill
    return out


class Augmenter:
    """Draws and applies the configured augmentations to training batches (see the module doc)."""

    def __init__(self, config: AugmentConfig, grid: TimeGrid) -> None:
        self.config = config
        self.grid = grid

    @property
    def enabled(self) -> bool:
        c = self.config
        return bool(c.gain_db or c.shift_seconds or c.mixup_alpha or (c.time_masks and c.time_mask_frames)
                    or (c.freq_masks and c.freq_mask_bins))

    def __call__(self, batch: Batch) -> Batch:
        """An augmented copy of ``batch``; random draws come from torch's global generator (seeded per run)."""
        c, n = self.config, len(batch)
        device = batch.features.device
        if c.gain_db:
            gain = (torch.rand(n, device=device) * 2.0 - 1.0) * c.gain_db
            batch = replace(batch, features=apply_gain(batch.features, gain, self.grid.frontend))
        if c.shift_seconds:
            most = int(math.floor(c.shift_seconds / self.grid.segment_seconds))
            if most > 0:
                batch = time_shift(batch, torch.randint(-most, most + 1, (n,)), self.grid)
        if c.mixup_alpha and n > 1 and float(torch.rand(1)) < c.mixup_prob:
            lam = torch.distributions.Beta(c.mixup_alpha, c.mixup_alpha).sample((n,))
            lam = torch.maximum(lam, 1.0 - lam).to(device)  # each clip stays the louder part of its mix
            batch = mixup(batch, lam, torch.randperm(n).to(device))
        features = batch.features
        fill = self.grid.frontend.silence
        for count, width, dim in ((c.time_masks, c.time_mask_frames, 1), (c.freq_masks, c.freq_mask_bins, 2)):
            if count and width:
                widths = torch.randint(0, width + 1, (n, count))
                starts = (torch.rand(n, count) * (features.shape[dim] - widths + 1).clamp(min=1)).long()
                features = mask(features, starts, widths, dim, fill)
        return replace(batch, features=features) if features is not batch.features else batch
