"""Model outputs on labelled clips: a frozen backbone's outputs (:func:`embed_frozen`, computed once for
training), batched over a prepared feature set (fixed-length crops, for validation while training), or over
each clip's whole recording through the Tagger (the path ``weaktag tag`` runs, for test-set evaluation of
clips of any length)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..data import FeatureSet, SkippedClip, weak_matrix
from ..geometry import TimeGrid
from ..inference import TagFailure, TagResult, Tagger
from ..labels import Clip
from ..models import WeakTagNet
from ..models.feature_cache import FeatureCache
from ..packing import close_shards, load_clip_audio


@dataclass
class Predictions:
    """Model outputs for N clips, C classes: segment matrices are one (N, C, T) array for clips of one
    length, or a list of (C, T_i), one per clip (recordings of any length)."""

    clip_ids: list[str]
    clip_probs: np.ndarray  # (N, C)
    segment_probs: np.ndarray | list[np.ndarray]
    attention: np.ndarray | list[np.ndarray] | None  # as segment_probs; None for pooling models
    # seconds of audio each clip's scores stand for (the last segment may pass it; events end there)
    durations: dict[str, float] = field(default_factory=dict)


class LabelledClips(Protocol):
    """What scoring predictions against labels needs: the clips (with their labels), classes and grid."""

    clips: list[Clip]
    classes: list[str]
    grid: TimeGrid


@dataclass
class Recordings:
    """Labelled clips scored on their whole recordings (:func:`predict_recordings`); ``skipped``: those
    whose audio could not be used, with the reason."""

    clips: list[Clip]
    classes: list[str]
    grid: TimeGrid
    skipped: list[SkippedClip] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.clips)

    @property
    def weak(self) -> np.ndarray:
        return weak_matrix(self.clips, self.classes)


@torch.no_grad()
def embed_frozen(model: WeakTagNet, features: FeatureSet, batch_size: int = 32, progress: bool = False,
                 split: str = "", report: Callable[[str], None] | None = None,
                 cache: str | Path | None = None) -> FeatureSet:
    """The frozen backbone's outputs for every clip (``level="backbone"``): the head sees exactly these.

    This can take minutes before the first epoch: a bar on stderr with ``progress``, else a few lines
    ("computing backbone features (train): 120/440 clips") to ``report`` when given. With a ``cache``
    folder (``train.feature_cache``, :mod:`weaktag.models.feature_cache`) outputs computed before for
    the same backbone and inputs are read from it, and new ones are kept there."""
    from tqdm import tqdm

    what = f"backbone features{f' ({split})' if split else ''}"

    def compute() -> torch.Tensor:
        was_training = model.training
        model.eval()
        bar = tqdm(total=len(features), desc=what, unit="clip", disable=not progress)
        every = max(batch_size, -(-len(features) // 4 // batch_size) * batch_size)  # about four lines a split
        parts = []
        for start in range(0, len(features), batch_size):
            parts.append(model.backbone(features.features[start : start + batch_size]))
            done = min(start + batch_size, len(features))
            bar.update(done - start)
            if report is not None and not progress and (done % every == 0 or done == len(features)):
                report(f"computing {what}: {done}/{len(features)} clips")
        bar.close()
        model.train(was_training)
        return torch.cat(parts) if parts else torch.zeros((0, model.backbone.out_channels, 0))

    if cache is None or not len(features):
        embedded = compute()
    else:
        embedded, read_from = FeatureCache(cache, model.backbone).outputs(features.features, compute)
        if read_from is not None and report is not None:
            report(f"{what}: {len(features)} clips read from the feature cache {read_from}")
    return replace(features, features=embedded, level="backbone")


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


def predict_recordings(checkpoint: Checkpoint, clips: Sequence[Clip], device: str | torch.device | None = None,
                       progress: bool = False, feature_cache: str | Path | None = None,
                       onnx_path: str | Path | None = None) -> tuple[Predictions, Recordings]:
    """Every clip's whole audio (from its pack shard or its file) through the :class:`~weaktag.inference.Tagger`
    with the checkpoint's settings: the outputs ``weaktag tag`` gives for the same audio, however long. Clips
    whose audio cannot be used are left out and listed in the returned :class:`Recordings`' ``skipped``.
    ``progress``: a bar over the clips; ``feature_cache``: the Tagger's folder of backbone outputs (a frozen
    backbone's, read again by every later trial on the same clips); ``onnx_path``: an export of the checkpoint
    run on onnxruntime instead of the PyTorch network."""
    from tqdm import tqdm

    backend = {"backend": "onnxruntime", "onnx_path": onnx_path} if onnx_path is not None else {}
    tagger = Tagger(checkpoint, device, detect_events=False, feature_cache=feature_cache, **backend)
    rate = tagger.grid.sample_rate
    results: list[TagResult | TagFailure | None] = [None] * len(clips)
    bar = tqdm(total=len(clips), desc="evaluate", unit="clip", disable=not progress)
    try:
        for i, result in tagger.iter_tag_arrays([lambda c=c: load_clip_audio(c, rate) for c in clips],
                                                [c.clip_id for c in clips]):
            results[i] = result
            bar.update()
    finally:
        bar.close()
        close_shards()
        tagger.close()
    kept = [(clip, r) for clip, r in zip(clips, results) if not isinstance(r, TagFailure)]
    skipped = [SkippedClip(clip.clip_id, r.reason) for clip, r in zip(clips, results) if isinstance(r, TagFailure)]
    c = len(checkpoint.classes)
    predictions = Predictions(
        clip_ids=[clip.clip_id for clip, _ in kept],
        clip_probs=np.stack([r.clip_probs for _, r in kept]) if kept else np.zeros((0, c), np.float32),
        segment_probs=[r.segment_probs for _, r in kept],
        attention=[r.attention for _, r in kept] if tagger.has_attention else None,
        durations={clip.clip_id: r.duration for clip, r in kept},
    )
    return predictions, Recordings([clip for clip, _ in kept], list(checkpoint.classes), tagger.grid, skipped)
