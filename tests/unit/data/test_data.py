import numpy as np
import pytest

from weaktag.geometry import VGGISH_GRID

segment_labels = VGGISH_GRID.segment_labels
segment_times = VGGISH_GRID.segment_times
from weaktag.labels import Event


def test_segment_labels_equal_hand_computed_segments():
    classes = ["dog", "siren"]
    events = [Event("dog", 0.50, 0.70), Event("siren", 3.20, 4.00), Event("dog", 9.90, 10.0)]
    y = segment_labels(events, classes, 62)
    # dog 0.50-0.70 s: segments [0.48, 0.64) = 3 and [0.64, 0.80) = 4
    assert np.flatnonzero(y[0]).tolist() == [3, 4, 61]
    # siren 3.20-4.00: 3.20 / 0.16 = 20 exactly, 4.00 / 0.16 = 25 -> segments 20..24
    assert np.flatnonzero(y[1]).tolist() == [20, 21, 22, 23, 24]


def test_zero_length_event_marks_its_onset_segment_and_events_beyond_the_input_are_cut():
    y = segment_labels([Event("a", 1.0, 1.0), Event("a", 9.5, 12.0)], ["a"], 62)
    assert np.flatnonzero(y[0]).tolist() == [6] + list(range(59, 62))


def test_segment_labels_for_any_length():
    y = segment_labels([Event("a", 30.0, 30.5)], ["a"], 375)  # a 60 s input
    assert np.flatnonzero(y[0]).tolist() == [187, 188, 189, 190]


def test_unknown_event_label():
    with pytest.raises(ValueError, match="'cat'"):
        segment_labels([Event("cat", 0, 1)], ["dog"], 62)


def test_segment_times():
    st = segment_times(3)
    assert np.allclose(st, [[0, 0.16], [0.16, 0.32], [0.32, 0.48]])
