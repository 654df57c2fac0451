"""`weaktag evaluate` scores each clip as `weaktag tag` does, for clips of any length (issue 20)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from weaktag.checkpoint import load_checkpoint, save_checkpoint
from weaktag.data import build_feature_set
from weaktag.experiments.evaluation import evaluate_checkpoint
from weaktag.inference import Tagger
from weaktag.labels import read_labels
from weaktag.metrics.events import evaluate_events
from weaktag.metrics.tagging import tagging_metrics
from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet
from weaktag.postprocess import EventSettings, decode_events
from weaktag.training import predict_features, score_matrices
from weaktag.training.predict import predict_recordings

SR = 16_000
CLASSES = ["beep", "hum"]
# (seconds, events): 25 s is longer than one pass with the chunk length below, so it is chunked
CLIPS = {"four.wav": (4.0, [("beep", 0.5, 1.7)]), "ten.wav": (10.0, [("hum", 2.0, 9.5), ("beep", 7.0, 10.0)]),
         "twentyfive.wav": (25.0, [("beep", 3.0, 4.0), ("hum", 20.0, 24.9)]),
         "ten_b.wav": (10.0, [("hum", 0.0, 3.0)])}
TOLERANCE = 1e-5


def _render(seconds: float, events: list[tuple[str, float, float]], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    wave = 0.02 * rng.standard_normal(len(t))
    for label, onset, offset in events:
        on = (t >= onset) & (t < offset)
        wave[on] += 0.3 * np.sin(2 * np.pi * (1000.0 if label == "beep" else 150.0) * t[on])
    return wave.astype(np.float32)


def _threshold_in_a_gap(scores: np.ndarray, gap: float = 1e-3) -> float:
    """The midpoint nearest the median between two neighbouring sorted scores at least ``gap`` apart."""
    ordered = np.sort(scores)
    wide = np.flatnonzero(np.diff(ordered) >= gap)
    middles = (ordered[wide] + ordered[wide + 1]) / 2
    return float(middles[np.argmin(np.abs(middles - np.median(scores)))])


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("evaluate_like_tag")
    rows = ["filename\tonset\toffset\tevent_label"]
    for i, (name, (seconds, events)) in enumerate(CLIPS.items()):
        sf.write(str(folder / name), _render(seconds, events, i), SR, subtype="FLOAT")
        rows += [f"{name}\t{onset}\t{offset}\t{label}" for label, onset, offset in events]
    (folder / "strong.tsv").write_text("\n".join(rows) + "\n")
    torch.manual_seed(0)
    model = WeakTagNet(ModelConfig(len(CLASSES), backbone=BackboneConfig(width=0.0625))).eval()
    ckpt = save_checkpoint(folder / "model.pt", model, CLASSES, "attention", {}, tag_thresholds=np.array([0.5, 0.5]))
    # event thresholds near each class's median X^a, so that events are found (an untrained model sits near
    # 0.5), but in a gap between the clips' scores: a score within float noise of its threshold would flip
    # with the summation order of a CPU's kernels, and the test would compare that noise, not the two paths
    tagger = Tagger.from_checkpoint(ckpt)
    xa = np.concatenate([tagger.tag(folder / name).segment_probs for name in CLIPS], axis=1)
    events = EventSettings("segment", [_threshold_in_a_gap(row) for row in xa], 0.32)
    ckpt = save_checkpoint(folder / "model.pt", model, CLASSES, "attention", {},
                           tag_thresholds=np.array([0.5, 0.5]), events=events)
    return ckpt, folder


def test_evaluate_equals_tag_on_clips_of_4_10_and_25_seconds(setup):
    ckpt, folder = setup
    checkpoint = load_checkpoint(ckpt)
    manifest = read_labels(folder / "strong.tsv", classes=CLASSES)
    predictions, scored = predict_recordings(checkpoint, manifest.clips)  # what evaluate scores with
    # tag, chunked as the CLI does it: 25 s is more than one 10.24 s pass
    tagger = Tagger.from_checkpoint(ckpt, chunk_seconds=10.24)
    tagged = {r.source: r for r in tagger.tag_many([folder / n for n in CLIPS], names=list(CLIPS))}
    assert scored.skipped == [] and predictions.clip_ids == [c.clip_id for c in manifest.clips]
    scores = score_matrices(predictions, checkpoint.events.output)
    found = 0
    for i, clip in enumerate(manifest.clips):
        name = clip.audio_path.name
        result = tagged[name]
        assert result.duration == CLIPS[name][0] == predictions.durations[clip.clip_id]
        assert predictions.segment_probs[i].shape == result.segment_probs.shape  # the whole file, every segment
        np.testing.assert_allclose(predictions.clip_probs[i], result.clip_probs, atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(predictions.segment_probs[i], result.segment_probs, atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(predictions.attention[i], result.attention, atol=TOLERANCE, rtol=0)
        decoded = decode_events(scores[clip.clip_id], CLASSES, checkpoint.events.thresholds_for(CLASSES),
                                result.segment_seconds, checkpoint.events.filter_segments(CLASSES, result.segment_seconds),
                                duration=predictions.durations[clip.clip_id])  # as evaluate_events decodes
        assert [(e.label, e.onset, e.offset) for e in decoded] == [(e.label, e.onset, e.offset) for e in result.events]
        found += len(decoded)
        assert all(e.offset <= result.duration for e in result.events)
    assert found > 0  # the comparison of events is not vacuous

    # evaluate's report: the metrics of tag's outputs
    report = evaluate_checkpoint(ckpt, folder / "strong.tsv", progress=False)
    results = [tagged[c.audio_path.name] for c in manifest.clips]
    weak = np.array([[float(name in c.labels) for name in CLASSES] for c in manifest.clips])
    expected = tagging_metrics(weak, np.stack([r.clip_probs for r in results]), CLASSES,
                               thresholds=checkpoint.tag_thresholds)
    assert report.num_clips == len(CLIPS) and report.tagging.mAP == pytest.approx(expected.mAP, abs=1e-9)
    events = evaluate_events({c.clip_id: r.scores(checkpoint.events.output) for c, r in zip(manifest.clips, results)},
                             manifest, CLASSES, results[0].segment_seconds,
                             thresholds=checkpoint.events.thresholds_for(CLASSES),
                             median_filter_segments=checkpoint.events.filter_segments(CLASSES, results[0].segment_seconds),
                             durations={c.clip_id: r.duration for c, r in zip(manifest.clips, results)})
    for key, value in events.to_dict().items():
        assert report.events.to_dict()[key] == pytest.approx(value, abs=1e-9, nan_ok=True), key


def test_validation_features_score_ten_second_clips_as_tagging_does(setup):
    """Calibration (and epoch selection) score the in-memory 10 s crops: for 10 s clips these equal the Tagger's."""
    ckpt, folder = setup
    checkpoint = load_checkpoint(ckpt)
    manifest = read_labels(folder / "strong.tsv", classes=CLASSES)
    tens = manifest.subset([c.clip_id for c in manifest.clips if CLIPS[c.audio_path.name][0] == 10.0])
    features = build_feature_set(tens, CLASSES)
    from_features = predict_features(checkpoint.model, features)
    from_tagger, _ = predict_recordings(checkpoint, tens.clips)
    assert from_features.durations == from_tagger.durations
    for output in ("segment", "attention", "gated-segment"):
        a, b = score_matrices(from_features, output), score_matrices(from_tagger, output)
        for clip_id in a:
            np.testing.assert_allclose(a[clip_id], b[clip_id], atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(from_features.clip_probs, from_tagger.clip_probs, atol=TOLERANCE, rtol=0)
