"""What a new user hits in the first hour: no silent audio loss, one-line errors, clear output, help."""

from __future__ import annotations

import csv
import json
import re
import shlex
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from weaktag.audio import AudioError, load_audio
from weaktag.checkpoint import save_checkpoint
from weaktag.cli import _quiet_dependencies, build_parser, main
from weaktag.inference import Tagger
from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet

SR = 16_000
CLASSES = ["beep", "knock", "siren"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = WeakTagNet(ModelConfig(len(CLASSES), backbone=BackboneConfig(width=0.125))).eval()
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    return save_checkpoint(path, model, CLASSES, "attention", {}, tag_thresholds=np.array([0.5, 0.52, 0.54]))


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(round(seconds * SR))) * 0.1).astype(np.float32)


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------- 1: chunks never drop audio


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("recordings")
    out = {}
    for seconds in (3.3, 10.0, 61.7):
        path = folder / f"{seconds}s.wav"
        sf.write(str(path), _noise(seconds, seed=int(seconds * 10)), SR, subtype="FLOAT")
        out[path.name] = path
    return out


@pytest.mark.parametrize("chunk_seconds", [0.05, 0.1, 0.16, 0.5, 0.64, 1.0, 2.5, 30.72])
def test_every_chunk_length_covers_the_whole_file(ckpt: Path, recordings: dict[str, Path], chunk_seconds: float):
    whole = Tagger.from_checkpoint(ckpt, chunk_seconds=120.0, detect_events=False)
    chunked = Tagger.from_checkpoint(ckpt, chunk_seconds=chunk_seconds, detect_events=False)
    grid = whole.grid
    for name, path in recordings.items():
        samples = sf.info(str(path)).frames
        expected = whole.tag(path)
        got = chunked.tag(path)
        assert got.duration == pytest.approx(samples / SR, abs=1e-9), name
        assert got.num_segments == grid.segments_for_samples(samples) == expected.num_segments, name
        np.testing.assert_allclose(got.segment_probs, expected.segment_probs, atol=1e-5, rtol=0)
        np.testing.assert_allclose(got.clip_probs, expected.clip_probs, atol=1e-5, rtol=0)


def test_chunk_length_must_be_positive(ckpt: Path, recordings: dict[str, Path], capsys):
    assert main(["tag", "--checkpoint", str(ckpt), str(recordings["3.3s.wav"]), "--chunk-seconds", "0"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "--chunk-seconds: 0.0 must be above 0" in line


# ---------------------------------------------------------------- 2: one-line config errors


def test_yaml_syntax_error_is_one_line_with_line_and_column(tmp_path: Path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("data:\n  train: labels.tsv\nmodel:\n  width: [0.5\n")
    assert main(["train", "--config", str(config)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert re.search(re.escape(str(config)) + r":\d+:\d+: invalid YAML", line), line


@pytest.mark.parametrize("text, key, words", [
    ("train:\n  precision: 17-mixed\n", "train.precision", "allowed: 32-true"),
    ("train:\n  lr: fast\n", "train.lr", "could not be converted"),
    ("model:\n  widht: 0.5\n", "model.widht", "not in"),
    ("scheme:\n  name: mode3\n", "scheme.name", "allowed: pool-weak"),
    ("scheme:\n  attention_target: softmax\n", "scheme.attention_target", "allowed: normalized, raw"),
])
def test_bad_config_values_fail_before_any_data_is_read_naming_the_key(tmp_path, capsys, text, key, words):
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  train: missing.tsv\n  validation: missing.tsv\n" + text)
    assert main(["train", "--config", str(config)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(config) in line and key in line and words in line, line
    assert "missing.tsv" not in line  # failed on the config, before looking for data


# ---------------------------------------------------------------- 3: not a checkpoint


@pytest.mark.parametrize("make", ["text", "wav", "empty"])
def test_a_file_that_is_not_a_checkpoint_gets_a_clear_message(ckpt, tmp_path: Path, capsys, make):
    bogus = tmp_path / {"text": "notes.txt", "wav": "clip.wav", "empty": "model.pt"}[make]
    if make == "text":
        bogus.write_text("these are my notes\n")
    elif make == "wav":
        sf.write(str(bogus), _noise(1.0), SR)
    else:
        bogus.write_bytes(b"")
    labels = tmp_path / "labels.tsv"
    labels.write_text("filename\tevent_labels\nclip.wav\tbeep\n")
    for argv in (["evaluate", "--checkpoint", str(bogus), "--labels", str(labels)],
                 ["tag", "--checkpoint", str(bogus), str(tmp_path)],
                 ["export", "--checkpoint", str(bogus)]):
        assert main(argv) == 2
        line = _one_line(capsys.readouterr().err)
        assert f"not a weaktag checkpoint: {bogus}" in line, line
        assert "weights_only" not in line and "arbitrary code" not in line


# ---------------------------------------------------------------- 4: silent and too short


def test_silent_and_too_short_files_are_reported_not_tagged(ckpt: Path, tmp_path: Path):
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(str(audio / "silent.wav"), np.zeros(10 * SR, np.float32), SR)
    sf.write(str(audio / "blip.wav"), _noise(0.05), SR)
    sf.write(str(audio / "sound.wav"), _noise(2.0), SR)
    out = tmp_path / "out"
    assert main(["tag", "--checkpoint", str(ckpt), str(audio), "--out", str(out), "--quiet"]) == 0
    with open(out / "errors.tsv", newline="") as f:
        errors = {row["filename"]: row["reason"] for row in csv.DictReader(f, delimiter="\t")}
    assert errors == {"silent.wav": "audio is entirely silent (all samples are zero)",
                      "blip.wav": "too short: 0.050 s of audio, the minimum is 0.1 s"}
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["ok"], summary["failed"]) == (1, 2)
    assert {f["filename"] for f in summary["failures"]} == {"silent.wav", "blip.wav"}

    kept = tmp_path / "kept"
    assert main(["tag", "--checkpoint", str(ckpt), str(audio), "--out", str(kept), "--keep-silent", "--quiet"]) == 0
    with open(kept / "tags.csv", newline="") as f:
        assert {row["filename"] for row in csv.DictReader(f)} == {"silent.wav", "sound.wav"}

    tagger = Tagger.from_checkpoint(ckpt)
    with pytest.raises(AudioError, match="entirely silent"):
        tagger.tag(np.zeros(SR, np.float32))
    with pytest.raises(AudioError, match="too short"):
        tagger.tag(_noise(0.05))
    assert Tagger.from_checkpoint(ckpt, skip_silent=False).tag(np.zeros(SR, np.float32)).num_segments == 7


# ---------------------------------------------------------------- 5: output that shows what it found


def test_printed_tags_mark_threshold_passes_and_events_are_printed(ckpt: Path, tmp_path: Path, capsys):
    path = tmp_path / "x.wav"
    sf.write(str(path), _noise(4.0, seed=3), SR)
    assert main(["tag", "--checkpoint", str(ckpt), str(path), "--select", "top-k", "--top-k", "3",
                 "--event-threshold", "0.3", "--quiet"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    tagger = Tagger.from_checkpoint(ckpt, event_thresholds=0.3)
    result = tagger.tag(path)
    assert lines[0].split("\t")[0] == "x.wav"  # relative to the folder holding the inputs
    printed = dict(re.fullmatch(r"(\w+):([\d.]+\*?)", token).groups() for token in lines[0].split("\t")[1:])
    assert set(printed) == set(CLASSES)
    for label, text in printed.items():
        k = CLASSES.index(label)
        assert text.endswith("*") == bool(result.clip_probs[k] >= tagger.tag_thresholds[k]), (label, text)
        assert float(text.rstrip("*")) == pytest.approx(result.clip_probs[k], abs=5e-4)
    event_lines = [line for line in lines[1:] if line.startswith("  event\t")]
    assert len(result.events) > 0 and len(event_lines) == len(result.events)
    first = result.events[0]
    note = "" if first.label in {label for label, _ in result.above()} else "\t(class below its clip threshold)"
    assert event_lines[0] == (f"  event\t{first.label}\t{first.onset:.2f}-{first.offset:.2f} s\t"
                              f"score {first.score:.3f}{note}")
    assert "* = at or above the class threshold" in captured.err
    assert f"{len(result.events)} event(s)" in captured.err


def test_when_every_file_fails_the_summary_shows_no_speed(ckpt: Path, tmp_path: Path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF" + bytes(64))
    assert main(["tag", "--checkpoint", str(ckpt), str(bad), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "no audio tagged" in err and "nan" not in err.lower() and "0x real time" not in err


# ---------------------------------------------------------------- 6: messages that keep README's promise


def test_empty_file_says_empty(ckpt: Path, tmp_path: Path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav: empty file \(0 bytes\)"):
        load_audio(empty)
    failure = Tagger.from_checkpoint(ckpt).tag_many([empty])[0]
    assert failure.reason == "empty file (0 bytes)"


def test_unknown_validation_label_names_the_label_file_and_line(tmp_path: Path, capsys):
    audio = tmp_path / "audio"
    audio.mkdir()
    for name in ("a", "b", "c"):
        sf.write(str(audio / f"{name}.wav"), _noise(1.0), SR)
    (tmp_path / "train.tsv").write_text("filename\tevent_labels\na.wav\tcat\nb.wav\tcow\n")
    (tmp_path / "validation.tsv").write_text("filename\tevent_labels\nb.wav\tcow\nc.wav\tdog\n")
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  train: train.tsv\n  validation: validation.tsv\n  audio_dir: audio\n")
    assert main(["train", "--config", str(config)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert (f"{tmp_path / 'validation.tsv'}:3: clip 'c' has label 'dog', which is not in the class list "
            f"(from the training labels {tmp_path / 'train.tsv'}: cat, cow)") in line


# ---------------------------------------------------------------- 7: noise and help


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert re.fullmatch(r"weaktag \d+\.\d+\.\d+\S*", capsys.readouterr().out.strip())


@pytest.mark.parametrize("verb, options", [
    ("evaluate", ["--checkpoint", "--labels", "--audio-dir", "--quiet"]),
    ("demo", ["--out-dir", "--epochs", "--seed"]),
    ("synth", ["--num-clips", "--splits", "--seconds", "--seed", "--sources", "--backgrounds"]),
    ("tag", ["--batch-size", "--chunk-seconds", "--keep-silent"]),
])
def test_every_option_has_help_text(verb, options):
    sub = next(a for a in build_parser()._actions if a.dest == "verb").choices[verb]
    helps = {opt: action.help for action in sub._actions for opt in action.option_strings}
    for option in options:
        assert helps.get(option) and helps[option] != "==SUPPRESS==", f"{verb} {option} has no help"
    text = "".join(sub.format_help().split())  # help wraps lines (and hyphenated words)
    if verb == "demo":
        assert "(default:12)" in text and "(default:weaktag-demo)" in text
    if verb == "tag":
        assert "(default:30.72)" in text and "(default:32)" in text


def test_dependency_deprecation_noise_is_filtered():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _quiet_dependencies()
        warnings.warn("pkg_resources is deprecated as an API. See https://setuptools.pypa.io", UserWarning)
        warnings.warn("something weaktag says", UserWarning)
    assert [str(w.message) for w in seen] == ["something weaktag says"]


# ---------------------------------------------------------------- 8: the demo's next commands work as written


def test_demo_explains_itself_and_its_next_commands_run(tmp_path: Path):
    from weaktag.experiments.demo import run_demo

    said: list[str] = []
    result = run_demo(tmp_path / "demo", epochs=2, splits={"train": 24, "validation": 12, "test": 12},
                      log=said.append)
    assert any(line.strip().startswith("- attention (Table I row 4)") for line in said)
    assert any(line.strip().startswith("- attention-self (Table I row 6)") for line in said)
    assert sum(1 for line in said if re.match(r"\s+epoch \d+/2, train loss [\d.]+, validation mAP [\d.]+", line)) == 4
    commands = result.next_commands()
    assert [c.split()[1] for c in commands] == ["tag", "evaluate", "plot"]
    # tag and evaluate use the model with the best test mAP in the demo's table, whichever it is
    best_map = max(r.test_map for r in result.results.values())
    for command in commands[:2]:
        checkpoint = Path(shlex.split(command)[shlex.split(command).index("--checkpoint") + 1])
        assert [r.test_map for r in result.results.values() if r.checkpoint == checkpoint] == [best_map]
    # the compare estimate counts the shared features and every arm's measured time (training + evaluation)
    assert result.compare_minutes() * 60 >= 5 * sum(r.wall_seconds for r in result.results.values())
    for command in commands:
        assert main(shlex.split(command)[1:]) == 0, command
    assert (tmp_path / "demo" / "tagged" / "tags.csv").exists()
    assert (tmp_path / "demo" / "attention.png").read_bytes()[:4] == b"\x89PNG"
    # the paired-trials command it suggests runs on its data (one trial here instead of five)
    compare = shlex.split(result.compare_command())
    assert compare[compare.index("--trials") + 1] == "5"
    compare[compare.index("--trials") + 1] = "1"
    assert main(compare[1:]) == 0
    trials = json.loads((tmp_path / "demo" / "compare" / "results.json").read_text())
    from weaktag.experiments.demo import recommended_available

    if recommended_available() is None:  # aisfx installed: the demo trained the recommended recipe too
        assert any(line.strip().startswith("- recommended (weaktag's recipe") for line in said)
        assert "recommended" in result.results and result.results["recommended"].test_map is not None
        assert trials["schemes"] == ["attention", "attention-self", "recommended:attention"] and trials["ran"] == 3
    else:
        assert any("the recommended recipe is skipped" in line for line in said)
        assert trials["schemes"] == ["attention", "attention-self"] and trials["ran"] == 2
    assert trials["data"]["test"].endswith("data/test/manifest.jsonl")


# ---------------------------------------------------------------- 9: an audio folder per split


def test_an_audio_folder_per_split_and_the_label_folder_by_default(tmp_path: Path):
    from weaktag.config import load_config
    from weaktag.training import read_manifests

    (tmp_path / "audio" / "train").mkdir(parents=True)
    (tmp_path / "audio" / "validation").mkdir(parents=True)
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "train.tsv").write_text("filename\tevent_labels\na.wav\tcat\n")
    (tmp_path / "metadata" / "validation.tsv").write_text("filename\tevent_labels\nb.wav\tcat\n")
    (tmp_path / "metadata" / "test.tsv").write_text("filename\tevent_labels\nc.wav\tcat\n")
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  train: metadata/train.tsv\n  validation: metadata/validation.tsv\n"
                      "  test: metadata/test.tsv\n  train_audio_dir: audio/train\n"
                      "  validation_audio_dir: audio/validation\n")
    _, manifests = read_manifests(load_config(config))
    assert manifests["train"][0].audio_path == (tmp_path / "audio" / "train" / "a.wav").resolve()
    assert manifests["validation"][0].audio_path == (tmp_path / "audio" / "validation" / "b.wav").resolve()
    assert manifests["test"][0].audio_path == (tmp_path / "metadata" / "c.wav")  # beside its label file


# ---------------------------------------------------------------- slow: the full demo, as a newcomer runs it


@pytest.mark.slow
def test_the_full_demo_trains_every_model_well_and_its_printed_commands_run(tmp_path: Path, capsys, monkeypatch):
    """``weaktag demo`` with its defaults (440 clips, 12 epochs, the recommended recipe when aisfx is installed):
    minutes on a CPU, so marked slow. Its models learn, and the commands it prints run as printed."""
    from weaktag.experiments.demo import recommended_available

    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    maps = {m[1]: float(m[2]) for m in re.finditer(r"^\| (\S+) \| ([\d.]+) \|", out, re.M)}
    expected = ["attention", "attention-self"] + (["recommended"] if recommended_available() is None else [])
    assert list(maps) == expected
    assert min(maps.values()) > 0.6  # chance is about the class prior (~0.2); README reports 0.80-0.98
    if "recommended" in maps:
        assert maps["recommended"] > 0.9 and maps["recommended"] == max(maps.values())
    assert re.search(r"at least \d+ min at this machine's load", out)
    tried = out.split("Try next (with ")[1]
    assert tried.startswith(f"{max(maps, key=maps.get)},")
    commands = [line.strip() for line in tried.splitlines()[1:] if line.startswith("  weaktag ")]
    assert [c.split()[1] for c in commands] == ["tag", "evaluate", "plot"]
    for command in commands:
        assert main(shlex.split(command)[1:]) == 0, command
