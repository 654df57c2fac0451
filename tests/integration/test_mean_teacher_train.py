"""Training with unlabelled clips and a mean teacher, end to end on tiny synthesized data: the frozen-feature
(cached) path and the uncached one, --resume keeping the teacher, the exported checkpoint the student's."""

from __future__ import annotations

import torch
import pytest

from weaktag.checkpoint import load_checkpoint
from weaktag.cli import main
from weaktag.config import load_config
from weaktag.models.transfer import load_weights_file
from weaktag.training import prepare_data, train

SPLITS = {"train": 6, "validation": 4}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from weaktag.synth import SynthConfig, synthesize_splits

    tmp = tmp_path_factory.mktemp("mean_teacher")
    synthesize_splits(tmp / "data", {**SPLITS, "unlabeled": 4}, SynthConfig(seed=5, clip_seconds=1.0))
    return tmp


def _overrides(tmp, out, *extra: str) -> list[str]:
    return [*(f"data.{s}={tmp / 'data' / s / 'manifest.jsonl'}" for s in SPLITS),
            f"data.unlabeled={tmp / 'data' / 'unlabeled' / 'audio'}", "mean_teacher.weight=2",
            "mean_teacher.rampup_epochs=1", "mean_teacher.unlabeled_fraction=0.5",
            "model.backbone=aisfx", "model.freeze=4", "model.neck_channels=16", "model.dropout=0.2",
            "scheme.name=attention-self", "train.lr=0.003", "train.batch_size=4", "train.max_epochs=2",
            "train.seed=0", "train.progress=false", "train.logger=none", "train.accelerator=cpu",
            "train.event_output=segment", f"output_dir={out}", *extra]


@pytest.fixture(scope="module")
def data(synth):
    return prepare_data(load_config(None, _overrides(synth, synth / "unused")))


def test_unlabelled_clips_go_through_the_feature_path_with_their_labels_dropped(synth, data):
    assert len(data.unlabeled) == 4 and data.unlabeled.features.shape[1:] == data.train.features.shape[1:]
    assert not data.unlabeled.weak.any() and not any(c.has_strong for c in data.unlabeled.clips)


@pytest.mark.parametrize("path", ["cached", "uncached"])
def test_a_run_with_unlabelled_clips_trains_and_exports_the_student(synth, data, path):
    extra = ["train.max_epochs=1"] + ([] if path == "cached" else ["train.cache_frozen_features=false"])
    out = synth / path
    result = train(load_config(None, _overrides(synth, out, *extra)), data=data)
    assert result.skipped["unlabeled"] == []
    last = load_weights_file(out / "checkpoints" / "last.ckpt", "a training checkpoint")
    teacher = last["weaktag"]["teacher"]
    student = {k.removeprefix("model."): v for k, v in last["state_dict"].items()}
    assert teacher.keys() == student.keys()  # the whole network's EMA, saved for --resume ...
    assert any(not torch.equal(teacher[k], student[k]) for k in teacher)  # ... and not the student's copy
    exported = load_checkpoint(out / "model.pt")
    best = load_weights_file(result.checkpoint.parent / "checkpoints" / f"best-epoch={result.best_epoch - 1}.ckpt",
                             "a training checkpoint")
    for key, value in exported.model.state_dict().items():  # the student of the best epoch, as today
        assert torch.equal(value, best["state_dict"][f"model.{key}"]), key


def test_cached_and_uncached_runs_with_a_mean_teacher_learn_the_same_model(synth, data):
    cached, uncached = (load_checkpoint(synth / p / "model.pt").model.state_dict() for p in ("cached", "uncached"))
    for key, value in cached.items():
        torch.testing.assert_close(uncached[key], value, atol=1e-4, rtol=1e-4, msg=key)


def test_resume_continues_with_the_saved_teacher(synth, data):
    whole = train(load_config(None, _overrides(synth, synth / "whole")), data=data)
    cut = _overrides(synth, synth / "cut")
    train(load_config(None, [*cut, "train.max_epochs=1"]), data=data)
    resumed = train(load_config(None, cut), data=data, resume=True)
    for (key, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), key
    ends = [load_weights_file(synth / run / "checkpoints" / "last.ckpt", "a training checkpoint")["weaktag"]["teacher"]
            for run in ("whole", "cut")]
    for key, value in ends[0].items():
        assert torch.equal(value, ends[1][key]), key


def test_a_missing_unlabelled_source_is_a_one_line_error_naming_it(synth, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    config = tmp_path / "config.yaml"
    config.write_text("mean_teacher: {weight: 2}\n")
    args = [a.replace(str(synth / "data" / "unlabeled" / "audio"), str(missing)) for a in _overrides(synth, tmp_path / "o")]
    assert main(["train", "--config", str(config), *args]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]  # (label warnings before it)
    assert len(err) == 1 and err[0].startswith(f"weaktag train: error: {missing}: ") and "not found" in err[0], err
