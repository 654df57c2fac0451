"""Event metrics and event-decoding settings for a trained model on a prepared feature set."""

from __future__ import annotations

import numpy as np

from ..checkpoint import EventSettings
from ..data import CLIP_SECONDS, FeatureSet, segment_labels
from ..labels import Manifest
from ..models import segment_duration
from ..predict import Predictions
from .events import EventMetrics, evaluate_events, segment_scores
from .tagging import choose_thresholds


def score_matrices(predictions: Predictions, output: str) -> dict[str, np.ndarray]:
    """clip id -> (C, T) detection scores of the chosen output kind (see ``segment_scores``)."""
    if output in ("attention", "product") and predictions.attention is None:
        output = "segment"  # a pooling model has no attention: X^a is all it has
    scores = segment_scores(output, predictions.segment_probs, predictions.attention)
    return {clip_id: scores[i] for i, clip_id in enumerate(predictions.clip_ids)}


def median_filter_segments(seconds: float) -> int:
    """The odd number of segments closest to ``seconds`` (median filters need an odd window)."""
    n = max(1, int(round(seconds / segment_duration())))
    return n if n % 2 == 1 else n + 1


def choose_event_settings(features: FeatureSet, predictions: Predictions, output: str = "segment",
                          median_filter_seconds: float = 0.48) -> EventSettings:
    """Per-class event thresholds that maximise segment-level F1 on strongly labelled validation clips.

    Each (clip, segment) cell is one sample, with Y from the strong labels as its target: the
    same rule the tagging thresholds use, applied to time. Without strong validation labels
    every threshold is 0.5.
    """
    strong = [i for i, clip in enumerate(features.clips) if clip.events is not None]
    if not strong:
        return EventSettings(output, [0.5] * len(features.classes), median_filter_seconds)
    scores = score_matrices(predictions, output)
    t = predictions.segment_probs.shape[-1]
    targets = np.stack([segment_labels(features.clips[i].events, features.classes, t) for i in strong])  # (N, C, T)
    values = np.stack([scores[features.clips[i].clip_id] for i in strong])
    flat_targets = targets.transpose(0, 2, 1).reshape(-1, len(features.classes))
    flat_scores = values.transpose(0, 2, 1).reshape(-1, len(features.classes))
    thresholds = choose_thresholds(flat_targets, flat_scores)
    return EventSettings(output, [float(x) for x in thresholds], median_filter_seconds)


def event_metrics_for(settings: EventSettings, features: FeatureSet, predictions: Predictions,
                      output: str | None = None) -> EventMetrics:
    """PSDS 1/2 and sed_eval F1s of ``predictions`` against the strong labels of ``features``."""
    output = output or settings.output
    ground_truth = Manifest(list(features.clips), list(features.classes))
    thresholds = np.asarray(settings.thresholds) if settings.thresholds else 0.5
    # features are 10 s crops: a longer clip is scored on its first 10 s only
    durations = {c.clip_id: min(c.duration or CLIP_SECONDS, CLIP_SECONDS) for c in features.clips}
    return evaluate_events(score_matrices(predictions, output), ground_truth, features.classes, segment_duration(),
                           thresholds=thresholds, median_filter_segments=median_filter_segments(settings.median_filter_seconds),
                           durations=durations)
