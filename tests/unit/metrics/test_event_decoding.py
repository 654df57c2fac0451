"""Event decoding steps on hand-made score curves: hysteresis, median filter, gap merging, minimum duration."""

from __future__ import annotations

import numpy as np
import pytest

from weaktag.errors import UsageError
from weaktag.postprocess import EventSettings, decision_curves, decode_events

SEGMENT = 1.0  # one second per segment: event times are segment indices


def _events(scores, **options) -> list[tuple[float, float]]:
    return [(e.onset, e.offset) for e in decode_events(np.atleast_2d(scores), ["a"], 0.5, SEGMENT, **options)]


BROKEN = [0.9, 0.0, 0.8, 0.8, 0.0, 0.0, 0.9, 0.0, 0.0]


def test_gap_merging_joins_events_at_most_that_far_apart():
    assert _events(BROKEN) == [(0, 1), (2, 4), (6, 7)]
    assert _events(BROKEN, max_gap_segments=1) == [(0, 4), (6, 7)]
    assert _events(BROKEN, max_gap_segments=2) == [(0, 7)]
    # nothing is merged with the clip's ends: the leading and trailing silence stays silent
    assert _events([0.0, 0.9, 0.0, 0.0], max_gap_segments=3) == [(1, 2)]


def test_minimum_duration_drops_shorter_events_and_keeps_the_others_whole():
    assert _events(BROKEN, min_duration_segments=2) == [(2, 4)]
    assert _events(BROKEN, min_duration_segments=3) == []
    assert _events([0.9, 0.9, 0.0, 0.9], min_duration_segments=2) == [(0, 2)]  # an event at the clip's start counts


def test_gaps_are_merged_before_short_events_are_dropped():
    # three pieces of 1, 2 and 1 segments, 1 apart: merged first (7 segments), so the event survives
    assert _events(BROKEN, max_gap_segments=1, min_duration_segments=4) == [(0, 4)]
    assert _events(BROKEN, max_gap_segments=2, min_duration_segments=7) == [(0, 7)]


def test_hysteresis_starts_at_the_threshold_and_lasts_above_the_lower_one():
    scores = [0.2, 0.6, 0.4, 0.3, 0.6, 0.2, 0.45, 0.7]
    assert _events(scores) == [(1, 2), (4, 5), (7, 8)]
    assert _events(scores, stay_on_fractions=0.7) == [(1, 3), (4, 5), (7, 8)]  # stays on at >= 0.35
    # stays on at >= 0.25; 0.45 after a drop to 0.2 starts nothing (below the threshold)
    assert _events(scores, stay_on_fractions=0.5) == [(1, 5), (7, 8)]


def test_steps_run_in_order_hysteresis_median_gap_duration():
    scores = [0.0, 0.6, 0.3, 0.0, 0.0, 0.6, 0.0, 0.0, 0.0, 0.0, 0.6, 0.3, 0.3, 0.0]
    # without hysteresis every run is one segment long, and the median filter removes them all
    assert _events(scores, median_filter_segments=3) == []
    # hysteresis (on at 0.5, stays on at >= 0.25) first: [1, 3) [5, 6) [10, 13); the median filter then
    # drops only the lone segment 5
    assert _events(scores, stay_on_fractions=0.5, median_filter_segments=3) == [(1, 3), (10, 13)]
    # gaps after the median filter: 7 segments between the two (2 and 4 had segment 5 stayed)
    assert _events(scores, stay_on_fractions=0.5, median_filter_segments=3, max_gap_segments=4) == [(1, 3), (10, 13)]
    assert _events(scores, stay_on_fractions=0.5, median_filter_segments=3, max_gap_segments=7) == [(1, 13)]
    # the minimum duration last, on the merged event
    assert _events(scores, stay_on_fractions=0.5, median_filter_segments=3, max_gap_segments=7,
                   min_duration_segments=12) == [(1, 13)]
    assert _events(scores, stay_on_fractions=0.5, median_filter_segments=3, max_gap_segments=7,
                   min_duration_segments=13) == []


def test_options_are_per_class():
    scores = np.array([BROKEN, BROKEN])
    events = decode_events(scores, ["a", "b"], 0.5, SEGMENT, max_gap_segments=[1, 0], min_duration_segments=[0, 2])
    assert [(e.label, e.onset, e.offset) for e in events] == [("a", 0, 4), ("b", 2, 4), ("a", 6, 7)]


def _reference_activity(row, threshold, stay_on, window, gap, shortest) -> np.ndarray:
    """The steps one by one on runs of the binary activity (the plain reading of decode_events' doc)."""
    active, on = np.zeros(len(row), bool), False
    for t, s in enumerate(row):
        on = s >= threshold or (on and s >= stay_on * threshold)
        active[t] = on
    if window > 1:
        half = window // 2
        padded = np.concatenate([[active[0]] * half, active, [active[-1]] * half])
        active = np.array([padded[t:t + window].sum() > half for t in range(len(row))])
    runs = []
    for t in np.flatnonzero(active):
        if runs and t - runs[-1][1] <= gap:  # at most ``gap`` inactive segments between: one event
            runs[-1][1] = t + 1
        else:
            runs.append([t, t + 1])
    out = np.zeros(len(row), bool)
    for start, stop in runs:
        if stop - start >= shortest:
            out[start:stop] = True
    return out


def test_decision_curves_thresholded_anywhere_give_the_steps_activity():
    """What calibration relies on: one curve per class stands for every threshold."""
    rng = np.random.default_rng(0)
    for trial in range(60):
        row = np.round(rng.random(40), 2)
        stay_on, window, gap, shortest = rng.choice([1.0, 0.75, 0.5]), rng.choice([1, 3, 5]), rng.integers(0, 5), \
            rng.integers(0, 6)
        curve = decision_curves(row[None], np.array([stay_on]), np.array([window]), np.array([gap]),
                                np.array([shortest]))[0]
        for threshold in np.unique(row):
            expected = _reference_activity(row, threshold, stay_on, window, gap, shortest)
            assert np.array_equal(curve >= threshold, expected), (trial, threshold)


def test_defaults_decode_as_before_and_old_settings_load_with_the_steps_off():
    rng = np.random.default_rng(3)
    scores = rng.random((3, 50))
    plain = decode_events(scores, ["a", "b", "c"], 0.6, 0.16, 3)
    assert decode_events(scores, ["a", "b", "c"], 0.6, 0.16, 3, stay_on_fractions=1.0, max_gap_segments=0,
                         min_duration_segments=0) == plain
    old = EventSettings(**{"output": "segment", "thresholds": [0.4, 0.5, 0.6], "median_filter_seconds": 0.48})
    decoding = old.decoding(["a", "b", "c"], 0.16)
    assert decoding.stay_on_fractions.tolist() == [1.0] * 3
    assert decoding.max_gap_segments.tolist() == [0] * 3 and decoding.min_duration_segments.tolist() == [0] * 3
    assert EventSettings(**old.to_dict()) == old


def test_stored_seconds_become_whole_segments_of_the_grid():
    settings = EventSettings(max_gap_seconds=[0.0, 0.32], min_duration_seconds=0.5, stay_on_fraction=[0.5, 1.0])
    decoding = settings.decoding(["a", "b"], 0.16)
    assert decoding.max_gap_segments.tolist() == [0, 2] and decoding.min_duration_segments.tolist() == [3, 3]
    assert settings.decoding(["a", "b"], 0.08).max_gap_segments.tolist() == [0, 4]
    with pytest.raises(UsageError, match="stay-on fractions .* must be in \\(0, 1\\]"):
        EventSettings(stay_on_fraction=1.5).decoding(["a"], 0.16)
    with pytest.raises(UsageError, match="maximum gaps: expected 1 or 2 values, got 3"):
        EventSettings(max_gap_seconds=[0, 0, 0]).decoding(["a", "b"], 0.16)
