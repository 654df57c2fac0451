"""Settings chosen on validation, and event metrics, for a trained model's predictions on labelled clips
(a prepared feature set of fixed-length crops, or whole recordings: :mod:`.predict`).

``choose_event_settings`` picks per-class event thresholds on the strongly labelled validation
clips when training ends (they are stored in the checkpoint): for segment-level F1 (the default,
with a fixed median filter) or, with ``objective="event_f1"``, a threshold and a median-filter
length per class for event-based F1. ``event_metrics_for`` scores a model's predictions on a
strongly labelled set with those settings.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter

from ..labels import Manifest
from ..metrics.events import (EventMetrics, OperatingPoint, best_event_f1, evaluate_events, operating_point_f1, psds,
                              psds_operating_point, scores_to_dataframes)
from ..metrics.tagging import choose_thresholds
from ..postprocess import ATTENTION_KINDS, EVENT_OBJECTIVES, OUTPUT_KINDS, EventSettings, segment_scores
from .predict import LabelledClips, Predictions


def score_matrices(predictions: Predictions, output: str) -> dict[str, np.ndarray]:
    """clip id -> (C, T) detection scores of the chosen output kind (see ``segment_scores``; the scores
    :meth:`weaktag.inference.TagResult.scores` gives), clip by clip: T may differ between clips."""
    if output in ATTENTION_KINDS and predictions.attention is None:
        output = "segment"  # a pooling model has no attention: X^a is all it has
    attention = predictions.attention
    return {clip_id: segment_scores(output, predictions.segment_probs[i], None if attention is None else attention[i],
                                    predictions.clip_probs[i])
            for i, clip_id in enumerate(predictions.clip_ids)}


#: median-filter lengths tried per class for event F1 (rounded to odd numbers of segments)
MEDIAN_FILTER_CANDIDATES = (0.0, 0.25, 0.5, 0.75, 1.0)


def choose_event_settings(features: LabelledClips, predictions: Predictions, output: str = "segment",
                          median_filter_seconds: float = EventSettings.median_filter_seconds,
                          objective: str = "segment_f1") -> EventSettings:
    """Per-class event thresholds chosen on strongly labelled validation clips.

    ``segment_f1``: each (clip, segment) cell is one sample, with Y from the strong labels as its
    target: the same rule the tagging thresholds use, applied to time; the median filter stays
    ``median_filter_seconds``. ``event_f1``: see :func:`choose_for_event_f1`. Without strong
    validation labels every threshold is 0.5.
    """
    if objective not in EVENT_OBJECTIVES:
        raise ValueError(f"event threshold objective must be one of {EVENT_OBJECTIVES}, not {objective!r}")
    strong = [i for i, clip in enumerate(features.clips) if clip.events is not None]
    if not strong:
        return EventSettings(output, [0.5] * len(features.classes), median_filter_seconds)
    if objective == "event_f1":
        return choose_for_event_f1(features, predictions, output, median_filter_seconds)
    scores = score_matrices(predictions, output)
    values = [scores[features.clips[i].clip_id] for i in strong]  # (C, T) each
    targets = [features.grid.segment_labels(features.clips[i].events, features.classes, v.shape[-1])
               for i, v in zip(strong, values)]
    # every (clip, segment) cell is a sample: (sum of T, C)
    thresholds = choose_thresholds(np.concatenate([y.T for y in targets]), np.concatenate([v.T for v in values]))
    return EventSettings(output, [float(x) for x in thresholds], median_filter_seconds)


def choose_for_event_f1(features: LabelledClips, predictions: Predictions, output: str,
                        default_filter_seconds: float = EventSettings.median_filter_seconds,
                        filter_candidates: tuple[float, ...] = MEDIAN_FILTER_CANDIDATES) -> EventSettings:
    """A threshold and a median-filter length per class with the best event-based F1 (sed_eval's
    200 ms / 20 % collars) on the strongly labelled validation clips.

    Thresholding commutes with a median filter along time, so filtering the score curves and
    then searching every threshold at once (``sed_scores_eval``) is the same as filtering the
    thresholded activity as :func:`~weaktag.postprocess.decode_events` does. Ties keep the
    shorter filter. A class without validation events keeps 0.5 and ``default_filter_seconds``.
    """
    grid = features.grid
    ground_truth = Manifest([c for c in features.clips if c.events is not None], list(features.classes))
    raw = score_matrices(predictions, output)
    windows = sorted({grid.median_filter_segments(s) for s in filter_candidates})
    best: dict[str, tuple[float, float, int]] = {}  # class -> (F1, threshold, window)
    for window in windows:
        filtered = {k: median_filter(v, size=(1, window), mode="nearest") if window > 1 else v for k, v in raw.items()}
        frames = scores_to_dataframes(filtered, features.classes, grid.segment_seconds, predictions.durations)
        for name, (f1, threshold) in best_event_f1(frames, ground_truth).items():
            if np.isfinite(threshold) and (name not in best or f1 > best[name][0]):
                best[name] = (f1, threshold, window)
    thresholds = [best[c][1] if c in best else 0.5 for c in features.classes]
    default = grid.median_filter_segments(default_filter_seconds)
    seconds = [(best[c][2] if c in best else default) * grid.segment_seconds for c in features.classes]
    return EventSettings(output, [float(t) for t in thresholds], [round(float(x), 6) for x in seconds])


def choose_event_output(features: LabelledClips, predictions: Predictions,
                        candidates: tuple[str, ...] = OUTPUT_KINDS,
                        objective: str = "segment_f1") -> tuple[EventSettings, dict[str, float]]:
    """The output kind with the best PSDS1 on the strongly labelled validation clips, with its settings.

    Returns the settings (thresholds chosen for that kind as :func:`choose_event_settings` does)
    and the validation PSDS1 of every candidate; ties keep the earlier candidate (X^a first).
    Without strong validation labels (or attention, for the attention kinds) X^a is kept.
    """
    if predictions.attention is None:
        candidates = tuple(k for k in candidates if k not in ATTENTION_KINDS) or ("segment",)
    if not any(clip.events for clip in features.clips):
        return choose_event_settings(features, predictions, "segment", objective=objective), {}
    ground_truth = Manifest([c for c in features.clips if c.events is not None], list(features.classes))
    scores: dict[str, float] = {}
    for kind in candidates:
        frames = scores_to_dataframes(score_matrices(predictions, kind), features.classes, features.grid.segment_seconds,
                                      predictions.durations)
        scores[kind] = psds(frames, ground_truth, predictions.durations, scenario=1).value
    best = max(candidates, key=lambda k: (scores[k], -candidates.index(k)))
    return choose_event_settings(features, predictions, best, objective=objective), scores


def choose_operating_point(features: LabelledClips, predictions: Predictions, output: str) -> OperatingPoint | None:
    """The PSDS1 operating point (per-class thresholds with the best F1 under PSDS1's detection
    criteria) of ``output``'s scores on the strongly labelled clips; None without any."""
    strong = [c for c in features.clips if c.events]
    if not strong:
        return None
    frames = scores_to_dataframes(score_matrices(predictions, output), features.classes, features.grid.segment_seconds,
                                  predictions.durations)
    return psds_operating_point(frames, Manifest([c for c in features.clips if c.events is not None],
                                                 list(features.classes)), scenario=1)


def event_metrics_for(settings: EventSettings, features: LabelledClips, predictions: Predictions,
                      output: str | None = None, operating_point: OperatingPoint | None = None) -> EventMetrics:
    """PSDS 1/2 and sed_eval F1s of ``predictions`` against the strong labels of ``features``, and
    the F1 at ``operating_point`` (chosen on validation) when given."""
    output = output or settings.output
    grid = features.grid
    ground_truth = Manifest(list(features.clips), list(features.classes))
    durations = predictions.durations
    matrices = score_matrices(predictions, output)
    metrics = evaluate_events(matrices, ground_truth, features.classes, grid.segment_seconds,
                              thresholds=settings.thresholds_for(features.classes),
                              median_filter_segments=settings.filter_segments(features.classes, grid.segment_seconds),
                              durations=durations)
    if operating_point is not None:
        frames = scores_to_dataframes(matrices, features.classes, grid.segment_seconds, durations)
        metrics.psds1_operating_f1 = operating_point_f1(frames, ground_truth, operating_point)
    return metrics
