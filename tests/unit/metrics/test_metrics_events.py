"""Event-level metrics: score curves, decoding, sed_eval F1 and PSDS on hand-made clips."""

from __future__ import annotations

import numpy as np
import pytest

from weaktag.metrics import EventMetrics, evaluate_events, psds, scores_to_dataframes, sed_eval_metrics
from weaktag.postprocess import DetectedEvent, decode_events, segment_scores
from weaktag.labels import Clip, Event, Manifest

SEG = 0.16
CLASSES = ["a", "b"]


def _manifest(events_by_clip: dict[str, list[Event] | None], duration: float | None = 10.0) -> Manifest:
    clips = [
        Clip(cid, None, frozenset(e.label for e in (events or ())), None if events is None else tuple(events), duration)
        for cid, events in events_by_clip.items()
    ]
    return Manifest(clips, list(CLASSES))


# --- score curves ---


def test_segment_scores_kinds() -> None:
    x = np.array([[0.2, 0.8, 0.4, 0.0], [0.5, 0.5, 0.5, 0.5]])
    a = np.array([[0.1, 0.4, 0.4, 0.1], [0.25, 0.25, 0.25, 0.25]])
    assert np.array_equal(segment_scores("segment", x), x)
    relative = segment_scores("attention", x, attention=a)
    np.testing.assert_allclose(relative, [[0.25, 1.0, 1.0, 0.25], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(segment_scores("product", x, attention=a), x * relative)
    # batched (B, C, T) works the same per clip
    np.testing.assert_allclose(segment_scores("attention", np.stack([x, x]), attention=np.stack([a, a]))[1], relative)
    with pytest.raises(ValueError):
        segment_scores("attention", x)
    with pytest.raises(ValueError):
        segment_scores("bogus", x)  # type: ignore[arg-type]


def test_scores_to_dataframes_layout() -> None:
    frames = scores_to_dataframes({"c1": np.zeros((2, 5)), "c2": np.ones((2, 3))}, CLASSES, SEG)
    df = frames["c1"]
    assert list(df.columns) == ["onset", "offset", "a", "b"]
    assert df["onset"].tolist() == [0.0, 0.16, 0.32, 0.48, 0.64]  # 3 * 0.16 rounded to 0.48 exactly
    assert df["offset"].iloc[-1] == pytest.approx(0.8)
    assert len(frames["c2"]) == 3


# --- decoding ---


def test_decode_events_hand_matrix() -> None:
    scores = np.array(
        [
            [0.0, 0.9, 0.8, 0.0, 0.0, 0.0, 0.7, 0.6, 0.7, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.55],
        ]
    )
    events = decode_events(scores, CLASSES, thresholds=[0.5, 0.5], segment_seconds=SEG)
    # a: segments 1-2 -> [0.16, 0.48), max 0.9; segments 6-8 -> [0.96, 1.44), max 0.7
    # b: segment 9 -> [1.44, 1.6)
    assert events == [
        DetectedEvent("a", 0.16, 0.48, 0.9),
        DetectedEvent("a", 0.96, 1.44, 0.7),
        DetectedEvent("b", 1.44, 1.6, 0.55),
    ]
    mean_scored = decode_events(scores, CLASSES, 0.5, SEG, score_reduce="mean")
    assert mean_scored[1].score == pytest.approx((0.7 + 0.6 + 0.7) / 3)


def test_decode_events_median_filter_fills_gap_and_drops_blip() -> None:
    # active:   1 1 0 1 1 0 0 0 1 0 ; window 3 -> 1 1 1 1 1 0 0 0 0 0
    scores = np.array([[0.9, 0.9, 0.1, 0.9, 0.9, 0.1, 0.1, 0.1, 0.9, 0.1]])
    events = decode_events(scores, ["a"], thresholds=0.5, segment_seconds=0.1, median_filter_segments=3)
    assert [(e.label, e.onset, e.offset) for e in events] == [("a", 0.0, 0.5)]
    with pytest.raises(ValueError):
        decode_events(scores, ["a"], 0.5, 0.1, median_filter_segments=4)


# --- sed_eval F1 ---


def test_sed_eval_perfect_estimates_score_one() -> None:
    truth = {
        "c1": [Event("a", 1.0, 3.0), Event("b", 5.0, 6.5)],
        "c2": [Event("a", 0.5, 2.0)],
        "c3": [],
    }
    result = sed_eval_metrics(truth, _manifest(truth))
    assert result.segment_f1_micro == pytest.approx(1.0)
    assert result.segment_f1_macro == pytest.approx(1.0)
    assert result.event_f1_micro == pytest.approx(1.0)
    assert result.event_f1_macro == pytest.approx(1.0)
    assert result.n_clips == 3


def test_sed_eval_hand_computed_partial_case() -> None:
    truth = {"c1": [Event("a", 1.0, 3.0), Event("b", 5.0, 6.0)], "c2": [Event("a", 2.0, 4.0)]}
    estimated = {
        "c1": [("a", 1.0, 2.0)],  # tuples work as well as DetectedEvent
        "c2": [DetectedEvent("a", 2.1, 3.9, 0.9), DetectedEvent("b", 7.0, 8.0, 0.8)],
    }
    result = sed_eval_metrics(estimated, _manifest(truth))
    # Segment-based, 1 s segments:
    #   a: ref {c1:1,2  c2:2,3}, sys {c1:1  c2:2,3} -> TP 3 FP 0 FN 1 -> F1 = 2*1*.75/1.75 = 6/7
    #   b: ref {c1:5}, sys {c2:7} -> TP 0 -> F1 0
    #   micro: TP 3 FP 1 FN 2 -> P 3/4, R 3/5 -> F1 2/3 ; macro: (6/7 + 0)/2 = 3/7
    assert result.segment_f1_micro == pytest.approx(2 / 3)
    assert result.segment_f1_macro == pytest.approx(3 / 7)
    # Event-based, collar 0.2 s, offset tolerance max(0.2, 0.2 * ref length):
    #   c1 a: offset 2.0 vs 3.0 (tolerance 0.4) -> miss; c2 a: onset +0.1, offset -0.1 -> hit
    #   micro: 3 ref, 3 sys, 1 TP -> F1 1/3 ; a: 1/2, b: 0 -> macro 1/4
    assert result.event_f1_micro == pytest.approx(1 / 3)
    assert result.event_f1_macro == pytest.approx(1 / 4)


def test_sed_eval_clip_without_estimates_counts_as_misses() -> None:
    truth = {"c1": [Event("a", 1.0, 3.0)], "c2": [Event("a", 1.0, 3.0)]}
    result = sed_eval_metrics({"c1": [("a", 1.0, 3.0)]}, _manifest(truth))  # nothing for c2
    # segment: TP 2 FN 2 -> R 1/2, P 1 -> F1 2/3 ; event: TP 1 FN 1 -> F1 2/3
    assert result.segment_f1_micro == pytest.approx(2 / 3)
    assert result.event_f1_micro == pytest.approx(2 / 3)
    nothing = sed_eval_metrics({}, _manifest(truth))
    assert nothing.segment_f1_micro == 0.0 and nothing.event_f1_micro == 0.0


def test_sed_eval_agrees_with_direct_sed_eval() -> None:
    import sed_eval

    truth = {"c1": [Event("a", 0.3, 2.2), Event("b", 4.0, 4.9)], "c2": [Event("b", 1.0, 7.0)]}
    estimated = {"c1": [("a", 0.4, 2.5), ("a", 6.0, 6.3)], "c2": [("b", 1.5, 6.0), ("a", 2.0, 3.0)]}
    ours = sed_eval_metrics(estimated, _manifest(truth))
    direct = sed_eval.sound_event.EventBasedMetrics(CLASSES, t_collar=0.2, percentage_of_length=0.2)
    for cid, events in truth.items():
        ref = [{"filename": cid, "event_label": e.label, "onset": e.onset, "offset": e.offset} for e in events]
        est = [{"filename": cid, "event_label": l, "onset": on, "offset": off} for l, on, off in estimated[cid]]
        direct.evaluate(ref, est)
    assert ours.event_f1_micro == pytest.approx(direct.results_overall_metrics()["f_measure"]["f_measure"])


# --- PSDS ---


def _strong_clips(n_clips: int, n_segments: int, rng: np.random.Generator) -> tuple[Manifest, dict[str, np.ndarray]]:
    """Clips with one or two events each and the matching perfect per-segment scores."""
    truth: dict[str, list[Event]] = {}
    perfect: dict[str, np.ndarray] = {}
    for i in range(n_clips):
        matrix = np.zeros((len(CLASSES), n_segments))
        events = []
        for c, name in enumerate(CLASSES):
            if (i + c) % 3 == 2:
                continue
            start = int(rng.integers(0, n_segments - 12))
            stop = start + int(rng.integers(3, 12))
            matrix[c, start:stop] = 1.0
            events.append(Event(name, round(start * SEG, 6), round(stop * SEG, 6)))
        truth[f"clip{i}"] = events
        perfect[f"clip{i}"] = matrix
    return _manifest(truth, duration=n_segments * SEG), perfect


def test_psds_perfect_scores_near_one_and_random_lower() -> None:
    rng = np.random.default_rng(0)
    manifest, perfect = _strong_clips(n_clips=8, n_segments=62, rng=rng)
    frames = scores_to_dataframes(perfect, CLASSES, SEG)
    for scenario in (1, 2):
        result = psds(frames, manifest, scenario=scenario)
        assert result.value == pytest.approx(1.0, abs=1e-3)
        assert result.n_clips == 8 and set(result.per_class) == set(CLASSES)
    random_frames = scores_to_dataframes(
        {cid: rng.random(m.shape) for cid, m in perfect.items()}, CLASSES, SEG
    )
    for scenario in (1, 2):
        assert psds(random_frames, manifest, scenario=scenario).value < 0.5


def test_psds_needs_scores_for_every_strong_clip_and_ignores_weak_ones() -> None:
    rng = np.random.default_rng(1)
    manifest, perfect = _strong_clips(n_clips=3, n_segments=40, rng=rng)
    weak = Clip("weak", None, frozenset({"a"}), None, 10.0)
    with_weak = Manifest(list(manifest.clips) + [weak], list(CLASSES))
    frames = scores_to_dataframes(perfect, CLASSES, SEG)
    assert psds(frames, with_weak, scenario=1).n_clips == 3  # weak clip needs no scores
    del frames["clip0"]
    with pytest.raises(ValueError, match="no scores"):
        psds(frames, manifest)
    with pytest.raises(ValueError):
        psds(scores_to_dataframes(perfect, CLASSES, SEG), manifest, scenario=3)


def test_psds_accepts_touching_same_class_events() -> None:
    # sed_scores_eval rejects touching/overlapping same-class ground truth; psds() merges them
    truth = {"c1": [Event("a", 0.32, 0.96), Event("a", 0.96, 1.6), Event("a", 1.2, 1.44)]}
    matrix = np.zeros((2, 20))
    matrix[0, 2:10] = 1.0
    result = psds(scores_to_dataframes({"c1": matrix}, CLASSES, SEG), _manifest(truth), scenario=1)
    # merged ground truth is a single "a" event [0.32, 1.6) = segments 2..9, detected exactly
    assert result.value == pytest.approx(1.0, abs=1e-3)
    # "b" has no ground-truth event: PSDS is undefined for it, so it is left out and reported
    assert result.classes_without_events == ["b"] and set(result.per_class) == {"a"}


def test_evaluate_events_end_to_end() -> None:
    rng = np.random.default_rng(2)
    manifest, perfect = _strong_clips(n_clips=4, n_segments=50, rng=rng)
    result = evaluate_events(perfect, manifest, CLASSES, SEG, thresholds=0.5)
    assert isinstance(result, EventMetrics)
    assert result.psds1 == pytest.approx(1.0, abs=1e-3)
    assert result.segment_f1_micro == pytest.approx(1.0)
    assert result.event_f1_macro == pytest.approx(1.0)
    only_psds = evaluate_events(perfect, manifest, CLASSES, SEG)
    assert only_psds.event_f1_micro is None
    assert set(only_psds.to_dict()) == {
        "psds1", "psds2", "segment_f1_micro", "segment_f1_macro", "event_f1_micro", "event_f1_macro",
        "psds1_operating_f1",
    }


def test_psds1_operating_point_thresholds_and_f1() -> None:
    """The PSDS1 operating point on hand-made scores: one clip per class, an event at segments 10-19 and a
    weaker false burst at 40-44; the best intersection-F1 threshold lies above the burst and at or below
    the event, and the same thresholds on other scores give the F1 of those scores."""
    from weaktag.metrics.events import operating_point_f1, psds_operating_point

    scores, events = {}, {}
    for k, name in enumerate(CLASSES):
        matrix = np.zeros((2, 62))
        matrix[k, 10:20] = 0.8
        matrix[k, 40:45] = 0.4
        scores[f"c{k}"] = matrix
        events[f"c{k}"] = [Event(name, 10 * SEG, 20 * SEG)]
    truth = _manifest(events)
    frames = scores_to_dataframes(scores, CLASSES, SEG)
    point = psds_operating_point(frames, truth, scenario=1)
    assert point.scenario == 1 and set(point.thresholds) == set(CLASSES)
    assert all(0.4 < t <= 0.8 for t in point.thresholds.values())
    assert point.f1_macro == pytest.approx(1.0)
    assert operating_point_f1(frames, truth, point) == pytest.approx(1.0)
    # a model whose burst is as strong as the event: one true and one false detection per class (F1 2/3)
    louder = {cid: np.where(m == 0.4, 0.9, m) for cid, m in scores.items()}
    assert operating_point_f1(scores_to_dataframes(louder, CLASSES, SEG), truth, point) == pytest.approx(2 / 3)
    assert point.to_dict()["f1_macro"] == pytest.approx(1.0)
