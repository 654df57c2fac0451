"""Event-level (sound event detection) metrics from the model's per-segment outputs.

Two families, both computed by the reference DCASE libraries:

* threshold-free PSDS (``sed_scores_eval``), scenarios 1 and 2 of DCASE 2021+, on per-segment
  score curves;
* thresholded F1 (``sed_eval``): segment-based (1 s) and event-based (200 ms collar), on events
  decoded from the scores with :func:`weaktag.postprocess.decode_events`.

Evaluation set: the clips of the ground-truth manifest that carry strong labels
(``clip.events is not None``). Weakly labelled clips are ignored; restrict the set with
``Manifest.subset``. Ground-truth events of classes outside the evaluated class list are
ignored (the system is not asked to detect them); zero-length events are dropped.

Output segment ``t`` covers ``[t * segment_seconds, (t + 1) * segment_seconds)`` seconds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..labels import Clip, Manifest
from ..postprocess import TIME_DECIMALS, decode_events, segment_timestamps


# --------------------------------------------------------------------------- score tables


def scores_to_dataframes(
    clip_scores: Mapping[str, np.ndarray],
    classes: Sequence[str],
    segment_seconds: float,
    durations: Mapping[str, float] | None = None,
) -> dict[str, pd.DataFrame]:
    """``sed_scores_eval`` score tables: per clip, columns onset, offset, then one per class.

    ``clip_scores`` maps clip id to a (C, T) score matrix (e.g. from :func:`segment_scores`);
    T may differ between clips. With ``durations`` (seconds per clip) a table ends at the clip's end: the
    segments after it (zero padding of a shorter clip) are left out and the last offset is clipped to it.
    """
    from sed_scores_eval.base_modules.scores import create_score_dataframe

    frames: dict[str, pd.DataFrame] = {}
    for clip_id, matrix in clip_scores.items():
        matrix = np.asarray(matrix, dtype=float)
        if matrix.ndim != 2 or matrix.shape[0] != len(classes):
            raise ValueError(f"clip {clip_id!r}: scores must be (C={len(classes)}, T); got {matrix.shape}")
        timestamps = segment_timestamps(matrix.shape[1], segment_seconds)
        if durations is not None and clip_id in durations:
            end = round(float(durations[clip_id]), TIME_DECIMALS)
            covering = max(1, min(matrix.shape[1], int(np.searchsorted(timestamps, end))))  # segments starting before it
            matrix, timestamps = matrix[:, :covering], timestamps[: covering + 1].copy()
            timestamps[-1] = min(timestamps[-1], end)
        frames[clip_id] = create_score_dataframe(matrix.T, timestamps, list(classes))
    return frames


# --------------------------------------------------------------------------- PSDS


@dataclass(frozen=True)
class PsdsScenario:
    """Parameters of one PSDS operating scenario (Bilen et al. 2020; DCASE 2021+ task 4)."""

    dtc_threshold: float
    gtc_threshold: float
    cttc_threshold: float | None
    alpha_ct: float
    alpha_st: float
    max_efpr: float  # false positives per hour


#: Scenario 1 rewards accurate boundaries; scenario 2 rewards finding the class, and penalises
#: cross-triggers (detections of a class during another class's event).
PSDS_SCENARIOS: dict[int, PsdsScenario] = {
    1: PsdsScenario(dtc_threshold=0.7, gtc_threshold=0.7, cttc_threshold=None, alpha_ct=0.0, alpha_st=1.0, max_efpr=100.0),
    2: PsdsScenario(dtc_threshold=0.1, gtc_threshold=0.1, cttc_threshold=0.3, alpha_ct=0.5, alpha_st=1.0, max_efpr=100.0),
}


@dataclass
class PsdsResult:
    """PSDS value (area under the PSD-ROC up to max_efpr, normalised to [0, 1]) and per-class values."""

    value: float
    per_class: dict[str, float]
    scenario: int
    n_clips: int
    classes_without_events: list[str]


def psds(
    scores: Mapping[str, pd.DataFrame],
    ground_truth: Manifest,
    durations: Mapping[str, float] | None = None,
    scenario: int = 1,
) -> PsdsResult:
    """PSDS of score tables (from :func:`scores_to_dataframes`) against the manifest's strong labels.

    Every strongly labelled clip of ``ground_truth`` must have a score table; scores of other
    clips are ignored. ``durations`` (seconds per clip) falls back to ``clip.duration`` and then
    to the end of the clip's score table. Same-class ground-truth events that overlap or touch
    are merged first (``sed_scores_eval`` rejects them). Classes without any ground-truth event
    in the evaluation set are left out (their TPR is undefined and ``sed_scores_eval`` refuses
    them) and listed in ``classes_without_events``; that also drops their false positives.
    """
    from sed_scores_eval.intersection_based import psds as sse_psds

    if scenario not in PSDS_SCENARIOS:
        raise ValueError(f"unknown PSDS scenario {scenario!r}; choose from {sorted(PSDS_SCENARIOS)}")
    params = PSDS_SCENARIOS[scenario]
    strong = _strong_clips(ground_truth)
    missing = [clip_id for clip_id in strong if clip_id not in scores]
    if missing:
        raise ValueError(f"{len(missing)} strongly labelled clips have no scores, e.g. {missing[:5]}")
    if not strong:
        raise DataError("the ground-truth manifest has no strongly labelled clip")
    classes = list(scores[next(iter(strong))].columns[2:])
    known = set(classes)
    with_events = {e.label for clip in strong.values() for e in clip.events if e.label in known and e.offset > e.onset}
    kept = [name for name in classes if name in with_events]
    if not kept:
        raise DataError("no ground-truth event of any scored class in the strongly labelled clips")
    known = set(kept)

    eval_scores = {clip_id: _WritableScoreFrame(scores[clip_id][["onset", "offset", *kept]]) for clip_id in strong}
    eval_truth = {
        clip_id: [
            (onset, offset, label)
            for label, onset, offset in _merge_touching(
                (e.label, e.onset, e.offset) for e in clip.events if e.label in known
            )
        ]
        for clip_id, clip in strong.items()
    }
    eval_durations = {
        clip_id: _duration(clip_id, strong, durations, fallback=float(eval_scores[clip_id]["offset"].iloc[-1]))
        for clip_id in strong
    }
    value, per_class, _, _ = sse_psds(
        eval_scores,
        eval_truth,
        eval_durations,
        dtc_threshold=params.dtc_threshold,
        gtc_threshold=params.gtc_threshold,
        cttc_threshold=params.cttc_threshold,
        alpha_ct=params.alpha_ct,
        alpha_st=params.alpha_st,
        max_efpr=params.max_efpr,
        unit_of_time="hour",
        time_decimals=TIME_DECIMALS,
    )
    return PsdsResult(
        value=float(value),
        per_class={name: float(v) for name, v in per_class.items()},
        scenario=scenario,
        n_clips=len(strong),
        classes_without_events=[name for name in classes if name not in known],
    )


def _threshold_inputs(scores: Mapping[str, pd.DataFrame], ground_truth: Manifest):
    """Score tables and merged ground truth of the strongly labelled clips, restricted to the classes
    that have ground-truth events there (the others have no F1)."""
    strong = _strong_clips(ground_truth)
    if not strong:
        raise DataError("the ground-truth manifest has no strongly labelled clip")
    classes = list(scores[next(iter(strong))].columns[2:])
    with_events = {e.label for clip in strong.values() for e in clip.events if e.offset > e.onset}
    kept = [name for name in classes if name in with_events]
    known = set(kept)
    eval_scores = {clip_id: _WritableScoreFrame(scores[clip_id][["onset", "offset", *kept]]) for clip_id in strong}
    eval_truth = {
        clip_id: [(onset, offset, label) for label, onset, offset in
                  _merge_touching((e.label, e.onset, e.offset) for e in clip.events if e.label in known)]
        for clip_id, clip in strong.items()
    }
    return kept, eval_scores, eval_truth


def best_event_f1(
    scores: Mapping[str, pd.DataFrame],
    ground_truth: Manifest,
    collar_seconds: float = 0.2,
    percentage_of_length: float = 0.2,
) -> dict[str, tuple[float, float]]:
    """Per class, the best event-based F1 over all thresholds and the threshold that gives it.

    The collars are sed_eval's event-based ones (onset within ``collar_seconds``, offset within
    max(collar, ``percentage_of_length`` x event length)), computed for every threshold at once
    by ``sed_scores_eval.collar_based``; a segment is active where its score is above the
    threshold. Classes without ground-truth events in the strongly labelled clips are left out.
    """
    from sed_scores_eval import collar_based

    kept, eval_scores, eval_truth = _threshold_inputs(scores, ground_truth)
    if not kept:
        return {}
    f_score, _, _, thresholds, _ = collar_based.best_fscore(
        eval_scores, eval_truth, onset_collar=collar_seconds, offset_collar=collar_seconds,
        offset_collar_rate=percentage_of_length, time_decimals=TIME_DECIMALS)
    return {name: (float(f_score[name]), float(thresholds[name])) for name in kept}


@dataclass(frozen=True)
class OperatingPoint:
    """Per-class thresholds at the best F1 under a PSDS scenario's detection criteria (DTC/GTC
    intersection matching), and that macro F1: the thresholded system a PSDS value stands for."""

    scenario: int
    thresholds: dict[str, float]
    f1_macro: float

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "thresholds": dict(self.thresholds),
                "f1_macro": None if not math.isfinite(self.f1_macro) else self.f1_macro}


def psds_operating_point(scores: Mapping[str, pd.DataFrame], ground_truth: Manifest,
                         scenario: int = 1) -> OperatingPoint:
    """The per-class thresholds with the best intersection-based F1 under ``scenario``'s DTC/GTC
    (``sed_scores_eval.intersection_based.best_fscore``): choose them on validation, then score
    test with :func:`operating_point_f1`."""
    from sed_scores_eval import intersection_based

    params = PSDS_SCENARIOS[scenario]
    kept, eval_scores, eval_truth = _threshold_inputs(scores, ground_truth)
    if not kept:
        return OperatingPoint(scenario, {}, float("nan"))
    f_score, _, _, thresholds, _ = intersection_based.best_fscore(
        eval_scores, eval_truth, dtc_threshold=params.dtc_threshold, gtc_threshold=params.gtc_threshold,
        time_decimals=TIME_DECIMALS)
    return OperatingPoint(scenario, {k: float(thresholds[k]) for k in kept}, float(f_score["macro_average"]))


def operating_point_f1(scores: Mapping[str, pd.DataFrame], ground_truth: Manifest, point: OperatingPoint) -> float:
    """Macro intersection-based F1 of ``scores`` at ``point``'s thresholds (classes it has no
    threshold for, or without events here, are left out)."""
    from sed_scores_eval import intersection_based

    params = PSDS_SCENARIOS[point.scenario]
    kept, eval_scores, eval_truth = _threshold_inputs(scores, ground_truth)
    kept = [k for k in kept if k in point.thresholds and math.isfinite(point.thresholds[k])]
    if not kept:
        return float("nan")
    eval_scores = {k: v[["onset", "offset", *kept]] for k, v in eval_scores.items()}
    known = set(kept)
    eval_truth = {k: [e for e in v if e[2] in known] for k, v in eval_truth.items()}
    f_score, *_ = intersection_based.fscore(
        eval_scores, eval_truth, {k: point.thresholds[k] for k in kept}, dtc_threshold=params.dtc_threshold,
        gtc_threshold=params.gtc_threshold, time_decimals=TIME_DECIMALS)
    return float(f_score["macro_average"])


class _WritableScoreFrame(pd.DataFrame):
    """A score table whose ``to_numpy()`` is always writeable.

    Workaround: under pandas >= 3 (copy-on-write) ``DataFrame.to_numpy()`` may return a
    read-only view, and sed_scores_eval 0.0.4 hands that array to a Cython function typed
    ``double[:]``, which fails with "buffer source array is read-only". Fixed upstream in
    fgnt/sed_scores_eval PR #17 (after 0.0.4); remove this class once that release is pinned.
    """

    @property
    def _constructor(self) -> type["_WritableScoreFrame"]:
        return _WritableScoreFrame

    def to_numpy(self, *args: Any, **kwargs: Any) -> np.ndarray:  # type: ignore[override]
        array = super().to_numpy(*args, **kwargs)
        return array if array.flags.writeable else array.copy()


# --------------------------------------------------------------------------- sed_eval F1


@dataclass
class SedEvalScores:
    """Thresholded F1 from sed_eval: segment-based (1 s segments) and event-based (collar)."""

    segment_f1_micro: float
    segment_f1_macro: float
    event_f1_micro: float
    event_f1_macro: float
    n_clips: int


def sed_eval_metrics(
    estimated: Mapping[str, Sequence[Any]],
    ground_truth: Manifest,
    classes: Sequence[str] | None = None,
    durations: Mapping[str, float] | None = None,
    segment_seconds: float = 1.0,
    collar_seconds: float = 0.2,
    percentage_of_length: float = 0.2,
) -> SedEvalScores:
    """Segment- and event-based F1 of decoded events against the manifest's strong labels.

    ``estimated`` maps clip id to events with ``label``/``onset``/``offset`` attributes (e.g.
    :class:`DetectedEvent`) or ``(label, onset, offset, ...)`` tuples. A strongly labelled clip
    missing from ``estimated`` counts as "no detections", so its events are misses. Micro F1
    pools all classes; macro F1 averages per-class F1 over the classes that have reference
    events (sed_eval's per-class recall, hence F1, is NaN without them; a class with reference
    events but no detections counts as F1 = 0). ``durations`` (else ``clip.duration``) sets the
    evaluated length of each clip for the segment-based metric.
    """
    import sed_eval

    classes = list(ground_truth.classes if classes is None else classes)
    known = set(classes)
    strong = _strong_clips(ground_truth)
    if not strong:
        raise DataError("the ground-truth manifest has no strongly labelled clip")

    segment_based = sed_eval.sound_event.SegmentBasedMetrics(
        event_label_list=classes, time_resolution=float(segment_seconds)
    )
    # Its constructor does not forward this option (EventBasedMetrics does). Without it, a class
    # with reference events but no system output has precision 0/0 = NaN, hence F1 = NaN, and
    # drops out of the macro mean instead of counting as F1 = 0.
    segment_based.empty_system_output_handling = "zero_score"
    event_based = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=classes,
        t_collar=float(collar_seconds),
        percentage_of_length=float(percentage_of_length),
        empty_system_output_handling="zero_score",
    )
    for clip_id, clip in strong.items():
        reference = [_sed_eval_event(clip_id, e.label, e.onset, e.offset) for e in clip.events if e.label in known]
        system_triplets = [_label_onset_offset(e) for e in estimated.get(clip_id, ())]
        system = [_sed_eval_event(clip_id, *t) for t in system_triplets if t[0] in known]
        latest_offset = max((event["offset"] for event in reference + system), default=0.0)
        length = _duration(clip_id, strong, durations, fallback=latest_offset)
        segment_based.evaluate(reference, system, evaluated_length_seconds=length)
        event_based.evaluate(reference, system)

    def f1(results: dict[str, Any]) -> float:
        return float(results["f_measure"]["f_measure"])

    return SedEvalScores(
        segment_f1_micro=f1(segment_based.results_overall_metrics()),
        segment_f1_macro=f1(segment_based.results_class_wise_average_metrics()),
        event_f1_micro=f1(event_based.results_overall_metrics()),
        event_f1_macro=f1(event_based.results_class_wise_average_metrics()),
        n_clips=len(strong),
    )


def _sed_eval_event(clip_id: str, label: str, onset: float, offset: float) -> dict[str, Any]:
    return {"filename": clip_id, "event_label": label, "onset": float(onset), "offset": float(offset)}


def _label_onset_offset(event: Any) -> tuple[str, float, float]:
    if hasattr(event, "label"):
        return event.label, float(event.onset), float(event.offset)
    label, onset, offset = event[:3]
    return label, float(onset), float(offset)


# --------------------------------------------------------------------------- all together


@dataclass
class EventMetrics:
    """Event-level summary of one system: PSDS (scenarios 1, 2) and sed_eval F1s (None = not computed)."""

    psds1: float | None = None
    psds2: float | None = None
    segment_f1_micro: float | None = None
    segment_f1_macro: float | None = None
    event_f1_micro: float | None = None
    event_f1_macro: float | None = None
    # intersection-based F1 (PSDS1's DTC/GTC) at the PSDS1 operating point chosen on validation
    psds1_operating_f1: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {k: (None if v is None or not math.isfinite(v) else float(v)) for k, v in asdict(self).items()}


def evaluate_events(
    clip_scores: Mapping[str, np.ndarray],
    ground_truth: Manifest,
    classes: Sequence[str],
    segment_seconds: float,
    thresholds: np.ndarray | float | None = None,
    median_filter_segments: int | Sequence[int] = 1,
    durations: Mapping[str, float] | None = None,
    stay_on_fractions: float | Sequence[float] = 1.0,
    max_gap_segments: int | Sequence[int] = 0,
    min_duration_segments: int | Sequence[int] = 0,
) -> EventMetrics:
    """PSDS 1 and 2 on the raw score curves, plus sed_eval F1s on decoded events when thresholds are given.

    ``clip_scores``: clip id -> (C, T) scores, e.g. ``segment_scores("segment", ...)`` per clip; the
    decoding options are :func:`~weaktag.postprocess.decode_events`'.
    """
    frames = scores_to_dataframes(clip_scores, classes, segment_seconds, durations)
    result = EventMetrics(
        psds1=psds(frames, ground_truth, durations, scenario=1).value,
        psds2=psds(frames, ground_truth, durations, scenario=2).value,
    )
    if thresholds is not None:
        decoded = {
            clip_id: decode_events(matrix, classes, thresholds, segment_seconds, median_filter_segments,
                                   duration=None if durations is None else durations.get(clip_id),
                                   stay_on_fractions=stay_on_fractions, max_gap_segments=max_gap_segments,
                                   min_duration_segments=min_duration_segments)
            for clip_id, matrix in clip_scores.items()
        }
        sed = sed_eval_metrics(decoded, ground_truth, classes=classes, durations=durations)
        result.segment_f1_micro = sed.segment_f1_micro
        result.segment_f1_macro = sed.segment_f1_macro
        result.event_f1_micro = sed.event_f1_micro
        result.event_f1_macro = sed.event_f1_macro
    return result


# --------------------------------------------------------------------------- shared helpers


def _strong_clips(manifest: Manifest) -> dict[str, Clip]:
    return {clip.clip_id: clip for clip in manifest if clip.events is not None}


def _duration(
    clip_id: str, strong: Mapping[str, Clip], durations: Mapping[str, float] | None, fallback: float | None
) -> float | None:
    if durations is not None and clip_id in durations:
        return float(durations[clip_id])
    if strong[clip_id].duration is not None:
        return float(strong[clip_id].duration)
    return fallback


def _merge_touching(events: Iterable[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Merge same-class events that overlap or touch; drop zero-length ones."""
    merged: list[tuple[str, float, float]] = []
    by_label: dict[str, list[tuple[float, float]]] = {}
    for label, onset, offset in events:
        if offset > onset:
            by_label.setdefault(label, []).append((onset, offset))
    for label, spans in by_label.items():
        spans.sort()
        current_on, current_off = spans[0]
        for onset, offset in spans[1:]:
            if onset <= current_off:
                current_off = max(current_off, offset)
            else:
                merged.append((label, current_on, current_off))
                current_on, current_off = onset, offset
        merged.append((label, current_on, current_off))
    return sorted(merged, key=lambda e: (e[1], e[0]))
