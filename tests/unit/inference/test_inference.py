"""``weaktag tag`` and the Tagger API: chunked long files, batching, events, bad files, outputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from weaktag.audio import iter_audio_blocks, load_audio, num_frames, pad_to_segments
from weaktag.checkpoint import save_checkpoint
from weaktag.cli import main
from weaktag.geometry import VGGISH_GRID
from weaktag.inference import TagFailure, TagResult, Tagger, discover_inputs
from weaktag.labels import Event
from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet, num_segments
from weaktag.postprocess import EventSettings, parse_thresholds

SR = 16_000
CLASSES = ["a", "b", "c"]
TINY_CLASSES = ["tone", "buzz"]
# Known events of the file the trained tiny model is asked about (label, onset, offset); the
# 5.12 s chunks used there put boundaries at 5.12, 10.24 and 15.36 s, inside the last buzz.
KNOWN_EVENTS = [("tone", 2.0, 4.0), ("buzz", 7.0, 8.5), ("tone", 12.0, 13.0), ("buzz", 15.0, 18.0),
                ("tone", 16.0, 17.0)]
EVENT_TOLERANCE = 0.32  # seconds (two segments), on onset and on offset; seeds 0-5 all land within 0.16 s
CHUNK_TOLERANCE = 1e-5  # chunked vs whole-file pass, any output


def _random_checkpoint(path: Path, attention: bool = True, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = WeakTagNet(ModelConfig(len(CLASSES), attention=attention, backbone=BackboneConfig(width=0.125))).eval()
    return save_checkpoint(path, model, CLASSES, "attention" if attention else "pooling", {},
                           tag_thresholds=np.array([0.5, 0.55, 0.6]))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return _random_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt")


@pytest.fixture(scope="module")
def pool_ckpt(tmp_path_factory) -> Path:
    return _random_checkpoint(tmp_path_factory.mktemp("pool") / "model.pt", attention=False, seed=1)


def _noise_with_tones(seconds: float, sr: int, seed: int = 0, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    x = (rng.standard_normal(n) * 0.03).astype(np.float32)
    t = np.arange(2 * sr) / sr
    for _ in range(int(seconds // 8)):
        start = int(rng.integers(0, n - 2 * sr))
        x[start : start + 2 * sr] += (0.3 * np.sin(2 * np.pi * rng.uniform(300, 4000) * t)).astype(np.float32)
    return np.stack([x, 0.5 * x], axis=1) if channels == 2 else x


@pytest.fixture(scope="module")
def long_file(tmp_path_factory) -> Path:
    """3 minutes (and a bit) of noise and tones, 44.1 kHz stereo: exercises streaming resampling too."""
    path = tmp_path_factory.mktemp("long") / "long.wav"
    sf.write(str(path), _noise_with_tones(180.3, 44_100, channels=2), 44_100)
    return path


# --------------------------------------------------------------------------- the trained tiny model


def _render(n: int, events, rng: np.random.Generator) -> np.ndarray:
    """Quiet noise plus loud 'tone' (1 kHz + 2 kHz) and 'buzz' (3-5 kHz band noise) events."""
    x = (rng.standard_normal(n) * 0.003).astype(np.float32)
    t = np.arange(n) / SR
    for label, onset, offset in events:
        a, b = int(onset * SR), int(offset * SR)
        if label == "tone":
            s = 0.3 * np.sin(2 * np.pi * 1000 * t[a:b]) + 0.1 * np.sin(2 * np.pi * 2000 * t[a:b])
        else:
            spectrum = np.fft.rfft(rng.standard_normal(b - a))
            freqs = np.fft.rfftfreq(b - a, 1 / SR)
            spectrum[(freqs < 3000) | (freqs > 5000)] = 0
            s = np.fft.irfft(spectrum, b - a)
            s = 0.3 * s / (np.abs(s).max() + 1e-9)
        x[a:b] += s.astype(np.float32)
    return x


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    return train_tiny(tmp_path_factory.mktemp("tiny"))


def train_tiny(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """A very narrow model trained for a few seconds with strong (segment) labels on two synthetic
    classes, and a 20 s file holding KNOWN_EVENTS. Returns (checkpoint, wav)."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    seconds = 2.56
    n = int(seconds * SR)
    segments = num_segments(num_frames(n))  # 15: the last frames do not fill a 16th segment
    waves, targets = [], []
    for _ in range(64):
        events = []
        for label in TINY_CLASSES:
            if rng.random() < 0.7:
                d = rng.uniform(0.4, 1.5)
                onset = rng.uniform(0, seconds - d)
                events.append((label, onset, onset + d))
        waves.append(_render(n, events, rng))
        targets.append(VGGISH_GRID.segment_labels([Event(*e) for e in events], TINY_CLASSES, segments))
    model = WeakTagNet(ModelConfig(len(TINY_CLASSES), backbone=BackboneConfig(width=0.0625)))
    with torch.no_grad():
        features = model.frontend(torch.from_numpy(np.stack(waves)))
    y = torch.from_numpy(np.stack(targets))
    optimiser = torch.optim.Adam(model.parameters(), 3e-3)
    bce = torch.nn.functional.binary_cross_entropy
    model.train()
    for _ in range(40):
        idx = torch.randint(0, len(features), (8,))
        out = model.forward_features(features[idx])
        loss = bce(out.segment_probs, y[idx]) + bce(out.clip_probs.clamp(0, 1), y[idx].amax(-1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    ckpt = save_checkpoint(folder / "tiny.pt", model, TINY_CLASSES, "strong", {},
                           events=EventSettings(output="segment", thresholds=[0.5, 0.5], median_filter_seconds=0.48))
    wav = folder / "known.wav"
    sf.write(str(wav), _render(20 * SR, KNOWN_EVENTS, np.random.default_rng(seed + 1)), SR)
    return ckpt, wav


# --------------------------------------------------------------------------- long files


def _whole_file(model: WeakTagNet, wave: np.ndarray):
    """One pass over the whole recording, zero-padded to whole segments as the Tagger pads it."""
    with torch.no_grad():
        return model(torch.from_numpy(pad_to_segments(wave, model.grid))[None])


def test_streamed_audio_equals_load_audio(long_file: Path) -> None:
    streamed = np.concatenate(list(iter_audio_blocks(long_file, block_frames=10_000)))
    np.testing.assert_array_equal(streamed, load_audio(long_file))


@pytest.mark.parametrize("chunk_seconds", [10.24, 30.72])
def test_chunked_matches_whole_file(ckpt: Path, long_file: Path, chunk_seconds: float) -> None:
    tagger = Tagger.from_checkpoint(ckpt, chunk_seconds=chunk_seconds, chunk_batch=2)
    result = tagger.tag(long_file)
    ref = _whole_file(tagger.model, load_audio(long_file))
    assert result.segment_probs.shape == tuple(ref.segment_probs.shape[1:])
    assert result.num_segments > 2 * int(chunk_seconds / 0.16)  # really several chunks
    assert np.abs(result.segment_probs - ref.segment_probs[0].numpy()).max() <= CHUNK_TOLERANCE
    assert np.abs(result.attention_raw - ref.attention_raw[0].numpy()).max() <= CHUNK_TOLERANCE
    assert np.abs(result.attention - ref.attention[0].numpy()).max() <= CHUNK_TOLERANCE
    assert np.abs(result.clip_probs - ref.clip_probs[0].numpy()).max() <= CHUNK_TOLERANCE
    assert result.duration == pytest.approx(180.3, abs=1e-3)


def test_chunk_boundaries_do_not_matter_pooling_model(pool_ckpt: Path) -> None:
    wave = _noise_with_tones(47.0, SR, seed=3)
    results = [Tagger.from_checkpoint(pool_ckpt, chunk_seconds=c).tag(wave) for c in (5.12, 10.24, 60.0)]
    ref = _whole_file(Tagger.from_checkpoint(pool_ckpt).model, wave)
    for r in results:
        assert r.attention is None and r.attention_raw is None
        assert np.abs(r.segment_probs - ref.segment_probs[0].numpy()).max() <= CHUNK_TOLERANCE
        assert np.abs(r.clip_probs - ref.clip_probs[0].numpy()).max() <= CHUNK_TOLERANCE


def test_too_little_context_would_show(ckpt: Path) -> None:
    """The tolerance is not vacuous: with one segment of context the chunk edges do show."""
    wave = _noise_with_tones(30.0, SR, seed=4)
    ref = Tagger.from_checkpoint(ckpt, chunk_seconds=60).tag(wave)
    narrow = Tagger.from_checkpoint(ckpt, chunk_seconds=5.12, context_seconds=0.16).tag(wave)
    assert np.abs(narrow.segment_probs - ref.segment_probs).max() > 1e-3


# --------------------------------------------------------------------------- short files and batches


@pytest.mark.parametrize("samples", [1600, 2800, 4000, 16_000])
def test_short_clips(ckpt: Path, samples: int) -> None:
    tagger = Tagger.from_checkpoint(ckpt)
    wave = _noise_with_tones(1.0, SR)[:samples]
    result = tagger.tag(wave)
    assert result.duration == pytest.approx(samples / SR)
    assert result.num_segments >= 1
    ref = _whole_file(tagger.model, wave)
    assert np.abs(result.clip_probs - ref.clip_probs[0].numpy()).max() <= 1e-5


def test_batched_equals_one_by_one(ckpt: Path, tmp_path: Path) -> None:
    paths = []
    for i, seconds in enumerate([10, 10, 10, 4, 10, 4, 2.5]):
        path = tmp_path / f"{i}.wav"
        sf.write(str(path), _noise_with_tones(seconds, SR, seed=10 + i), SR)
        paths.append(path)
    tagger = Tagger.from_checkpoint(ckpt, batch_size=3)
    batched = tagger.tag_many(paths)
    for path, result in zip(paths, batched):
        alone = tagger.tag(path)
        assert result.source == str(path)
        np.testing.assert_allclose(result.segment_probs, alone.segment_probs, atol=1e-5)
        np.testing.assert_allclose(result.clip_probs, alone.clip_probs, atol=1e-5)
    padded = Tagger.from_checkpoint(ckpt, pad_batches=True).tag_many(paths)
    for result, exact in zip(padded, batched):  # padding only touches the last segments
        assert result.segment_probs.shape == exact.segment_probs.shape
        np.testing.assert_allclose(result.segment_probs[:, :-3], exact.segment_probs[:, :-3], atol=1e-5)


# --------------------------------------------------------------------------- events


def test_events_match_known_events(tiny) -> None:
    ckpt, wav = tiny
    tagger = Tagger.from_checkpoint(ckpt, chunk_seconds=5.12)
    result = tagger.tag(wav)
    assert [label for label, _ in result.top(2)] and all(p > 0.5 for _, p in result.top(2))
    detected = sorted((e.label, e.onset, e.offset) for e in result.events)
    assert len(detected) == len(KNOWN_EVENTS), detected
    for label, onset, offset in sorted(KNOWN_EVENTS):
        match = [d for d in detected if d[0] == label and abs(d[1] - onset) <= EVENT_TOLERANCE
                 and abs(d[2] - offset) <= EVENT_TOLERANCE]
        assert len(match) == 1, (label, onset, offset, detected)
    whole = Tagger.from_checkpoint(ckpt, chunk_seconds=60).tag(wav)
    assert [(e.label, e.onset, e.offset) for e in whole.events] == [(e.label, e.onset, e.offset) for e in result.events]


def test_event_overrides(tiny) -> None:
    ckpt, wav = tiny
    # the range ends: 0 makes every class one event over the whole file, 1 keeps only saturated segments
    loose = Tagger.from_checkpoint(ckpt, event_thresholds=0.0).tag(wav)
    assert sorted(e.label for e in loose.events) == sorted(TINY_CLASSES) and all(e.onset == 0 for e in loose.events)
    strict = Tagger.from_checkpoint(ckpt, event_thresholds=1.0).tag(wav)
    assert all(e.score == pytest.approx(1.0) for e in strict.events)
    with pytest.raises(ValueError, match=r"event_thresholds: 1.1 is above its maximum 1.0 \(allowed: 0.0 to 1.0\)"):
        Tagger.from_checkpoint(ckpt, event_thresholds=1.1)
    raw = Tagger.from_checkpoint(ckpt, median_filter_seconds=0).tag(wav)
    filtered = Tagger.from_checkpoint(ckpt, median_filter_seconds=0.8).tag(wav)
    assert len(filtered.events) <= len(raw.events)
    attention = Tagger.from_checkpoint(ckpt, event_output="product").tag(wav)
    assert attention.events  # the product kind finds the loud events too
    assert VGGISH_GRID.median_filter_segments(0.48) == 3 and VGGISH_GRID.median_filter_segments(0) == 1
    assert VGGISH_GRID.median_filter_segments(0.32) == 3 and VGGISH_GRID.median_filter_segments(0.8) == 5


def test_parse_thresholds() -> None:
    assert parse_thresholds("0.3", CLASSES) == [0.3, 0.3, 0.3]
    assert parse_thresholds("0.1,0.2,0.3", CLASSES) == [0.1, 0.2, 0.3]
    assert parse_thresholds("b=0.9", CLASSES, [0.4, 0.4, 0.4]) == [0.4, 0.9, 0.4]
    with pytest.raises(ValueError):
        parse_thresholds("0.1,0.2", CLASSES)
    with pytest.raises(ValueError):
        parse_thresholds("zebra=0.2", CLASSES)


def test_select_tags(ckpt: Path) -> None:
    r = TagResult("x", 1.0, CLASSES, np.array([0.2, 0.9, 0.65], np.float32), np.zeros((3, 1)), None, 0.16,
                  tag_thresholds=np.array([0.5, 0.55, 0.6]))
    assert [t.label for t in r.select_tags(1, "top-k")] == ["b"]
    assert [t.label for t in r.select_tags(1, "threshold")] == ["b", "c"]
    assert [t.label for t in r.select_tags(3, "union")] == ["b", "c", "a"]
    assert r.above() == [("b", pytest.approx(0.9)), ("c", pytest.approx(0.65))]


# --------------------------------------------------------------------------- CLI: bad files, outputs


def _read_tsv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_bad_files_are_skipped_and_reported(ckpt: Path, tmp_path: Path, capsys) -> None:
    audio = tmp_path / "audio"
    (audio / "sub").mkdir(parents=True)
    sf.write(str(audio / "good1.wav"), _noise_with_tones(3.0, SR, seed=1), SR)
    sf.write(str(audio / "sub" / "good2.flac"), _noise_with_tones(2.0, 22_050, seed=2), 22_050)
    sf.write(str(audio / "tiny.wav"), _noise_with_tones(1.0, SR)[:1600], SR)  # 0.1 s
    sf.write(str(audio / "empty.wav"), np.zeros(0, np.float32), SR)
    (audio / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    (audio / "zero_bytes.ogg").write_bytes(b"")
    (audio / "notes.txt").write_text("not audio, ignored inside a folder")
    unsupported = tmp_path / "table.csv"
    unsupported.write_text("a,b\n1,2\n")
    out = tmp_path / "out"
    code = main(["tag", "--checkpoint", str(ckpt), str(audio), str(unsupported), str(tmp_path / "missing.wav"),
                 "--out", str(out), "--quiet"])
    assert code == 0
    errors = {row["filename"]: row["reason"] for row in _read_tsv(out / "errors.tsv")}
    # named relative to the folder holding every file found (tmp_path); what was not found, as given
    assert set(errors) == {"audio/empty.wav", "audio/corrupt.wav", "audio/zero_bytes.ogg", "table.csv",
                           str(tmp_path / "missing.wav")}
    assert "empty" in errors["audio/empty.wav"] and "not found" in errors[str(tmp_path / "missing.wav")]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["files"], summary["ok"], summary["failed"]) == (8, 3, 5)
    assert summary["audio_seconds"] == pytest.approx(5.1, abs=1e-3)
    with open(out / "tags.csv", newline="") as f:
        tagged = {row["filename"] for row in csv.DictReader(f)}
    assert tagged == {"audio/good1.wav", "audio/sub/good2.flac", "audio/tiny.wav"}
    assert "5 failed" in capsys.readouterr().err
    # every file bad: exit status 1
    assert main(["tag", "--checkpoint", str(ckpt), str(audio / "corrupt.wav"), "--quiet"]) == 1


def test_api_and_cli_agree(tiny, tmp_path: Path) -> None:
    ckpt, known = tiny
    audio = tmp_path / "audio"
    audio.mkdir()
    files = {"known.wav": known}
    for i, seconds in enumerate([4.0, 4.0, 6.5, 41.0]):
        rng = np.random.default_rng(20 + i)
        events = [("tone", 0.5, 1.5), ("buzz", seconds - 2.0, seconds - 0.5)]
        path = audio / f"clip{i}.wav"
        sf.write(str(path), _render(int(seconds * SR), events, rng), SR)
        files[path.name] = path
    (audio / "known.wav").write_bytes(known.read_bytes())
    out = tmp_path / "out"
    code = main(["tag", "--checkpoint", str(ckpt), str(audio), "--out", str(out), "--segments", "--timeline",
                 "--top-k", "2", "--chunk-seconds", "10.24", "--quiet"])
    assert code == 0
    tags = {}
    with open(out / "tags.csv", newline="") as f:
        for row in csv.DictReader(f):
            tags.setdefault(row["filename"], {})[row["label"]] = float(row["probability"])
    events = _read_tsv(out / "events.tsv")
    segments = np.load(out / "segments.npz")
    assert list(segments["classes"]) == TINY_CLASSES
    tagger = Tagger.from_checkpoint(ckpt, chunk_seconds=10.24)
    for name in files:
        result = tagger.tag(audio / name, name=name)
        assert set(tags[name]) == {t.label for t in result.select_tags(2)}
        for label, p in tags[name].items():
            assert p == pytest.approx(float(result.clip_probs[TINY_CLASSES.index(label)]), abs=2e-6)
        rows = [(r["event_label"], float(r["onset"]), float(r["offset"]), float(r["score"]))
                for r in events if r["filename"] == name]
        assert rows == [(e.label, pytest.approx(e.onset), pytest.approx(e.offset), pytest.approx(e.score, abs=2e-6))
                        for e in result.events]
        np.testing.assert_allclose(segments[f"{name}/segment_probs"], result.segment_probs, atol=1e-6)
        np.testing.assert_allclose(segments[f"{name}/attention"], result.attention, atol=1e-6)
        png = out / "timelines" / (Path(name).stem + ".png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    js = json.loads((out / "tags.json").read_text())
    assert [r["filename"] for r in js] == sorted(files)


def test_cli_prints_tags_without_out(ckpt: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "x.wav"
    sf.write(str(path), _noise_with_tones(2.0, SR), SR)
    json_path = tmp_path / "tags.json"
    assert main(["tag", "--checkpoint", str(ckpt), str(path), "--top-k", "2", "--select", "top-k",
                 "--json", str(json_path), "--quiet"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("x.wav\t") and line.count(":") == 2  # relative to its folder, however given
    assert json.loads(json_path.read_text())[0]["filename"] == "x.wav"
    out = tmp_path / "out"
    assert main(["tag", "--checkpoint", str(ckpt), str(path), "--out", str(out), "--no-events", "--quiet"]) == 0
    assert (out / "tags.csv").exists() and not (out / "events.tsv").exists()


def test_discover_inputs_globs_and_folders(tmp_path: Path) -> None:
    for name in ("a.wav", "b.WAV", "sub/c.flac", ".hidden.wav", "readme.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found, failures = discover_inputs([tmp_path, str(tmp_path / "*.wav"), str(tmp_path / "nothing*.mp3")])
    assert [n for _, n in found] == ["a.wav", "b.WAV", "sub/c.flac"]  # the glob adds no duplicate
    assert failures == [TagFailure(str(tmp_path / "nothing*.mp3"), "no file matches this pattern")]
