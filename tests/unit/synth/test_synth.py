"""Tests for the soundscape synthesizer: files, label/audio agreement, determinism, real sources."""

from __future__ import annotations

import csv
import warnings
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SHARED_DATA
from weaktag.audio import load_audio
from weaktag.labels.manifest import Manifest
from weaktag.synth import (
    GENERATED_CLASSES,
    SynthConfig,
    _allocate,
    class_names,
    discover_sources,
    generate_event,
    read_sources_tsv,
    synthesize,
    synthesize_splits,
    trim_bounds,
    trim_silence,
)

SR = 16_000
needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared real-audio data not found at {SHARED_DATA}")
ESC10_CLASSES = ["baby_cry", "chainsaw", "clock_tick", "dog_bark", "fire_crackling",
                 "helicopter", "person_sneeze", "rain", "rooster", "sea_waves"]
DCASE2016_CLASSES = ["clearthroat", "cough", "doorslam", "drawer", "keyboard", "keysDrop",
                     "knock", "laughter", "pageturn", "phone", "speech"]


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _frame_db(audio: np.ndarray, frame: int = 320) -> np.ndarray:
    n = len(audio) // frame
    rms = np.sqrt(np.mean(audio[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1)) + 1e-12
    return 20 * np.log10(rms / rms.max())


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest, SynthConfig]:
    out = tmp_path_factory.mktemp("generated")
    config = SynthConfig(num_clips=8, seed=3)
    return out, synthesize(out, config), config


# --------------------------------------------------------------------------- generated sounds


def test_generated_clips_have_exact_length_and_agreeing_label_files(generated) -> None:
    out, manifest, config = generated
    assert len(manifest) == 8
    assert manifest.classes == class_names() == list(GENERATED_CLASSES)
    for clip in manifest:
        info = sf.info(str(clip.audio_path))
        assert clip.audio_path.parent == (out / "audio").resolve()
        assert (info.frames, info.channels, info.samplerate) == (int(config.clip_seconds * SR), 1, SR)
        assert clip.events and clip.labels == {e.label for e in clip.events}
        assert config.min_events <= len(clip.events) <= config.max_events
        for e in clip.events:
            assert 0.0 <= e.onset < e.offset <= config.clip_seconds
    # the three label files say the same as the returned manifest
    strong = {(r["filename"], float(r["onset"]), float(r["offset"]), r["event_label"]) for r in _read_tsv(out / "strong.tsv")}
    expected = {(c.audio_path.name, e.onset, e.offset, e.label) for c in manifest for e in c.events}
    assert strong == expected
    weak = {r["filename"]: set(r["event_labels"].split(",")) for r in _read_tsv(out / "weak.tsv")}
    assert weak == {c.audio_path.name: set(c.labels) for c in manifest}
    reloaded = Manifest.from_jsonl(out / "manifest.jsonl")
    assert reloaded.classes == manifest.classes and reloaded.clips == manifest.clips
    sources = read_sources_tsv(out / "sources.tsv")
    assert {(r["filename"], float(r["onset"]), float(r["offset"]), r["event_label"]) for r in sources} == expected
    assert {r["source"] for r in sources} == {"generated"}


def test_labelled_events_are_where_the_energy_is(tmp_path: Path) -> None:
    # one isolated event at 20 dB above the background: inside its label the mix must be far louder
    manifest = synthesize(tmp_path, SynthConfig(num_clips=12, min_events=1, max_events=1, snr_db=(20.0, 20.0), seed=7))
    seen = set()
    for clip in manifest:
        audio, _ = sf.read(str(clip.audio_path), dtype="float32")
        (event,) = clip.events
        seen.add(event.label)
        inside = np.zeros(len(audio), dtype=bool)
        inside[int(round(event.onset * SR)) : int(round(event.offset * SR))] = True
        background = np.mean(audio[~inside] ** 2)
        ratio_db = 10 * np.log10(np.mean(audio[inside] ** 2) / background)
        assert ratio_db > 8.0, (clip.clip_id, event, ratio_db)
        # and the sound is inside its label: the 20 ms just before the onset and just after the
        # offset are at background level (a label shifted by 20 ms fails this). Differencing
        # whitens the pink background so that 20 ms of it has a stable energy.
        slope = np.diff(audio.astype(np.float64), prepend=0.0)
        slope_background = np.mean(slope[~inside] ** 2)
        start, end = int(round(event.onset * SR)), int(round(event.offset * SR))
        if start >= 320:
            assert np.mean(slope[start - 320 : start] ** 2) < 3 * slope_background, (clip.clip_id, event)
        if end + 320 <= len(audio):
            assert np.mean(slope[end : end + 320] ** 2) < 3 * slope_background, (clip.clip_id, event)
    assert len(seen) >= 4  # the check covered several kinds of sound


def test_same_seed_same_clips_and_other_seed_differs(tmp_path: Path) -> None:
    config = SynthConfig(num_clips=4, clip_seconds=3.0, seed=11)
    a = synthesize(tmp_path / "a", config)
    b = synthesize(tmp_path / "b", config)
    c = synthesize(tmp_path / "c", SynthConfig(num_clips=4, clip_seconds=3.0, seed=12))
    assert [clip.events for clip in a] == [clip.events for clip in b]
    assert (tmp_path / "a" / "strong.tsv").read_bytes() == (tmp_path / "b" / "strong.tsv").read_bytes()
    for x, y in zip(a, b):
        assert x.audio_path.read_bytes() == y.audio_path.read_bytes()
    assert [clip.events for clip in a] != [clip.events for clip in c]
    assert all(x.audio_path.read_bytes() != z.audio_path.read_bytes() for x, z in zip(a, c))


def test_generated_classes_are_families_with_their_own_durations() -> None:
    expected_seconds = {"beep": (0.1, 0.4), "chirp": (0.3, 1.0), "click_train": (0.45, 2.0), "hum": (2.0, 6.0),
                        "knock": (0.1, 1.5), "noise_burst": (0.2, 1.0), "siren": (2.0, 5.0)}
    assert set(expected_seconds) == set(GENERATED_CLASSES)
    rng = np.random.default_rng(0)
    for label, (low, high) in expected_seconds.items():
        sounds = [generate_event(label, rng) for _ in range(10)]
        for sound in sounds:
            assert sound.dtype == np.float32 and np.isfinite(sound).all()
            assert low - 0.01 <= len(sound) / SR <= high + 0.01, (label, len(sound) / SR)
            assert np.max(np.abs(sound)) == pytest.approx(1.0, abs=1e-6)
        assert len({len(s) for s in sounds}) > 5, label  # randomised instances, not one template
    assert len(generate_event("hum", rng, max_seconds=1.5)) <= 1.5 * SR
    with pytest.raises(ValueError, match="unknown generated class"):
        generate_event("violin", rng)


def test_background_only_clips_are_strongly_labelled_empty(tmp_path: Path) -> None:
    manifest = synthesize(tmp_path, SynthConfig(num_clips=3, clip_seconds=2.0, background_only_prob=1.0))
    assert all(clip.events == () and clip.labels == frozenset() for clip in manifest)
    rows = _read_tsv(tmp_path / "strong.tsv")
    assert len(rows) == 3 and all(r["event_label"] == "" for r in rows)


@pytest.mark.parametrize(
    "kwargs",
    [{"clip_seconds": 0.0}, {"min_events": 3, "max_events": 2}, {"min_events": -1}, {"snr_db": (10.0, 0.0)},
     {"background_only_prob": 1.5}, {"num_clips": -1}, {"seed": -1}, {"background_dbfs": (-20.0, 3.0)}],
)
def test_bad_config_is_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SynthConfig(**kwargs)


def test_splits_use_their_own_seed_and_folders(tmp_path: Path) -> None:
    manifests = synthesize_splits(tmp_path, {"train": 3, "test": 2}, SynthConfig(clip_seconds=2.0))
    assert {name: len(m) for name, m in manifests.items()} == {"train": 3, "test": 2}
    assert [c.clip_id for c in manifests["test"]] == ["test_00000", "test_00001"]
    for name in ("train", "test"):
        assert (tmp_path / name / "strong.tsv").is_file() and (tmp_path / name / "manifest.jsonl").is_file()
    assert manifests["train"][0].audio_path.read_bytes() != manifests["test"][0].audio_path.read_bytes()


# --------------------------------------------------------------------------- trimming and real-file layouts (made here)


def _tone(seconds: float, freq: float = 440.0) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR).astype(np.float32)


def _padded_tone(lead: float, tone: float, trail: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(int((lead + tone + trail) * SR)).astype(np.float32) * 1e-4
    noise[int(lead * SR) : int(lead * SR) + int(tone * SR)] += _tone(tone)
    return noise


def test_trim_finds_the_sound_inside_silence() -> None:
    audio = _padded_tone(0.5, 0.3, 0.2)
    start, end = trim_bounds(audio, SR)
    assert abs(start / SR - 0.5) <= 0.02 and abs(end / SR - 0.8) <= 0.02
    assert len(trim_silence(audio, SR)) == end - start
    assert trim_bounds(np.zeros(1000, dtype=np.float32), SR) == (0, 0)


def test_flat_folder_sources_are_trimmed_and_bad_files_skipped(tmp_path: Path) -> None:
    src = tmp_path / "events"
    src.mkdir()
    for i, tone_seconds in enumerate((0.5, 0.5, 0.5), start=1):
        sf.write(str(src / f"tone{i:02d}.wav"), _padded_tone(1.0, tone_seconds, 0.7, seed=i), SR)
    sf.write(str(src / "hiss_1.wav"), np.random.default_rng(9).standard_normal(SR // 2).astype(np.float32) * 0.1, SR)
    (src / "tone04.wav").write_bytes(b"RIFF not really a wav file")
    sf.write(str(src / "tone05.wav"), np.full(SR, 1e-6, dtype=np.float32), SR)  # silent but not all-zero
    assert class_names(src) == ["hiss", "tone"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manifest = synthesize(tmp_path / "out", SynthConfig(num_clips=20, clip_seconds=3.0, seed=1), sources=src)
    messages = " ".join(str(w.message) for w in caught)
    assert "tone04.wav" in messages and "tone05.wav" in messages
    rows = read_sources_tsv(tmp_path / "out" / "sources.tsv")
    assert rows and not {"tone04.wav", "tone05.wav"} & {r["source"] for r in rows}
    for row in rows:
        duration = float(row["offset"]) - float(row["onset"])
        if row["event_label"] == "tone":  # the padded 2.2 s file placed as its 0.5 s tone
            assert abs(duration - 0.5) <= 0.021 and abs(float(row["source_start"]) - 1.0) <= 0.021
    assert {e.label for c in manifest for e in c.events} == {"hiss", "tone"}


def test_class_folder_layout_and_long_sources_are_truncated(tmp_path: Path) -> None:
    src = tmp_path / "events"
    for label, seconds in (("long", 4.0), ("short", 0.3)):
        (src / label).mkdir(parents=True)
        sf.write(str(src / label / f"{label}.wav"), _tone(seconds), SR)
    assert discover_sources(src).keys() == {"long", "short"}
    manifest = synthesize(tmp_path / "out", SynthConfig(num_clips=6, clip_seconds=2.0, min_events=2), sources=src)
    assert manifest.classes == ["long", "short"]
    for clip in manifest:
        for e in clip.events:
            assert 0.0 <= e.onset < e.offset <= 2.0
            if e.label == "long":  # cut at the clip end, labelled as cut
                assert e.offset == pytest.approx(2.0)


def test_splits_refuse_classes_too_small_to_partition(tmp_path: Path) -> None:
    src = tmp_path / "events"
    src.mkdir()
    sf.write(str(src / "only1.wav"), _tone(0.2), SR)
    with pytest.raises(ValueError, match="disjoint"):
        synthesize_splits(tmp_path / "out", {"train": 2, "test": 1}, SynthConfig(), sources=src)


def test_allocation_is_proportional_and_covers_every_split() -> None:
    counts = _allocate(40, [600, 200, 300])
    assert sum(counts) == 40 and min(counts) >= 1 and counts[0] > counts[2] > counts[1]
    assert _allocate(3, [600, 200, 300]) == [1, 1, 1]
    assert _allocate(5, [10, 0, 10]) == [3, 0, 2] or _allocate(5, [10, 0, 10]) == [2, 0, 3]


# --------------------------------------------------------------------------- real data


@needs_data
def test_esc10_sources_over_real_backgrounds(tmp_path: Path) -> None:
    config = SynthConfig(num_clips=6, seed=5)
    manifest = synthesize(tmp_path, config, sources=SHARED_DATA / "esc10", backgrounds=SHARED_DATA / "backgrounds")
    assert manifest.classes == ESC10_CLASSES == class_names(SHARED_DATA / "esc10")
    for clip in manifest:
        info = sf.info(str(clip.audio_path))
        assert (info.frames, info.channels, info.samplerate) == (160_000, 1, SR)
        assert clip.labels and clip.labels <= set(ESC10_CLASSES)
        assert all(0.0 <= e.onset < e.offset <= 10.0 for e in clip.events)
    for row in read_sources_tsv(tmp_path / "sources.tsv"):
        source = SHARED_DATA / "esc10" / row["source"]
        assert source.is_file() and source.parent.name == row["event_label"]


@needs_data
def test_trim_removes_the_silence_of_a_real_esc10_clip() -> None:
    # this dog bark is ~0.26 s of barking in the middle of 5 s of near-silence
    audio = load_audio(SHARED_DATA / "esc10" / "dog_bark" / "1-100032-A.ogg")
    start, end = trim_bounds(audio, SR, threshold_db=35.0)
    assert start / SR > 1.0 and (len(audio) - end) / SR > 1.0
    trimmed = trim_silence(audio, SR, threshold_db=35.0)
    db = _frame_db(np.concatenate([trimmed[:320], trimmed[-320:], trimmed]))  # relative to the trimmed peak frame
    assert db[0] > -35.0 and db[1] > -35.0
    full_db = _frame_db(audio)
    assert full_db[0] < -35.0 and full_db[-1] < -35.0  # and the untrimmed edges were silence indeed


@needs_data
def test_flat_dcase2016_layout_gives_its_11_classes() -> None:
    assert class_names(SHARED_DATA / "dcase2016_task2_events") == DCASE2016_CLASSES
    assert all(len(files) == 20 for files in discover_sources(SHARED_DATA / "dcase2016_task2_events").values())


@needs_data
def test_splits_use_disjoint_source_files(tmp_path: Path) -> None:
    manifests = synthesize_splits(tmp_path, {"train": 12, "validation": 6, "test": 6},
                                  SynthConfig(clip_seconds=4.0, min_events=2, max_events=3),
                                  sources=SHARED_DATA / "dcase2016_task2_events", backgrounds=SHARED_DATA / "backgrounds")
    used = {name: {r["source"] for r in read_sources_tsv(tmp_path / name / "sources.tsv")} for name in manifests}
    assert all(used.values())
    for a, b in combinations(used, 2):
        assert not used[a] & used[b], (a, b)
    assert all(m.classes == DCASE2016_CLASSES for m in manifests.values())


# --------------------------------------------------------------------------- backgrounds per split, borrowed sources


def _dominant_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio.astype(np.float64)))
    return float(np.fft.rfftfreq(len(audio), 1 / SR)[int(np.argmax(spectrum))])


def test_each_split_hears_only_its_own_backgrounds(tmp_path: Path) -> None:
    tones = {"train": 300.0, "test": 1200.0}
    folders = {}
    for name, hz in tones.items():
        folders[name] = tmp_path / "bg" / name
        folders[name].mkdir(parents=True)
        sf.write(str(folders[name] / f"{name}.wav"), _tone(3.0, hz), SR)
    config = SynthConfig(clip_seconds=1.0, min_events=0, max_events=0, seed=2)
    manifests = synthesize_splits(tmp_path / "out", {"train": 3, "test": 3}, config, backgrounds=folders)
    for name, m in manifests.items():
        for clip in m:
            assert _dominant_hz(load_audio(clip.audio_path)) == pytest.approx(tones[name], abs=2.0)
    with pytest.raises(ValueError, match="missing \\['test'\\]"):
        synthesize_splits(tmp_path / "out2", {"train": 1, "test": 1}, config, backgrounds={"train": folders["train"]})


def _tone_sources(root: Path, files_per_class: int = 6) -> Path:
    for label, hz in (("low", 200.0), ("high", 2000.0)):
        (root / label).mkdir(parents=True)
        for i in range(files_per_class):
            sf.write(str(root / label / f"{label}{i}.wav"), _tone(0.3, hz + 10 * i), SR)
    return root


def test_a_split_can_draw_from_another_splits_sources_without_changing_the_others(tmp_path: Path) -> None:
    src = _tone_sources(tmp_path / "events")
    config = SynthConfig(clip_seconds=1.0, min_events=2, max_events=3, seed=4)
    own = {"train": 6, "validation": 3, "test": 3}
    plain = synthesize_splits(tmp_path / "plain", own, config, sources=src)
    more = synthesize_splits(tmp_path / "more", {**own, "test_final": 6, "unlabeled": 8}, config, sources=src,
                             sources_from={"test_final": "test", "unlabeled": "train"})

    def used(root: Path, name: str) -> set[str]:
        return {r["source"] for r in read_sources_tsv(root / name / "sources.tsv")}

    for name in own:  # the partition and the clips of the other splits are as without the extra splits
        assert used(tmp_path / "plain", name) == used(tmp_path / "more", name)
        assert [c.audio_path.read_bytes() for c in plain[name]] == [c.audio_path.read_bytes() for c in more[name]]
    root = tmp_path / "more"
    train_side = used(root, "train") | used(root, "unlabeled")
    test_side = used(root, "test") | used(root, "test_final")
    for one, other in combinations((train_side, used(root, "validation"), test_side), 2):
        assert not one & other  # borrowing splits keep the lender's side: no recording on two sides
    assert used(root, "unlabeled") & used(root, "train") and used(root, "test_final") & used(root, "test")
    # fresh soundscapes: another random stream than the test split's
    assert more["test_final"][0].audio_path.read_bytes() != more["test"][0].audio_path.read_bytes()
    with pytest.raises(ValueError, match="borrows"):
        synthesize_splits(tmp_path / "bad", {"a": 1, "b": 1, "c": 1}, config, sources=src,
                          sources_from={"b": "a", "c": "b"})
