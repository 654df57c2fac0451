"""End to end: synthesize soundscapes, train through the CLI, evaluate and tag the checkpoint."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from weaktag.checkpoint import load_checkpoint
from weaktag.cli import main
from weaktag.labels import Manifest
from weaktag.synth import SynthConfig, synthesize_splits

from conftest import shared_data

SPLITS = {"train": 160, "validation": 48, "test": 64}


def _chance_map(manifest: Manifest) -> float:
    """mAP of a constant score: each class's AP equals its prevalence."""
    y = np.array([[c in clip.labels for c in manifest.classes] for clip in manifest.clips], dtype=float)
    prevalence = y.mean(0)
    return float(prevalence[prevalence > 0].mean())


def _write_config(tmp: Path, data: Path, scheme: str, epochs: int) -> Path:
    config = {
        "data": {s: str(data / s / "manifest.jsonl") for s in SPLITS},
        "model": {"width": 0.125, "batch_norm": True},
        "scheme": {"name": scheme},
        "train": {"lr": 1e-3, "batch_size": 16, "max_epochs": epochs, "seed": 0, "progress": False,
                  "accelerator": "cpu"},
        "output_dir": str(tmp / "run"),
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    manifests = synthesize_splits(tmp / "data", SPLITS, SynthConfig(seed=3))
    # one corrupt and one missing clip in training: skipped, counted, never fatal
    corrupt = tmp / "corrupt.wav"
    corrupt.write_bytes(b"RIFF....WAVEfmt garbage")
    train_manifest = manifests["train"]
    extra = [replace(train_manifest.clips[0], clip_id="corrupt", audio_path=corrupt),
             replace(train_manifest.clips[0], clip_id="missing", audio_path=tmp / "missing.wav")]
    Manifest(train_manifest.clips + extra, train_manifest.classes).to_jsonl(tmp / "data" / "train" / "manifest.jsonl")
    config = _write_config(tmp, tmp / "data", "attention-self", epochs=6)
    assert main(["train", "--config", str(config)]) == 0
    return tmp, manifests


def test_training_beats_chance_and_skips_bad_clips(trained):
    tmp, manifests = trained
    summary = json.loads((tmp / "run" / "summary.json").read_text())
    assert summary["skipped_counts"]["train"] == 2
    reasons = " ".join(s["reason"] for s in summary["skipped"]["train"])
    assert "corrupt.wav" in reasons and "missing.wav" in reasons
    chance = _chance_map(manifests["test"])
    assert summary["test_map"] > chance + 0.25, (summary["test_map"], chance)
    ckpt = load_checkpoint(tmp / "run" / "model.pt")
    assert ckpt.classes == manifests["train"].classes and ckpt.scheme == "attention-self"
    assert len(ckpt.tag_thresholds) == len(ckpt.classes)
    assert len(ckpt.events.thresholds) == len(ckpt.classes)
    assert (tmp / "run" / "logs").exists()


def test_evaluate_cli_reports_tagging_and_event_metrics(trained, capsys):
    tmp, _ = trained
    out = tmp / "eval.md"
    assert main(["evaluate", "--checkpoint", str(tmp / "run" / "model.pt"),
                 "--labels", str(tmp / "data" / "test" / "strong.tsv"),
                 "--audio-dir", str(tmp / "data" / "test" / "audio"), "--output", str(out), "--quiet"]) == 0
    text = out.read_text()
    summary = json.loads((tmp / "run" / "summary.json").read_text())
    reported = float(text.split("| mAP | ")[1].split(" |")[0])
    assert reported == pytest.approx(summary["test_map"], abs=1e-4)  # same clips, same model
    assert "psds1" in text and "event_f1_macro" in text
    assert "| class | AP |" in text or "| class |" in text


def test_training_is_repeatable_with_a_seed(trained, tmp_path):
    tmp, _ = trained
    config = _write_config(tmp_path, tmp / "data", "attention", epochs=1)
    assert main(["train", "--config", str(config), f"output_dir={tmp_path / 'a'}"]) == 0
    assert main(["train", "--config", str(config), f"output_dir={tmp_path / 'b'}"]) == 0
    a = json.loads((tmp_path / "a" / "summary.json").read_text())
    b = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert a["best_val_map"] == b["best_val_map"] and a["test_map"] == b["test_map"]


def test_scheme_needing_strong_labels_refuses_weak_only_data(trained, tmp_path, capsys):
    tmp, _ = trained
    config = _write_config(tmp_path, tmp / "data", "attention-strong", epochs=1)
    weak = tmp / "data" / "train" / "weak.tsv"
    rc = main(["train", "--config", str(config), f"data.train={weak}",
               f"data.train_audio_dir={tmp / 'data' / 'train' / 'audio'}"])  # an audio folder for one split
    assert rc == 2
    assert "needs strong labels" in capsys.readouterr().err


def test_real_recording_soundscapes(tmp_path):
    data = shared_data()
    manifests = synthesize_splits(tmp_path / "data", SPLITS, SynthConfig(seed=1),
                                  sources=data / "esc10", backgrounds=data / "backgrounds")
    config = _write_config(tmp_path, tmp_path / "data", "attention-self", epochs=6)
    assert main(["train", "--config", str(config)]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    chance = _chance_map(manifests["test"])
    assert summary["test_map"] > chance + 0.15, (summary["test_map"], chance)
