"""``weaktag tag`` as a new user meets it (issue 7, tagging items), beyond tests/integration/test_usability.py:
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
from matplotlib.lines import Line2D
from matplotlib.text import Text

from conftest import REPO
from weaktag.audio import READ_BLOCK, SILENT, AudioError, iter_audio_blocks
from weaktag.checkpoint import save_checkpoint
from weaktag.cli import main
from weaktag.geometry import MIN_AUDIO_SECONDS
from weaktag.inference import TagFailure, TagResult, Tagger, TaggingConfig
from weaktag.inference.timeline import TimelineWriter, plot_timeline, timeline_figure
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
    assert tagger.plan.chunk_segments < tagger.plan.context_segments or chunk_seconds == 1.0  # the case that lost audio
    got = tagger.tag(path)
    assert got.duration == pytest.approx(7.3, abs=1e-9)
    assert got.num_segments == whole.num_segments == 46  # 7.3 s at 16 kHz: 46 segments of 0.16 s reach 7.36 s
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
    assert 3 * SR > tagger.plan.single_pass_samples > SR
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
    # the legend: a line sample and a label an entry, drawn as figure artists (no Legend, which lays
    # itself out again at every draw)
    texts = [a for a in fig.artists if isinstance(a, Text) and a.get_visible()]
    handles = [a for a in fig.artists if isinstance(a, Line2D) and a.get_visible()]
    assert len(texts) == len(handles) == 6
    plot = scores.get_window_extent()
    for text, handle in zip(texts, handles):
        box, sample = text.get_window_extent(), handle.get_window_extent()
        assert plot.x1 <= sample.x0 < sample.x1 < box.x0  # right of the score panel: covers no curve
        assert sample.y0 <= (box.y0 + box.y1) / 2 <= sample.y1 + 1  # on its label's line
    assert [t.get_window_extent().y0 for t in texts] == sorted((t.get_window_extent().y0 for t in texts),
                                                               reverse=True)  # top down, in order
    lines = {line.get_label(): line for line in scores.get_lines()}
    order = ["knock"] + [label for label, _ in result.top(3) if label != "knock"]  # events first, then top tags
    assert sorted(order) == sorted(CLASSES)
    thr = dict(zip(CLASSES, settings.thresholds))
    labels = [text.get_text() for text in texts]
    assert labels == [text for name in order for text in (name, f"{name} threshold {thr[name]:.2f}")]
    for label, handle in zip(labels, handles):  # each sample looks like its line
        assert to_rgba(handle.get_color()) == to_rgba(lines[label].get_color())
        assert handle.get_linestyle() == lines[label].get_linestyle()
    for k, name in enumerate(CLASSES):
        curve, threshold = lines[name], lines[f"{name} threshold {settings.thresholds[k]:.2f}"]
        assert to_rgba(threshold.get_color()) == to_rgba(curve.get_color())
        assert threshold.get_linestyle() == "--" and curve.get_linestyle() == "-"
        assert np.allclose(threshold.get_ydata(), settings.thresholds[k])
    assert len({to_rgba(lines[name].get_color()) for name in CLASSES}) == 3
    png = plot_timeline(result, tmp_path / "x.png", top_k=3, event_settings=settings)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _timeline_result(seed: int, classes: list[str], source: str = "y.wav") -> TagResult:
    rng = np.random.default_rng(seed)
    xa = rng.uniform(0, 1, (len(classes), 62)).astype(np.float32)
    return TagResult(source=source, duration=10.0, classes=classes, clip_probs=xa.mean(axis=1),
                     segment_probs=xa, attention=None, segment_seconds=0.16,
                     events=[DetectedEvent(classes[1], 1.28, 3.52, 0.81)],
                     spectrogram=rng.normal(size=(64, 998)).astype(np.float32))


def test_timeline_png_is_the_same_whether_drawn_fresh_on_a_reused_figure_or_in_a_worker(tmp_path: Path):
    import matplotlib.image

    from weaktag.inference import timeline

    settings = EventSettings(output="segment", thresholds=[0.3, 0.6, 0.45])
    result, other = _timeline_result(1, CLASSES), _timeline_result(2, CLASSES, source="z.wav")
    timeline._FIGURES.clear()
    fresh = plot_timeline(result, tmp_path / "fresh.png", top_k=3, event_settings=settings)
    plot_timeline(other, tmp_path / "other.png", top_k=3, event_settings=settings)  # same layout: reuses it
    assert len(timeline._FIGURES) == 1
    again = plot_timeline(result, tmp_path / "again.png", top_k=3, event_settings=settings)
    with TimelineWriter(1, top_k=3, event_settings=settings) as writer:
        writer.submit(result, tmp_path / "worker.png")
    image = matplotlib.image.imread(fresh)
    # cropped to its content, legend included: wider than the plots (6.25 in), no taller than the canvas
    assert image.shape[1] > 800 and 350 < image.shape[0] <= 100 * (4.2 + 0.28 * 3)
    assert not np.array_equal(matplotlib.image.imread(tmp_path / "other.png"), image)  # a check that can fail
    for png in (again, tmp_path / "worker.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert np.array_equal(matplotlib.image.imread(png), image)  # nothing of the other file left on it


@pytest.mark.parametrize("name", ["x", "a class name long enough to push the legend far out"])
def test_the_fixed_timeline_layout_leaves_room_for_labels_legend_and_title(name: str):
    # the canvas is not sized by a layout pass, so its margins must hold the longest texts:
    # nothing may touch its edges (it would be cut off), whatever the class names and title
    classes = ["beep", name, "siren"]
    result = _timeline_result(3, classes, source="a/folder/with/a/rather/long/name/recording_0001.flac")
    fig = timeline_figure(result, top_k=3, event_settings=EventSettings(output="segment"))
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[:, :, :3]
    background = pixels[0, 0]
    for edge in (pixels[:8], pixels[-8:], pixels[:, :8], pixels[:, -8:]):
        assert (edge == background).all()
    right = max(t.get_window_extent().x1 for t in [*fig.artists, fig.axes[0].title] if isinstance(t, Text))
    assert right < pixels.shape[1] - 8  # the check above saw the texts' row of pixels


# ---------------------------------------------------------------- issue 19: interrupts, full disks, ranges, names


def _folder_of_clips(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):  # different lengths: one batch per file, so a stop falls between files
        paths.append(folder / f"c{i}.wav")
        sf.write(str(paths[-1]), _noise(SR + 1600 * i, seed=i), SR)
    return paths


def _stop_after(monkeypatch, files: int, stop) -> None:
    """Tagger.iter_tag that calls ``stop()`` once ``files`` results were handed out."""
    real = Tagger.iter_tag

    def iter_tag(self, *args, **kwargs):
        for k, item in enumerate(real(self, *args, **kwargs)):
            if k == files:
                stop()
            yield item

    monkeypatch.setattr(Tagger, "iter_tag", iter_tag)


def _read(path: Path, delimiter: str = ",") -> list[dict]:
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def _raise_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("signal_name, stop, status", [
    ("SIGINT", _raise_keyboard_interrupt, 130),
    ("SIGTERM", lambda: __import__("os").kill(__import__("os").getpid(), __import__("signal").SIGTERM), 143),
])
def test_a_stopped_run_writes_what_it_finished(ckpt: Path, tmp_path: Path, monkeypatch, capsys, signal_name: str,
                                               stop, status: int):
    import json
    import signal

    _folder_of_clips(tmp_path / "audio", 5)
    _stop_after(monkeypatch, 2, stop)
    out = tmp_path / "out"
    before = signal.getsignal(signal.SIGTERM)
    code = main(["tag", "--checkpoint", str(ckpt), str(tmp_path / "audio"), "--out", str(out), "--quiet",
                 "--segments", "--timeline"])  # timelines: drawn in worker processes, which must not hang a stop
    assert code == status
    assert signal.getsignal(signal.SIGTERM) == before  # the handler was put back
    err = capsys.readouterr().err
    assert f"weaktag tag: interrupted ({signal_name}) after 2 file(s), 3 not done; their results are in {out}" in err
    assert "Traceback" not in err
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["status"], summary["interrupted_by"], summary["ok"], summary["not_done"]) == (
        "interrupted", signal_name, 2, 3)
    done = ["c0.wav", "c1.wav"]  # the shortest first
    assert sorted({r["filename"] for r in _read(out / "tags.csv")}) == done
    assert [r["filename"] for r in json.loads((out / "tags.json").read_text())] == done
    assert {r["filename"] for r in _read(out / "events.tsv", "\t")} <= set(done)
    assert _read(out / "errors.tsv", "\t") == []
    segments = np.load(out / "segments.npz")
    assert sorted(k for k in segments.files if k.endswith("/clip_probs")) == [f"{n}/clip_probs" for n in done]
    assert sorted(p.name for p in (out / "timelines").iterdir()) == ["c0.png", "c1.png"]


def test_rows_are_on_disk_while_the_run_goes(ckpt: Path, tmp_path: Path, monkeypatch):
    # what a kill -9 would leave: the finished files' rows, and a summary that says the run never ended
    import json

    _folder_of_clips(tmp_path / "audio", 3)
    out = tmp_path / "out"
    seen = {}

    def look() -> None:
        seen["tags"] = {r["filename"] for r in _read(out / "tags.csv")}
        seen["status"] = json.loads((out / "summary.json").read_text())["status"]

    _stop_after(monkeypatch, 2, look)
    assert main(["tag", "--checkpoint", str(ckpt), str(tmp_path / "audio"), "--out", str(out), "--quiet"]) == 0
    assert seen == {"tags": {"c0.wav", "c1.wav"}, "status": "running"}
    assert json.loads((out / "summary.json").read_text())["status"] == "complete"


def test_a_full_disk_names_the_file_and_leaves_no_complete_looking_summary(ckpt: Path, tmp_path: Path,
                                                                           monkeypatch, capsys):
    import csv
    import errno
    import json

    _folder_of_clips(tmp_path / "audio", 3)
    out = tmp_path / "out"
    real_writer = csv.writer

    class FullDisk:  # the events table runs out of space at its first row
        def __init__(self, f, **kwargs):
            self.writer, self.events = real_writer(f, **kwargs), f.name.endswith("events.tsv")

        def writerow(self, row):
            self.writer.writerow(row)

        def writerows(self, rows):
            if self.events and rows:
                raise OSError(errno.ENOSPC, "No space left on device")  # as a write reports it: no file name
            self.writer.writerows(rows)

    monkeypatch.setattr("weaktag.inference.writers.csv.writer", FullDisk)
    assert main(["tag", "--checkpoint", str(ckpt), str(tmp_path / "audio"), "--out", str(out), "--quiet",
                 "--event-threshold", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"weaktag tag: error: {out / 'events.tsv'}: No space left on device "
                   f"(tagging stopped; the outputs in {out} are incomplete)"), err
    assert json.loads((out / "summary.json").read_text())["status"] == "running"
    monkeypatch.undo()

    # the summary itself: written atomically, so a failed write leaves the "running" one, never half a file
    real_write_text = Path.write_text

    def write_text(self, text, *args, **kwargs):
        if self.name == "summary.json.tmp" and '"complete"' in text:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    assert main(["tag", "--checkpoint", str(ckpt), str(tmp_path / "audio"), "--out", str(out), "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"weaktag tag: error: {out / 'summary.json'}: No space left on device "
        f"(tagging stopped; the outputs in {out} are incomplete)")
    assert json.loads((out / "summary.json").read_text())["status"] == "running"
    assert not (out / "summary.json.tmp").exists()


@pytest.mark.parametrize("option, value, expected", [
    ("--top-k", "-3", "--top-k: -3 is below its minimum 1"),
    ("--top-k", "0", "--top-k: 0 is below its minimum 1"),
    ("--event-threshold", "1.5", "--event-threshold: beep=1.5 is above its maximum 1.0 (allowed: 0.0 to 1.0)"),
    ("--event-threshold", "0.5,-0.1,0.5", "--event-threshold: knock=-0.1 is below its minimum 0.0 (allowed: 0.0 to"),
    ("--event-threshold", "siren=1.01", "--event-threshold: siren=1.01 is above its maximum 1.0"),
    ("--tag-threshold", "2", "--tag-threshold: beep=2.0 is above its maximum 1.0"),
    ("--tag-threshold", "knock=-1", "--tag-threshold: knock=-1.0 is below its minimum 0.0"),
    ("--median-filter", "-0.5", "--median-filter: -0.5 is below its minimum 0.0"),
    ("--stay-on", "0", "--stay-on: 0.0 must be above 0.0"),
    ("--stay-on", "1.5", "--stay-on: 1.5 is above its maximum 1.0"),
    ("--max-gap", "-0.16", "--max-gap: -0.16 is below its minimum 0.0"),
    ("--min-duration", "inf", "--min-duration: inf"),
    ("--chunk-seconds", "0", "--chunk-seconds: 0.0 must be above 0.0"),
    ("--batch-size", "0", "--batch-size: 0 is below its minimum 1"),
    ("--workers", "-1", "--workers: -1 is below its minimum 0"),
    ("--threads", "0", "--threads: 0 is below its minimum 1"),
])
def test_every_tag_option_is_range_checked_in_one_line(ckpt: Path, tmp_path: Path, capsys, option: str, value: str,
                                                       expected: str):
    path = tmp_path / "x.wav"
    sf.write(str(path), _noise(SR), SR)
    assert main(["tag", "--checkpoint", str(ckpt), str(path), f"{option}={value}", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"weaktag tag: error: {expected}"), err


def test_the_python_api_checks_the_same_ranges(ckpt: Path, tmp_path: Path):
    from weaktag.errors import ConfigError
    from weaktag.inference import tag_files

    with pytest.raises(ConfigError, match="top_k: -3 is below its minimum 1"):
        Tagger.from_checkpoint(ckpt, top_k=-3)
    with pytest.raises(ConfigError, match=r"tag_thresholds: item 2: 1.5 is above its maximum 1.0"):
        Tagger.from_checkpoint(ckpt, tag_thresholds=[0.5, 1.5, 0.5])
    with pytest.raises(ConfigError, match="event_thresholds: siren=-0.2 is below its minimum 0.0"):
        Tagger.from_checkpoint(ckpt, settings=TaggingConfig(event_thresholds=[0.5, 0.5, -0.2]))
    with pytest.raises(ConfigError, match="median_filter_seconds: -1 is below its minimum 0.0"):
        Tagger.from_checkpoint(ckpt, settings=TaggingConfig(median_filter_seconds=-1))
    tagger = Tagger.from_checkpoint(ckpt)
    with pytest.raises(ConfigError, match="top_k: 0 is below its minimum 1"):
        tag_files(tagger, [tmp_path], top_k=0, progress=False)


def test_events_of_untagged_classes_are_marked_or_left_out(ckpt: Path, tmp_path: Path, capsys):
    path = tmp_path / "x.wav"
    sf.write(str(path), _noise(2 * SR), SR)
    # every class gets an event (threshold 0); only beep is tagged for the clip (threshold 0 vs 1)
    base = ["tag", "--checkpoint", str(ckpt), str(path), "--quiet", "--event-threshold", "0",
            "--tag-threshold", "beep=0,knock=1,siren=1"]
    assert main(base + ["--out", str(tmp_path / "all")]) == 0
    rows = _read(tmp_path / "all" / "events.tsv", "\t")
    assert list(rows[0]) == ["filename", "onset", "offset", "event_label", "score", "clip_above_threshold"]
    assert {r["event_label"]: r["clip_above_threshold"] for r in rows} == {"beep": "1", "knock": "0", "siren": "0"}
    assert main(base + ["--out", str(tmp_path / "tagged"), "--events-for", "tagged"]) == 0
    assert [r["event_label"] for r in _read(tmp_path / "tagged" / "events.tsv", "\t")] == ["beep"]
    capsys.readouterr()
    assert main(base) == 0
    events = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  event")]
    assert len(events) == 3
    marked = {line.split("\t")[1] for line in events if line.endswith("(class below its clip threshold)")}
    assert marked == {"knock", "siren"}


def test_file_names_are_the_same_however_the_files_are_given(ckpt: Path, tmp_path: Path, monkeypatch):
    folder = tmp_path / "audio"
    _folder_of_clips(folder / "sub", 1)
    _folder_of_clips(folder, 2)
    monkeypatch.chdir(tmp_path)
    ways = {"folder": ["audio"], "glob": ["audio/**/*.wav"], "dotted": ["./audio/../audio"],
            "absolute": [str(p) for p in sorted(folder.rglob("*.wav"))]}
    seen = {}
    for way, inputs in ways.items():
        out = tmp_path / way
        assert main(["tag", "--checkpoint", str(ckpt), *inputs, "--out", str(out), "--quiet", "--segments",
                     "--event-threshold", "0"]) == 0
        seen[way] = (sorted({r["filename"] for r in _read(out / "tags.csv")}),
                     sorted({r["filename"] for r in _read(out / "events.tsv", "\t")}),
                     sorted(k for k in np.load(out / "segments.npz").files if k.endswith("/clip_probs")))
    expected = ["c0.wav", "c1.wav", "sub/c0.wav"]
    assert seen["folder"] == (expected, expected, [f"{n}/clip_probs" for n in expected])
    assert all(v == seen["folder"] for v in seen.values()), seen


def test_sigterm_stops_a_weaktag_tag_process_cleanly(ckpt: Path, tmp_path: Path):
    # SIGTERM (what kill, timeout and schedulers send) would end a process unwritten; Ctrl-C's
    # KeyboardInterrupt takes the same path (test_a_stopped_run_writes_what_it_finished)
    import json
    import os
    import signal
    import subprocess
    import time

    _folder_of_clips(tmp_path / "audio", 40)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    # timelines make every file slow (a PNG each), so the signal lands mid-run
    proc = subprocess.Popen([sys.executable, "-m", "weaktag.cli", "tag", "--checkpoint", str(ckpt),
                             str(tmp_path / "audio"), "--out", str(out), "--timeline", "--quiet"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        tags = out / "tags.csv"
        if tags.exists() and len(tags.read_text().splitlines()) > 1 + 2 * len(CLASSES):  # two files done
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "weaktag tag: interrupted (SIGTERM)" in err, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["ok"] >= 2 and summary["not_done"] > 0, summary
    assert summary["ok"] + summary["not_done"] == 40
    assert len({r["filename"] for r in _read(out / "tags.csv")}) == summary["ok"]
