"""Settings chosen on validation, and event metrics, for a trained model's predictions on labelled clips
(a prepared feature set of fixed-length crops, or whole recordings: :mod:`.predict`).

``choose_event_settings`` picks per-class event thresholds on the strongly labelled validation
clips when training ends (they are stored in the checkpoint): for segment-level F1 (the default,
with a fixed median filter) or, with ``objective="event_f1"``, a threshold and a median-filter
length per class for event-based F1 (and, on request, a maximum gap, a minimum duration and a
hysteresis fraction). ``event_metrics_for`` scores a model's predictions on a
strongly labelled set with those settings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import median_filter

from ..labels import Manifest
from ..metrics.events import (EventMetrics, OperatingPoint, best_event_f1, evaluate_events, operating_point_f1, psds,
                              psds_operating_point, scores_to_dataframes)
from ..metrics.tagging import choose_thresholds
from ..postprocess import (ATTENTION_KINDS, EVENT_OBJECTIVES, OUTPUT_KINDS, EventSettings, decision_curves,
                           segment_scores)
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
#: with ``durations``: gaps merged (at most this many segments) and minimum event durations (events
#: shorter than this many segments dropped: 2 drops single segments) tried per class; 0 = off
MAX_GAP_CANDIDATES = (0, 1, 2, 4)
MIN_DURATION_CANDIDATES = (0, 2, 3, 5)
#: with ``hysteresis``: lower "stay on" thresholds tried per class, as fractions of the threshold
#: (the first candidate of each tuple is "off")
STAY_ON_CANDIDATES = (1.0, 0.75, 0.5)


def choose_event_settings(features: LabelledClips, predictions: Predictions, output: str = "segment",
                          median_filter_seconds: float = EventSettings.median_filter_seconds,
                          objective: str = "segment_f1", durations: bool = False,
                          hysteresis: bool = False) -> EventSettings:
    """Per-class event thresholds chosen on strongly labelled validation clips.

    ``segment_f1``: each (clip, segment) cell is one sample, with Y from the strong labels as its
    target: the same rule the tagging thresholds use, applied to time; the median filter stays
    ``median_filter_seconds``. ``event_f1``: see :func:`choose_for_event_f1` (``durations`` and
    ``hysteresis`` are chosen for event F1 only). Without strong validation labels every threshold is 0.5.
    """
    if objective not in EVENT_OBJECTIVES:
        raise ValueError(f"event threshold objective must be one of {EVENT_OBJECTIVES}, not {objective!r}")
    if (durations or hysteresis) and objective != "event_f1":
        raise ValueError("event durations and hysteresis are chosen for event-based F1: use objective='event_f1'")
    strong = [i for i, clip in enumerate(features.clips) if clip.events is not None]
    if not strong:
        return EventSettings(output, [0.5] * len(features.classes), median_filter_seconds)
    if objective == "event_f1":
        return choose_for_event_f1(features, predictions, output, median_filter_seconds, durations=durations,
                                   hysteresis=hysteresis)
    scores = score_matrices(predictions, output)
    values = [scores[features.clips[i].clip_id] for i in strong]  # (C, T) each
    targets = [features.grid.segment_labels(features.clips[i].events, features.classes, v.shape[-1])
               for i, v in zip(strong, values)]
    # every (clip, segment) cell is a sample: (sum of T, C)
    thresholds = choose_thresholds(np.concatenate([y.T for y in targets]), np.concatenate([v.T for v in values]))
    return EventSettings(output, [float(x) for x in thresholds], median_filter_seconds)


@dataclass
class _Choice:
    """One class's best decoding so far: its validation event F1 and the settings that give it."""

    f1: float
    threshold: float
    window: int  # median filter, segments
    gap: int = 0  # segments
    shortest: int = 0  # segments
    stay_on: float = 1.0


def choose_for_event_f1(features: LabelledClips, predictions: Predictions, output: str,
                        default_filter_seconds: float = EventSettings.median_filter_seconds,
                        filter_candidates: tuple[float, ...] = MEDIAN_FILTER_CANDIDATES,
                        durations: bool = False, hysteresis: bool = False) -> EventSettings:
    """A threshold and a median-filter length per class with the best event-based F1 (sed_eval's
    200 ms / 20 % collars) on the strongly labelled validation clips; with ``durations`` also a
    maximum gap and a minimum event duration, with ``hysteresis`` a stay-on fraction.

    Every decoding step commutes with thresholding (:func:`~weaktag.postprocess.decision_curves`),
    so each candidate's curves are searched at every threshold at once (``sed_scores_eval``), which
    gives what :func:`~weaktag.postprocess.decode_events` decodes. That pass costs most of the
    search, so the search is coordinate-wise (it runs in every compare trial): median filters first,
    then gaps with each class's filter, then minimum durations with its gap, then the stay-on
    fractions with the rest fixed: 8 passes more than the filters' 5 with both options. A candidate
    replaces the best only with a higher F1, so ties keep the shorter filter and the steps off. A
    class without validation events keeps 0.5, ``default_filter_seconds`` and the steps off.
    """
    grid = features.grid
    ground_truth = Manifest([c for c in features.clips if c.events is not None], list(features.classes))
    raw = score_matrices(predictions, output)
    n_classes = len(features.classes)

    unfiltered = _Choice(0.0, 0.5, 1)  # a class no candidate has scored yet: the curves searched use window 1

    def search(candidate: dict[str, np.ndarray], update) -> None:
        frames = scores_to_dataframes(candidate, features.classes, grid.segment_seconds, predictions.durations)
        for name, (f1, threshold) in best_event_f1(frames, ground_truth).items():
            if np.isfinite(threshold) and (name not in best or f1 > best[name].f1):
                best[name] = update(best.get(name, unfiltered), f1, threshold)

    best: dict[str, _Choice] = {}
    for window in sorted({grid.median_filter_segments(s) for s in filter_candidates}):
        filtered = {k: median_filter(v, size=(1, window), mode="nearest") if window > 1 else v for k, v in raw.items()}
        search(filtered, lambda _, f1, thr, window=window: _Choice(f1, thr, window))

    def steps(attribute: str) -> np.ndarray:
        return np.array([getattr(best.get(c, unfiltered), attribute) for c in features.classes])

    if durations:
        windows = steps("window")
        for gap in MAX_GAP_CANDIDATES[1:]:  # 0: the median-filter search above
            curves = {k: decision_curves(v, np.ones(n_classes), windows, np.full(n_classes, gap),
                                         np.zeros(n_classes, dtype=int)) for k, v in raw.items()}
            search(curves, lambda old, f1, thr, gap=gap: replace(old, f1=f1, threshold=thr, gap=gap))
        gaps = steps("gap")
        for shortest in MIN_DURATION_CANDIDATES[1:]:
            curves = {k: decision_curves(v, np.ones(n_classes), windows, gaps, np.full(n_classes, shortest))
                      for k, v in raw.items()}
            search(curves, lambda old, f1, thr, shortest=shortest: replace(old, f1=f1, threshold=thr,
                                                                         shortest=shortest))
    if hysteresis:
        windows, gaps, shortest = steps("window"), steps("gap"), steps("shortest")
        for fraction in STAY_ON_CANDIDATES[1:]:  # 1: the searches above
            curves = {k: decision_curves(v, np.full(n_classes, fraction), windows, gaps, shortest)
                      for k, v in raw.items()}
            search(curves, lambda old, f1, thr, fraction=fraction: replace(old, f1=f1, threshold=thr, stay_on=fraction))
    return _event_settings(output, best, features.classes, grid.segment_seconds,
                           grid.median_filter_segments(default_filter_seconds), durations, hysteresis)


def _event_settings(output: str, best: dict[str, _Choice], classes: list[str], segment_seconds: float,
                    default_window: int, durations: bool, hysteresis: bool) -> EventSettings:
    """The chosen settings, in seconds (grid-independent); the steps not searched stay at their defaults."""
    def seconds(segments: list[int]) -> list[float]:
        return [round(float(n * segment_seconds), 6) for n in segments]

    default = _Choice(0.0, 0.5, default_window)
    chosen = [best.get(c, default) for c in classes]
    settings = EventSettings(output, [float(x.threshold) for x in chosen], seconds([x.window for x in chosen]))
    if durations:
        settings.max_gap_seconds = seconds([x.gap for x in chosen])
        settings.min_duration_seconds = seconds([x.shortest for x in chosen])
    if hysteresis:
        settings.stay_on_fraction = [float(x.stay_on) for x in chosen]
    return settings


def choose_event_output(features: LabelledClips, predictions: Predictions,
                        candidates: tuple[str, ...] = OUTPUT_KINDS, objective: str = "segment_f1",
                        durations: bool = False, hysteresis: bool = False) -> tuple[EventSettings, dict[str, float]]:
    """The output kind with the best PSDS1 on the strongly labelled validation clips, with its settings.

    Returns the settings (thresholds chosen for that kind as :func:`choose_event_settings` does)
    and the validation PSDS1 of every candidate; ties keep the earlier candidate (X^a first).
    Without strong validation labels (or attention, for the attention kinds) X^a is kept.
    """
    if predictions.attention is None:
        candidates = tuple(k for k in candidates if k not in ATTENTION_KINDS) or ("segment",)
    if not any(clip.events for clip in features.clips):
        return choose_event_settings(features, predictions, "segment", objective=objective, durations=durations,
                                     hysteresis=hysteresis), {}
    ground_truth = Manifest([c for c in features.clips if c.events is not None], list(features.classes))
    scores: dict[str, float] = {}
    for kind in candidates:
        frames = scores_to_dataframes(score_matrices(predictions, kind), features.classes, features.grid.segment_seconds,
                                      predictions.durations)
        scores[kind] = psds(frames, ground_truth, predictions.durations, scenario=1).value
    best = max(candidates, key=lambda k: (scores[k], -candidates.index(k)))
    return choose_event_settings(features, predictions, best, objective=objective, durations=durations,
                                 hysteresis=hysteresis), scores


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
    decoding = settings.decoding(features.classes, grid.segment_seconds)
    metrics = evaluate_events(matrices, ground_truth, features.classes, grid.segment_seconds,
                              thresholds=decoding.thresholds,
                              median_filter_segments=decoding.median_filter_segments, durations=durations,
                              stay_on_fractions=decoding.stay_on_fractions, max_gap_segments=decoding.max_gap_segments,
                              min_duration_segments=decoding.min_duration_segments)
    if operating_point is not None:
        frames = scores_to_dataframes(matrices, features.classes, grid.segment_seconds, durations)
        metrics.psds1_operating_f1 = operating_point_f1(frames, ground_truth, operating_point)
    return metrics
