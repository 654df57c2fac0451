"""``weaktag tag`` as a new user meets it (issue 7, tagging items), beyond tests/test_usability.py:
small chunks of resampled multichannel audio, silence found while streaming, the 0.1 s floor,
non-finite chunk lengths, a progress bar that never shares a line with a result, timeline layout."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from matplotlib.colors import to_rgba

from weaktag.audio import READ_BLOCK, SILENT, AudioError, iter_audio_blocks
from weaktag.checkpoint import save_checkpoint
from weaktag.cli import main
from weaktag.geometry import MIN_AUDIO_SECONDS
from weaktag.inference import TagFailure, TagResult, Tagger
from weaktag.inference.timeline import plot_timeline, timeline_figure
from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet
from weaktag.postprocess import DetectedEvent, EventSettings

SR = 16_000
CLASSES = ["beep", "knock", "siren"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    model = WeakTagNet(ModelConfig(len(CLASSES), backbone=BackboneConfig(width=0.125))).eval()
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    return save_checkpoint(path, model, CLASSES, "attention", {}, tag_thresholds=np.array([0.5, 0.52, 0.545]))


def _noise(samples: int, seed: int = 0, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (samples, channels) if channels > 1 else (samples,)
    return (rng.standard_normal(shape) * 0.1).astype(np.float32)


# ---------------------------------------------------------------- 1: small chunks on the resampling path


@pytest.mark.parametrize("chunk_seconds", [0.05, 0.5, 1.0])
def test_small_chunks_of_resampled_stereo_audio_equal_the_whole_file(ckpt: Path, tmp_path: Path,
                                                                     chunk_seconds: float):
    # 44.1 kHz stereo: the resampler yields blocks of uneven length; chunk_batch=3 batches chunks
    # and flushes early for the shorter last chunk
    path = tmp_path / "stereo.wav"
    sf.write(str(path), _noise(int(7.3 * 44_100), seed=5, channels=2), 44_100, subtype="FLOAT")
    whole = Tagger.from_checkpoint(ckpt, chunk_seconds=120.0, detect_events=False).tag(path)
    tagger = Tagger.from_checkpoint(ckpt, chunk_seconds=chunk_seconds, chunk_batch=3, detect_events=False)
    assert tagger.chunk_segments < tagger.context_segments or chunk_seconds == 1.0  # the case that lost audio
    got = tagger.tag(path)
    assert got.duration == pytest.approx(7.3, abs=1e-9)
    assert got.num_segments == whole.num_segments == 45  # 7.3 s at 16 kHz: 729 frames -> 45 segments
    for a, b in [(got.segment_probs, whole.segment_probs), (got.attention_raw, whole.attention_raw),
                 (got.attention, whole.attention), (got.clip_probs, whole.clip_probs)]:
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("value", ["nan", "inf", "-0.2"])
def test_chunk_seconds_that_is_not_a_positive_number_is_refused_in_one_line(ckpt: Path, tmp_path: Path, capsys,
                                                                             value: str):
    path = tmp_path / "x.wav"
    sf.write(str(path), _noise(SR), SR)
    assert main(["tag", "--checkpoint", str(ckpt), str(path), "--chunk-seconds", value, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("weaktag tag: error:") and ("--chunk-seconds" in err
                                                                                    or "chunk_seconds" in err), err


# ---------------------------------------------------------------- 4: silence and the 0.1 s floor, file API


def test_silence_is_found_while_streaming_not_by_loading_the_file(tmp_path: Path):
    path = tmp_path / "silent.wav"
    sf.write(str(path), np.zeros(3 * READ_BLOCK + 100, np.float32), SR)
    seen = []
    with pytest.raises(AudioError, match=re.escape(SILENT)):
        for block in iter_audio_blocks(path, SR, allow_silent=False):
            seen.append(len(block))
    assert seen == [READ_BLOCK] * 3 + [100]  # block by block; the verdict comes after the last one
    assert sum(len(b) for b in iter_audio_blocks(path, SR)) == 3 * READ_BLOCK + 100  # allowed: all of it


def test_tagging_a_silent_or_too_short_file_fails_unless_silence_is_allowed(ckpt: Path, tmp_path: Path):
    short_silent = tmp_path / "short_silent.wav"  # one pass
    long_silent = tmp_path / "long_silent.wav"  # streamed in chunks (longer than chunk + context)
    sf.write(str(short_silent), np.zeros(SR, np.float32), SR)
    sf.write(str(long_silent), np.zeros(3 * SR, np.float32), SR)
    floor = int(MIN_AUDIO_SECONDS * SR)
    at_floor, below = tmp_path / "at_floor.wav", tmp_path / "below.wav"
    sf.write(str(at_floor), _noise(floor, seed=1), SR)
    sf.write(str(below), _noise(floor - 1, seed=2), SR)

    tagger = Tagger.from_checkpoint(ckpt, chunk_seconds=0.5)
    assert 3 * SR > tagger._single_pass_samples > SR
    for path in (short_silent, long_silent):
        with pytest.raises(AudioError, match=re.escape(f"{path}: {SILENT}")):
            tagger.tag(path)
    with pytest.raises(AudioError, match=re.escape(f"{below}: too short: 0.100 s of audio")):  # 1599 samples
        tagger.tag(below)
    assert tagger.tag(at_floor).num_segments == 1

    many = tagger.tag_many([short_silent, long_silent, below, at_floor])
    assert [r.reason if isinstance(r, TagFailure) else "ok" for r in many] == [
        SILENT, SILENT, f"too short: 0.100 s of audio, the minimum is {MIN_AUDIO_SECONDS} s", "ok"]

    keep = Tagger.from_checkpoint(ckpt, chunk_seconds=0.5, skip_silent=False)
    assert [r.duration for r in keep.tag_many([short_silent, long_silent])] == [1.0, 3.0]


# ---------------------------------------------------------------- 5: the progress bar and printed results


def test_results_never_share_a_line_with_the_progress_bar(ckpt: Path, tmp_path: Path, monkeypatch):
    # a terminal shows stdout and stderr on one screen: give both streams one buffer
    for i, seconds in enumerate((2.0, 3.0)):
        sf.write(str(tmp_path / f"f{i}.wav"), _noise(int(seconds * SR), seed=i), SR)
    sf.write(str(tmp_path / "silent.wav"), np.zeros(2 * SR, np.float32), SR)
    screen = io.StringIO()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setattr(sys, "stderr", screen)
    assert main(["tag", "--checkpoint", str(ckpt), str(tmp_path), "--no-events"]) == 0
    pieces = [p for p in re.split(r"[\r\n]", screen.getvalue()) if p.strip()]
    results = [p for p in pieces if ".wav\t" in p]
    assert [p.split("\t")[0] for p in results] == ["f0.wav", "f1.wav"]  # each starts its own line
    bars = [p for p in pieces if p.startswith("tagging:")]
    assert bars, pieces  # the bar was drawn, so the check above could have failed
    # the silent file's 2 s were in the header total but never tagged: the bar still ends complete
    assert "100%" in bars[-1] and "5/5 s audio" in bars[-1], bars[-1]
    assert pieces[-2:] == ["tagged 2 of 3 file(s), 1 failed; " + pieces[-2].split("; ", 1)[1],
                           f"  failed: silent.wav: {SILENT}"]


# ---------------------------------------------------------------- 10: the timeline reads


def test_timeline_legend_is_outside_the_plot_and_thresholds_wear_their_class_colour(tmp_path: Path):
    rng = np.random.default_rng(0)
    t = 60
    xa = rng.uniform(0, 1, (3, t)).astype(np.float32)
    result = TagResult(source="x.wav", duration=t * 0.16, classes=CLASSES, clip_probs=xa.mean(axis=1),
                       segment_probs=xa, attention=None, segment_seconds=0.16,
                       events=[DetectedEvent("knock", 1.28, 3.52, 0.81)])
    settings = EventSettings(output="segment", thresholds=[0.3, 0.6, 0.45])
    fig = timeline_figure(result, top_k=3, event_settings=settings)
    fig.canvas.draw()
    scores = fig.axes[1]
    legend = scores.get_legend()
    assert legend is not None
    box, plot = legend.get_window_extent(), scores.get_window_extent()
    assert box.x0 >= plot.x1  # right of the score panel: covers no curve
    lines = {line.get_label(): line for line in scores.get_lines()}
    order = ["knock"] + [label for label, _ in result.top(3) if label != "knock"]  # events first, then top tags
    assert sorted(order) == sorted(CLASSES)
    thr = dict(zip(CLASSES, settings.thresholds))
    assert [text.get_text() for text in legend.get_texts()] == [
        text for name in order for text in (name, f"{name} threshold {thr[name]:.2f}")]
    for k, name in enumerate(CLASSES):
        curve, threshold = lines[name], lines[f"{name} threshold {settings.thresholds[k]:.2f}"]
        assert to_rgba(threshold.get_color()) == to_rgba(curve.get_color())
        assert threshold.get_linestyle() == "--"
        assert np.allclose(threshold.get_ydata(), settings.thresholds[k])
    assert len({to_rgba(lines[name].get_color()) for name in CLASSES}) == 3
    png = plot_timeline(result, tmp_path / "x.png", top_k=3, event_settings=settings)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
