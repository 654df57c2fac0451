"""Batched prediction on a prepared feature set (fixed-length clips), for validation and evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..data import FeatureSet
from ..models import WeakTagNet


@dataclass
class Predictions:
    """Model outputs for N clips of equal length: C classes, T segments."""

    clip_ids: list[str]
    clip_probs: np.ndarray  # (N, C)
    segment_probs: np.ndarray  # (N, C, T)
    attention: np.ndarray | None  # (N, C, T) or None for pooling models
    # seconds of audio each clip's scores stand for (the last segment may pass it; events end there)
    durations: dict[str, float] = field(default_factory=dict)


@torch.no_grad()
def predict_features(model: WeakTagNet, features: FeatureSet, batch_size: int = 64,
                     device: str | torch.device | None = None) -> Predictions:
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    clip, seg, att = [], [], []
    for start in range(0, len(features), batch_size):
        x = features.features[start : start + batch_size].to(device)
        out = model.forward_level(x, features.level)
        clip.append(out.clip_probs.float().cpu().numpy())
        seg.append(out.segment_probs.float().cpu().numpy())
        if out.attention is not None:
            att.append(out.attention.float().cpu().numpy())
    model.train(was_training)
    c = len(features.classes)
    return Predictions(
        clip_ids=[x.clip_id for x in features.clips],
        clip_probs=np.concatenate(clip) if clip else np.zeros((0, c), np.float32),
        segment_probs=np.concatenate(seg) if seg else np.zeros((0, c, 0), np.float32),
        attention=np.concatenate(att) if att else None,
        durations=crop_durations(features),
    )


def crop_durations(features: FeatureSet) -> dict[str, float]:
    """Seconds of audio in each clip's crop: ``clip_seconds``, or the clip's duration when shorter (a longer
    clip is scored on its first ``clip_seconds`` only)."""
    crop = features.clip_seconds
    return {c.clip_id: min(c.duration or crop, crop) for c in features.clips}
