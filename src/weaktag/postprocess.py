"""From segment outputs to decisions: detection scores, thresholds, median filter, events.

Used by both inference (``weaktag tag``) and evaluation (event metrics, calibration on
validation), so a checkpoint's event settings mean the same thing everywhere. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import median_filter

from .errors import UsageError
from .geometry import median_filter_length

OUTPUT_KINDS: tuple[str, ...] = ("segment", "attention", "product", "gated-segment", "gated-attention")
#: the kinds that read the attention matrix (a mean-pooling model has none)
ATTENTION_KINDS: tuple[str, ...] = ("attention", "product", "gated-attention")
#: what event thresholds are chosen for on validation (weaktag.training.calibration)
EVENT_OBJECTIVES: tuple[str, ...] = ("segment_f1", "event_f1")

#: decimals kept on segment boundaries, so 3 * 0.16 is 0.48 and matches annotations exactly
TIME_DECIMALS = 6
DEFAULT_THRESHOLD = 0.5


@dataclass
class EventSettings:
    """How segment outputs become events (chosen on validation, stored in the checkpoint)."""

    output: str = "segment"  # which matrix scores time: "segment" (X^a), "attention" or "product"
    thresholds: list[float] = field(default_factory=list)  # per class (or one for all); empty: 0.5
    # one length for every class, or one per class (chosen on validation with the thresholds)
    median_filter_seconds: float | list[float] = 0.48  # 3 segments of 0.16 s
    # hysteresis: an event lasts while the score stays at or above this fraction of its class's
    # threshold (one value, or one per class); 1 = off (no lower "stay on" threshold)
    stay_on_fraction: float | list[float] = 1.0
    # two events of a class at most this far apart become one (one value, or one per class); 0 = off
    max_gap_seconds: float | list[float] = 0.0
    # events shorter than this are dropped (one value, or one per class); 0 = off
    min_duration_seconds: float | list[float] = 0.0

    def to_dict(self) -> dict:
        return {"output": self.output, "thresholds": list(self.thresholds),
                "median_filter_seconds": self.median_filter_seconds, "stay_on_fraction": self.stay_on_fraction,
                "max_gap_seconds": self.max_gap_seconds, "min_duration_seconds": self.min_duration_seconds}

    def decoding(self, classes: Sequence[str], segment_seconds: float) -> "Decoding":
        """These settings per class, in whole segments of a grid of ``segment_seconds``."""
        return Decoding(self.thresholds_for(classes), self.filter_segments(classes, segment_seconds),
                        _stay_on_fractions(self.stay_on_fraction, classes),
                        _whole_segments(self.max_gap_seconds, classes, segment_seconds, "maximum gaps"),
                        _whole_segments(self.min_duration_seconds, classes, segment_seconds, "minimum durations"))

    def filter_segments(self, classes: Sequence[str], segment_seconds: float) -> np.ndarray:
        """Median filter windows in segments, one per class (odd, >= 1)."""
        seconds = np.atleast_1d(np.asarray(self.median_filter_seconds, dtype=float))
        if seconds.shape not in ((1,), (len(classes),)):
            raise UsageError(f"median filter lengths: expected 1 or {len(classes)} values, got {len(seconds)}")
        windows = [median_filter_length(float(x), segment_seconds) for x in seconds]
        return np.broadcast_to(np.asarray(windows, dtype=int), (len(classes),)).copy()

    def thresholds_for(self, classes: Sequence[str]) -> np.ndarray:
        """One threshold per class: the stored list, one shared value, or 0.5 when none is stored."""
        if not self.thresholds:
            return np.full(len(classes), DEFAULT_THRESHOLD)
        thr = np.asarray(self.thresholds, dtype=float)
        if thr.shape == (1,):
            return np.full(len(classes), float(thr[0]))
        if thr.shape != (len(classes),):
            raise UsageError(f"event thresholds: expected {len(classes)} values (one per class), got {len(thr)}")
        return thr


def _per_class(value: float | Sequence[float], classes: Sequence[str], what: str) -> np.ndarray:
    values = np.atleast_1d(np.asarray(value, dtype=float))
    if values.shape not in ((1,), (len(classes),)):
        raise UsageError(f"{what}: expected 1 or {len(classes)} values, got {len(values)}")
    return np.broadcast_to(values, (len(classes),)).copy()


def _stay_on_fractions(value: float | Sequence[float], classes: Sequence[str]) -> np.ndarray:
    values = _per_class(value, classes, "stay-on fractions")
    if np.any(~(values > 0)) or np.any(values > 1):
        raise UsageError(f"stay-on fractions (of the event thresholds) must be in (0, 1], got {values.tolist()}")
    return values


def _whole_segments(seconds: float | Sequence[float], classes: Sequence[str], segment_seconds: float,
                    what: str) -> np.ndarray:
    values = _per_class(seconds, classes, what)
    if np.any(values < 0) or not np.all(np.isfinite(values)):
        raise UsageError(f"{what} must be finite and >= 0 seconds, got {values.tolist()}")
    return np.round(values / segment_seconds).astype(int)


@dataclass(frozen=True)
class Decoding:
    """:class:`EventSettings` per class on one grid: what :func:`decode_events` applies."""

    thresholds: np.ndarray  # (C,)
    median_filter_segments: np.ndarray  # (C,) odd, >= 1
    stay_on_fractions: np.ndarray  # (C,) in (0, 1]; 1: no hysteresis
    max_gap_segments: np.ndarray  # (C,) >= 0; 0: no merging
    min_duration_segments: np.ndarray  # (C,) >= 0; 0 or 1: nothing dropped


# --------------------------------------------------------------------------- score curves


def segment_scores(output_kind: str, segment_probs: np.ndarray, attention: np.ndarray | None = None,
                   clip_probs: np.ndarray | None = None) -> np.ndarray:
    """Per-class, per-segment detection scores (…, C, T) from one model's outputs.

    * ``"segment"``: X^a, the segment-level class probability. Recommended default: it is a
      probability per segment, so one threshold means the same thing in every clip.
    * ``"attention"``: A / max_t A per class. A is a distribution over time (sums to 1 over T),
      so its scale depends on clip length and on how spread out the event is; dividing by the
      per-class maximum puts every clip's peak at 1. It says *where* a class is most likely,
      not *whether* it is present: a class absent from the clip still peaks at 1.
    * ``"product"``: X^a * A / max_t A, segment probability gated by relative attention; keeps
      X^a's calibration but suppresses segments the attention ignores.
    * ``"gated-segment"``: X^a * y, and ``"gated-attention"``: (A / max_t A) * y, with y the
      clip probability of the class (``clip_probs``; for a long file, the whole file's). The
      clip-level decision gates time: a class the clip tagger rejects cannot fire events,
      which is what keeps false classes off the detection curve (PSDS's cross-trigger and
      false-positive rates). ``"gated-attention"`` says where with A and whether with y.

    Arrays may be (C, T) or batched (B, C, T); time is the last axis; ``clip_probs`` is (C,)
    or (B, C).
    """
    if output_kind not in OUTPUT_KINDS:
        raise ValueError(f"unknown output kind {output_kind!r}; choose from {OUTPUT_KINDS}")
    segment_probs = np.asarray(segment_probs, dtype=float)
    gate = None
    if output_kind.startswith("gated-"):
        if clip_probs is None:
            raise ValueError(f"output kind {output_kind!r} needs the clip probabilities, but clip_probs is None")
        gate = np.asarray(clip_probs, dtype=float)[..., None]
        if gate.shape != segment_probs.shape[:-1] + (1,):
            raise ValueError(f"clip_probs {gate.shape[:-1]} do not match segment_probs {segment_probs.shape}")
    if output_kind == "segment":
        return segment_probs
    if output_kind == "gated-segment":
        return segment_probs * gate
    if attention is None:
        raise UsageError(f"output kind {output_kind!r} needs the attention matrix, but attention is None")
    attention = np.asarray(attention, dtype=float)
    if attention.shape != segment_probs.shape:
        raise ValueError(f"attention {attention.shape} and segment_probs {segment_probs.shape} differ in shape")
    peak = attention.max(axis=-1, keepdims=True)
    relative = np.divide(attention, peak, out=np.zeros_like(attention), where=peak > 0)
    if output_kind == "attention":
        return relative
    if output_kind == "gated-attention":
        return relative * gate
    return segment_probs * relative


def segment_timestamps(num_segments: int, segment_seconds: float) -> np.ndarray:
    """Segment boundaries in seconds, (T + 1,): onsets of every segment plus the last offset."""
    return np.round(np.arange(num_segments + 1) * float(segment_seconds), TIME_DECIMALS)


# --------------------------------------------------------------------------- thresholds


def parse_thresholds(spec: str, classes: Sequence[str],
                     defaults: np.ndarray | Sequence[float] | None = None) -> list[float]:
    """Threshold flag value -> one threshold per class.

    ``"0.3"``: every class; ``"0.3,0.5,..."``: one per class in class order;
    ``"dog=0.3,siren=0.6"``: those classes, the others keep ``defaults`` (else 0.5).
    """
    items = [item.strip() for item in spec.split(",") if item.strip()]
    if not items:
        raise UsageError("empty threshold specification")
    if all("=" in item for item in items):
        base = DEFAULT_THRESHOLD if defaults is None or len(defaults) == 0 else defaults
        out = list(np.broadcast_to(np.asarray(base, dtype=float), (len(classes),)))
        index = {name: i for i, name in enumerate(classes)}
        for item in items:
            name, _, value = item.rpartition("=")
            if name not in index:
                raise UsageError(f"threshold for unknown class {name!r}; classes: {', '.join(classes)}")
            out[index[name]] = _number(value, spec)
        return [float(v) for v in out]
    if any("=" in item for item in items):
        raise UsageError(f"threshold specification {spec!r} mixes label=value items with bare values")
    values = [_number(v, spec) for v in items]
    if len(values) == 1:
        return values * len(classes)
    if len(values) != len(classes):
        raise UsageError(f"{len(values)} thresholds given for {len(classes)} classes")
    return values


def _number(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"threshold {text!r} in {spec!r} is not a number") from None


# --------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class DetectedEvent:
    """One decoded event: class label, times in seconds, and its max (or mean) segment score."""

    label: str
    onset: float
    offset: float
    score: float


def decode_events(
    scores: np.ndarray,
    classes: Sequence[str],
    thresholds: np.ndarray | float,
    segment_seconds: float,
    median_filter_segments: int | Sequence[int] = 1,
    score_reduce: Literal["max", "mean"] = "max",
    duration: float | None = None,
    stay_on_fractions: float | Sequence[float] = 1.0,
    max_gap_segments: int | Sequence[int] = 0,
    min_duration_segments: int | Sequence[int] = 0,
) -> list[DetectedEvent]:
    """Events of one clip from its (C, T) score matrix.

    Per class, in this order (each step optional but the first; the options are per class or shared):

    1. threshold: a segment is active when ``score >= thresholds[c]``; with hysteresis
       (``stay_on_fractions`` r < 1) an event starts where the score reaches the threshold and
       lasts while it stays at or above r x threshold (:func:`hysteresis_curves`);
    2. median filter of the activity along time (window ``median_filter_segments``, odd; 1 = off),
       which fills short gaps and drops short blips;
    3. gap merging: two events at most ``max_gap_segments`` apart become one (0 = off);
    4. minimum duration: events shorter than ``min_duration_segments`` are dropped (0 = off).

    The order follows the DCASE baselines: DESED_task (``batched_decode_preds``) thresholds and
    median filters; dcase_util's ``MetaDataContainer.process_events`` then applies a minimum
    length and a minimum gap. It drops short events before merging; here gaps are merged first,
    so an event broken into short pieces is kept whole rather than lost piece by piece.

    Each run of active segments becomes one event from the first segment's onset to the last
    segment's offset, scored by the max (or mean) of the raw scores over the run. Events are
    sorted by onset, then class order. With ``duration`` (seconds) an offset is clipped to it (the
    last segment may pass the recording's end) and an event that starts at or after it is dropped.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[0] != len(classes):
        raise ValueError(f"scores must be (C={len(classes)}, T); got {scores.shape}")
    if score_reduce not in ("max", "mean"):
        raise ValueError(f"score_reduce must be 'max' or 'mean', not {score_reduce!r}")
    n_classes = scores.shape[0]
    thresholds_c = np.broadcast_to(np.asarray(thresholds, dtype=float), (n_classes,))
    windows = np.broadcast_to(np.asarray(median_filter_segments), (n_classes,))
    for window in windows:
        if int(window) != window or window < 1 or window % 2 == 0:
            raise ValueError(f"median filter windows must be odd positive integers; got {window}")
    stay_on = _checked_fractions(stay_on_fractions, n_classes)
    gaps = _checked_counts(max_gap_segments, n_classes, "maximum gaps")
    shortest = _checked_counts(min_duration_segments, n_classes, "minimum durations")

    # A class with no segment at or above its threshold has no event whatever the filters (the
    # median of zeros is zero; hysteresis and merging only extend events that started): skip the
    # per-class work for the (usually many) silent classes.
    activity = scores >= thresholds_c[:, None]
    active = np.flatnonzero(activity.any(axis=1))
    if len(active) == 0:
        return []
    if np.all(stay_on[active] == 1.0) and np.all(gaps[active] == 0) and np.all(shortest[active] <= 1):
        activity = _median_filtered_activity(activity[active], windows[active])
    else:
        curves = decision_curves(scores[active], stay_on[active], windows[active], gaps[active], shortest[active])
        activity = curves >= thresholds_c[active, None]
    reduce = np.max if score_reduce == "max" else np.mean
    events: list[tuple[int, DetectedEvent]] = []
    for row, c in enumerate(active):
        for start, stop in _runs(activity[row]):
            if duration is not None and start * segment_seconds >= duration:
                continue
            events.append((int(c), DetectedEvent(
                label=classes[c],
                onset=round(start * segment_seconds, TIME_DECIMALS),
                offset=round(stop * segment_seconds if duration is None else min(stop * segment_seconds, duration),
                             TIME_DECIMALS),
                score=float(reduce(scores[c, start:stop])),
            )))
    events.sort(key=lambda item: (item[1].onset, item[0]))
    return [event for _, event in events]


def _median_filtered_activity(activity: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Thresholded (R, T) activity median filtered along time, row r with ``windows[r]``."""
    if np.all(windows == windows[0]):
        # one filter call for the whole matrix (size 1 across classes): the same result as
        # filtering each class, without a Python-level call per class on the inference hot path
        if windows[0] > 1:
            activity = median_filter(activity.astype(np.uint8), size=(1, int(windows[0])), mode="nearest").astype(bool)
        return activity
    for row in range(len(activity)):
        if windows[row] > 1:
            activity[row] = median_filter(activity[row].astype(np.uint8), size=int(windows[row]),
                                          mode="nearest").astype(bool)
    return activity


def _checked_fractions(values: float | Sequence[float], n_classes: int) -> np.ndarray:
    fractions = np.broadcast_to(np.asarray(values, dtype=float), (n_classes,))
    if np.any(~(fractions > 0)) or np.any(fractions > 1):
        raise ValueError(f"stay-on fractions must be in (0, 1]; got {fractions.tolist()}")
    return fractions


def _checked_counts(values: int | Sequence[int], n_classes: int, what: str) -> np.ndarray:
    counts = np.broadcast_to(np.asarray(values), (n_classes,))
    if np.any(counts < 0) or np.any(counts != np.round(counts)):
        raise ValueError(f"{what} must be whole numbers of segments >= 0; got {counts.tolist()}")
    return counts.astype(int)


# --------------------------------------------------------------------------- decision curves

#: below every score (scores are probabilities or relative attention, >= 0): what lies outside a
#: clip, for the gap and duration steps, so that neither reaches past the clip's ends
OUTSIDE_CLIP = -1.0


def decision_curves(scores: np.ndarray, stay_on_fractions: np.ndarray, median_filter_segments: np.ndarray,
                    max_gap_segments: np.ndarray, min_duration_segments: np.ndarray) -> np.ndarray:
    """(R, T) curves whose rows, thresholded at any value, give :func:`decode_events`' activity at that
    threshold (parameters per row): hysteresis, median filter, gap merging, minimum duration.

    Every step commutes with thresholding (the median and the flat morphological closing and
    opening are order filters; :func:`hysteresis_curves` is built to), so one curve per class stands
    for every threshold at once: calibration searches all thresholds of these curves in one pass.
    """
    curves = hysteresis_curves(scores, stay_on_fractions)
    curves = _by_row_group(curves, median_filter_segments,
                           lambda x, n: median_filter(x, size=(1, n), mode="nearest") if n > 1 else x)
    curves = _by_row_group(curves, max_gap_segments, lambda x, n: _close(x, n + 1))
    return _by_row_group(curves, min_duration_segments, _open)


def hysteresis_curves(scores: np.ndarray, stay_on_fractions: np.ndarray) -> np.ndarray:
    """(R, T) curves h with ``h[t] >= thr`` exactly when the score reached ``thr`` at some i <= t and
    stayed at or above ``r * thr`` from i to t (r: the row's stay-on fraction; 1 gives the scores).

    h[t] = max(s[t], min(h[t-1], s[t] / r)): by induction, h[t] >= thr when s[t] >= thr (an event
    starts) or when h[t-1] >= thr and s[t] >= r * thr (it goes on). h never exceeds the scores' maximum.
    """
    scores = np.asarray(scores, dtype=float)
    fractions = np.asarray(stay_on_fractions, dtype=float)
    if np.all(fractions == 1.0):
        return scores
    lifted = scores / fractions[:, None]
    curves = scores.copy()
    for t in range(1, scores.shape[1]):
        curves[:, t] = np.maximum(scores[:, t], np.minimum(curves[:, t - 1], lifted[:, t]))
    return curves


def _by_row_group(curves: np.ndarray, sizes: np.ndarray, step) -> np.ndarray:
    """``step(rows, size)`` on each group of rows that share a size (one call per distinct size)."""
    out = curves.copy()
    for size in np.unique(sizes):
        rows = np.flatnonzero(sizes == size)
        out[rows] = step(curves[rows], int(size))
    return out


def _close(curves: np.ndarray, length: int) -> np.ndarray:
    """Flat closing along time with windows of ``length`` (min over windows holding t of their max):
    fills gaps shorter than ``length`` between two runs; beyond the clip nothing is active."""
    return _window_pass(curves, length, np.max, np.min)


def _open(curves: np.ndarray, length: int) -> np.ndarray:
    """Flat opening along time (max over windows holding t of their min): drops runs shorter than
    ``length`` and keeps the others whole."""
    return _window_pass(curves, length, np.min, np.max)


def _window_pass(curves: np.ndarray, length: int, inner, outer) -> np.ndarray:
    if length <= 1:
        return curves
    edge = np.full((curves.shape[0], length - 1), OUTSIDE_CLIP)
    padded = np.concatenate([edge, curves, edge], axis=1)
    # windows[j] covers padded[j : j + length], i.e. segments j - length + 1 .. j; segment t lies in
    # windows t .. t + length - 1
    windows = inner(sliding_window_view(padded, length, axis=1), axis=-1)
    return outer(sliding_window_view(windows, length, axis=1), axis=-1)


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of the True runs of a 1-D boolean array."""
    padded = np.concatenate(([False], active, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))
