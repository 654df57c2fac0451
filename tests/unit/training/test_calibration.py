"""Settings chosen on validation: event thresholds, and (train.event_output=auto) the output that scores time."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weaktag.config import load_config
from weaktag.errors import ConfigError
from weaktag.data import FeatureSet
from weaktag.labels import Clip, Event
from weaktag.training import Predictions, choose_event_output

CLASSES = ["a", "b"]
T = 62  # 10 s on VGGish's grid


def _validation(n: int = 6) -> FeatureSet:
    clips = []
    for i in range(n):
        onset = 1.0 + i
        label = CLASSES[i % 2]
        clips.append(Clip(f"v{i}", None, frozenset({label}), (Event(label, onset, onset + 1.0),), 10.0))
    return FeatureSet(clips, CLASSES, torch.zeros(n, 998, 64))


def _truth(features: FeatureSet) -> np.ndarray:
    return np.stack([features.grid.segment_labels(c.events, CLASSES, T) for c in features.clips])



def _train_tiny(tmp_path, splits: dict[str, int], **train_options):
    """A tiny attention model trained 3 epochs on synthetic clips with ``train_options``: (config, result)."""
    from weaktag.config import config_from_dict
    from weaktag.synth import SynthConfig, synthesize_splits
    from weaktag.training import train

    synthesize_splits(tmp_path / "data", splits, SynthConfig(seed=5))
    config = config_from_dict({
        "data": {s: str(tmp_path / "data" / s / "manifest.jsonl") for s in splits},
        "model": {"width": 0.0625, "l7_channels": 64, "batch_norm": True}, "scheme": {"name": "attention"},
        "train": {"lr": 3e-3, "batch_size": 8, "max_epochs": 3, "progress": False, "logger": "none",
                  "accelerator": "cpu", **train_options},
        "output_dir": str(tmp_path / "run")})
    return config, train(config)


def _rescored_test_events_match(ckpt, result, tmp_path):
    """The test clips scored again with the checkpoint's stored event settings give the run's test events;
    returns the test features and predictions."""
    from weaktag.data import build_feature_set
    from weaktag.labels import read_labels
    from weaktag.training import event_metrics_for, predict_features

    test = build_feature_set(read_labels(tmp_path / "data" / "test" / "manifest.jsonl"), ckpt.classes)
    predictions = predict_features(ckpt.model, test)
    again = event_metrics_for(ckpt.events, test, predictions).to_dict()
    for key, value in again.items():
        if key != "psds1_operating_f1":
            assert result.test.events[key] == pytest.approx(value, abs=1e-9, nan_ok=True), key
    return test, predictions


def test_auto_picks_the_output_that_localises(tmp_path):
    features = _validation()
    truth = _truth(features)
    rng = np.random.default_rng(0)
    present = truth.max(-1, keepdims=True)  # (N, C, 1): the clip's classes
    # X^a knows which class is there but not where: high all along the clip for present classes
    flat = np.where(present > 0, 0.6 + 0.2 * rng.random(truth.shape), 0.05 * rng.random(truth.shape))
    sharp = truth * 0.9 + 0.05 + 0.01 * rng.random(truth.shape)
    attention = sharp / sharp.sum(-1, keepdims=True)
    ids = [c.clip_id for c in features.clips]
    settings, scores = choose_event_output(features, Predictions(ids, flat.max(-1), flat, attention))
    assert settings.output in ("attention", "product", "gated-attention")
    assert scores[settings.output] == max(scores.values()) and scores["segment"] < scores[settings.output]
    # the other way round: X^a localises and A is flat
    flat_attention = np.full(truth.shape, 1.0 / T)
    settings, scores = choose_event_output(features, Predictions(ids, sharp.max(-1), sharp, flat_attention))
    assert settings.output in ("segment", "gated-segment") and scores["segment"] > scores["attention"]
    # a pooling model has only X^a (and its clip probabilities)
    settings, scores = choose_event_output(features, Predictions(ids, sharp.max(-1), sharp, None))
    assert settings.output in ("segment", "gated-segment") and set(scores) == {"segment", "gated-segment"}


def test_clip_gating_silences_a_false_class_and_auto_chooses_it():
    """X^a localises the true class but also fires, as strongly, on the other class in a few clips;
    the clip tagger knows better (y low for the absent class), so only the gated kinds keep that
    class off the detection curve, and auto picks a gated kind."""
    features = _validation()
    truth = _truth(features)
    rng = np.random.default_rng(1)
    xa = truth * 0.9 + 0.02 * rng.random(truth.shape)
    absent = 1 - truth.max(-1)  # (N, C): classes not in the clip
    false_fire = np.zeros_like(xa)
    false_fire[:, :, 20:30] = 0.95  # a loud burst in every absent class
    xa = np.where(absent[:, :, None] > 0, np.maximum(xa, false_fire), xa)
    clip = np.where(absent > 0, 0.05, 0.9)
    attention = np.full(truth.shape, 1.0 / T)
    ids = [c.clip_id for c in features.clips]
    settings, scores = choose_event_output(features, Predictions(ids, clip, xa, attention))
    assert settings.output == "gated-segment"
    assert scores["gated-segment"] > scores["segment"] + 0.2


def test_gated_scores_are_the_formula():
    from weaktag.postprocess import segment_scores

    rng = np.random.default_rng(0)
    xa, att = rng.random((3, 2, 5)), rng.random((3, 2, 5))
    clip = rng.random((3, 2))
    relative = att / att.max(-1, keepdims=True)
    np.testing.assert_allclose(segment_scores("gated-segment", xa, att, clip), xa * clip[..., None])
    np.testing.assert_allclose(segment_scores("gated-attention", xa, att, clip), relative * clip[..., None])
    np.testing.assert_allclose(segment_scores("gated-segment", xa[0], None, clip[0]), xa[0] * clip[0][:, None])
    with pytest.raises(ValueError, match="needs the clip probabilities"):
        segment_scores("gated-segment", xa, att)
    with pytest.raises(ValueError, match="do not match"):
        segment_scores("gated-attention", xa, att, clip[:, :1])


def test_event_output_is_a_validated_train_setting():
    assert load_config(None, []).train.event_output == "segment"  # the paper's X^a unless asked
    assert load_config(None, ["train.event_output=auto"]).train.event_output == "auto"
    with pytest.raises(ConfigError, match="train.event_output: 'peak' is not allowed"):
        load_config(None, ["train.event_output=peak"])


def test_event_f1_calibration_picks_a_median_filter_and_threshold_per_class():
    from weaktag.training import event_metrics_for
    from weaktag.training.calibration import choose_event_settings

    features = _validation(8)
    truth = _truth(features)
    rng = np.random.default_rng(1)
    scores = truth * 0.8 + 0.1 + 0.05 * rng.random(truth.shape)  # events at 0.85-0.95, background 0.1-0.15
    # class "a" also has one-segment blips above its events in every clip (no threshold removes them)
    blips = np.zeros_like(scores)
    blips[:, 0, [3, 40, 55]] = 0.99
    scores = np.maximum(scores, blips)
    ids = [c.clip_id for c in features.clips]
    predictions = Predictions(ids, scores.max(-1), scores, None)
    plain = choose_event_settings(features, predictions, "segment", median_filter_seconds=0.0)
    settings = choose_event_settings(features, predictions, "segment", objective="event_f1")
    segment = features.grid.segment_seconds
    windows = settings.filter_segments(CLASSES, segment)
    # "a": a filter over 3+ segments removes the blips whatever the threshold; "b" needs none (ties keep 1)
    assert windows[0] >= 3 and windows[1] == 1
    assert 0.15 < settings.thresholds[1] < 0.85
    chosen = event_metrics_for(settings, features, predictions)
    assert chosen.event_f1_macro == pytest.approx(1.0)
    # the segment-F1 rule with no filter keeps the blips of "a" above its threshold: worse event F1
    assert event_metrics_for(plain, features, predictions).event_f1_macro < 0.9


def test_event_calibration_is_a_validated_train_setting():
    assert load_config(None, []).train.event_calibration == "segment_f1"
    assert load_config(None, ["train.event_calibration=event_f1"]).train.event_calibration == "event_f1"
    with pytest.raises(ConfigError, match="train.event_calibration: 'psds' is not allowed"):
        load_config(None, ["train.event_calibration=psds"])


def test_validation_chosen_output_and_thresholds_are_stored_and_used_at_test_and_by_tag(tmp_path):
    """train.event_output=auto + event_calibration=event_f1: the checkpoint stores the output with the best
    validation PSDS1 and the per-class thresholds / filters; the test events were scored with exactly those,
    and `weaktag tag` decodes a test file with them."""
    from weaktag.checkpoint import load_checkpoint
    from weaktag.inference import Tagger
    from weaktag.postprocess import decode_events
    from weaktag.training import score_matrices

    splits = {"train": 32, "validation": 16, "test": 8}
    config, result = _train_tiny(tmp_path, splits, event_output="auto", event_calibration="event_f1")
    ckpt = load_checkpoint(result.checkpoint)
    by_output = ckpt.metrics["validation"]["psds1_by_event_output"]
    assert set(by_output) == set(OUTPUT_KINDS_FOR_ATTENTION)
    best = max(by_output.values())
    assert ckpt.events.output == next(k for k in OUTPUT_KINDS_FOR_ATTENTION if by_output[k] == best)
    assert ckpt.events.to_dict() == result.event_settings.to_dict()
    assert len(ckpt.events.thresholds) == len(ckpt.classes)
    assert isinstance(ckpt.events.median_filter_seconds, list)  # one filter per class (event F1)
    # test events: scored with the stored settings
    test, predictions = _rescored_test_events_match(ckpt, result, tmp_path)
    # `weaktag tag` (the Tagger) decodes a test file with the same output, thresholds and filters
    tagger = Tagger.from_checkpoint(result.checkpoint)
    assert tagger.event_settings.to_dict() == ckpt.events.to_dict()
    scores = score_matrices(predictions, ckpt.events.output)
    decoded = 0
    for clip in test.clips:
        tagged = tagger.tag(clip.audio_path)
        expected = decode_events(scores[clip.clip_id], ckpt.classes, ckpt.events.thresholds_for(ckpt.classes),
                                 test.grid.segment_seconds,
                                 ckpt.events.filter_segments(ckpt.classes, test.grid.segment_seconds),
                                 duration=predictions.durations[clip.clip_id])
        assert [(e.label, e.onset, e.offset) for e in tagged.events] == [
            (e.label, e.onset, e.offset) for e in expected], clip.clip_id
        decoded += len(expected)
    assert decoded > 0


OUTPUT_KINDS_FOR_ATTENTION = ("segment", "attention", "product", "gated-segment", "gated-attention")


def _tailing_events(n: int = 6) -> tuple[FeatureSet, Predictions]:
    """Class "a": events of 12 segments scored 0.9 on their first 2 and 0.5 after, plus 4-segment blips at 0.6
    in every clip (no threshold or median filter of at most 7 segments gets both right); "b": clean events."""
    segment = 0.16
    clips, scores = [], np.full((n, 2, T), 0.1)
    for i in range(n):
        start = 4 + 3 * i
        events = (Event("a", round(start * segment, 6), round((start + 12) * segment, 6)),
                  Event("b", round(40 * segment, 6), round(50 * segment, 6)))
        clips.append(Clip(f"t{i}", None, frozenset(CLASSES), events, 10.0))
        scores[i, 0, start:start + 2], scores[i, 0, start + 2:start + 12] = 0.9, 0.5
        scores[i, 0, 52:56] = 0.6
        scores[i, 1, 40:50] = 0.9
    features = FeatureSet(clips, CLASSES, torch.zeros(n, 998, 64))
    return features, Predictions([c.clip_id for c in clips], scores.max(-1), scores, None)


@pytest.mark.parametrize("durations,hysteresis", [(True, False), (False, True)])
def test_event_durations_and_hysteresis_are_chosen_for_event_f1(durations, hysteresis):
    from weaktag.training import event_metrics_for
    from weaktag.training.calibration import choose_event_settings

    features, predictions = _tailing_events()
    plain = choose_event_settings(features, predictions, "segment", objective="event_f1")
    chosen = choose_event_settings(features, predictions, "segment", objective="event_f1", durations=durations,
                                   hysteresis=hysteresis)
    assert event_metrics_for(plain, features, predictions).event_f1_macro < 0.9
    assert event_metrics_for(chosen, features, predictions).event_f1_macro == pytest.approx(1.0)
    decoding = chosen.decoding(CLASSES, features.grid.segment_seconds)
    if durations:  # "a": the blips (4 segments) dropped, the events (12) kept; "b" needs nothing
        assert 5 <= decoding.min_duration_segments[0] <= 12 and decoding.min_duration_segments[1] == 0
        assert decoding.max_gap_segments[1] == 0 and chosen.stay_on_fraction == 1.0
    else:  # "a": on above the blips, on through the tails; "b" keeps the plain threshold
        assert decoding.stay_on_fractions[0] < 1.0 and decoding.stay_on_fractions[1] == 1.0
        assert chosen.min_duration_seconds == 0.0 and chosen.max_gap_seconds == 0.0
    # off: exactly the settings chosen before the options existed
    assert choose_event_settings(features, predictions, "segment", objective="event_f1", durations=False,
                                 hysteresis=False).to_dict() == plain.to_dict()


def test_event_durations_and_hysteresis_need_the_event_f1_objective():
    config = load_config(None, ["train.event_calibration=event_f1", "train.event_durations=true",
                                "train.event_hysteresis=true"])
    assert config.train.event_durations and config.train.event_hysteresis
    assert not load_config(None, []).train.event_durations and not load_config(None, []).train.event_hysteresis
    for key in ("event_durations", "event_hysteresis"):
        with pytest.raises(ConfigError, match=f"train.{key}: chosen for event-based F1; set train.event_calibration"):
            load_config(None, [f"train.{key}=true"])


def test_chosen_durations_and_hysteresis_are_stored_and_used_by_tag(tmp_path):
    """train.event_durations + event_hysteresis: the checkpoint stores a gap, a minimum duration and a stay-on
    fraction per class; the test evaluation and `weaktag tag` decode with them (and with tag's overrides)."""
    from weaktag.checkpoint import load_checkpoint
    from weaktag.inference import Tagger
    from weaktag.postprocess import EventSettings, decode_events
    from weaktag.training import score_matrices

    splits = {"train": 32, "validation": 16, "test": 6}
    config, result = _train_tiny(tmp_path, splits, event_calibration="event_f1", event_durations=True,
                                 event_hysteresis=True)
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.events.to_dict() == result.event_settings.to_dict()
    for key in ("max_gap_seconds", "min_duration_seconds", "stay_on_fraction"):
        assert len(getattr(ckpt.events, key)) == len(ckpt.classes), key
    test, predictions = _rescored_test_events_match(ckpt, result, tmp_path)
    scores = score_matrices(predictions, ckpt.events.output)
    segment = test.grid.segment_seconds
    # the checkpoint's settings, and tag's overrides of them (steps that surely change events)
    overrides = {"stay_on_fraction": 0.5, "max_gap_seconds": 0.32, "min_duration_seconds": 0.48}
    for options in ({}, overrides):
        tagger = Tagger.from_checkpoint(result.checkpoint, **options)
        settings = EventSettings(**{**ckpt.events.to_dict(), **options})
        assert tagger.event_settings.to_dict() == settings.to_dict()
        decoding = settings.decoding(ckpt.classes, segment)
        decoded = 0
        for clip in test.clips:
            tagged = tagger.tag(clip.audio_path)
            expected = decode_events(scores[clip.clip_id], ckpt.classes, decoding.thresholds, segment,
                                     decoding.median_filter_segments, duration=predictions.durations[clip.clip_id],
                                     stay_on_fractions=decoding.stay_on_fractions,
                                     max_gap_segments=decoding.max_gap_segments,
                                     min_duration_segments=decoding.min_duration_segments)
            assert [(e.label, e.onset, e.offset) for e in tagged.events] == [
                (e.label, e.onset, e.offset) for e in expected], clip.clip_id
            decoded += len(expected)
        assert decoded > 0
    plain = EventSettings(**{**ckpt.events.to_dict(), "stay_on_fraction": 1.0, "max_gap_seconds": 0.0,
                             "min_duration_seconds": 0.0}).decoding(ckpt.classes, segment)
    assert any(decode_events(scores[c.clip_id], ckpt.classes, plain.thresholds, segment, plain.median_filter_segments,
                             duration=predictions.durations[c.clip_id]) != decode_events(
        scores[c.clip_id], ckpt.classes, plain.thresholds, segment, plain.median_filter_segments,
        duration=predictions.durations[c.clip_id], stay_on_fractions=0.5, max_gap_segments=2,
        min_duration_segments=3) for c in test.clips)  # the overrides above are not a no-op
