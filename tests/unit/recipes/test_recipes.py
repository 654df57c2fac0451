"""The packaged recipes: they load and validate, configs/ links to them, and --recipe finds them by name;
the dataset recipes read the real published label files into the splits the paper used."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import REPO, shared_data
from weaktag.config import load_config, recipe_config
from weaktag.labels import DCASE17_CLASSES, read_class_labels_indices, recording_of
from weaktag.recipes import recipe_names, recipe_path
from weaktag.training import read_manifests



def test_packaged_recipes_load_and_configs_link_to_them():
    assert {"recommended", "recommended-gpu", "audioset-balanced", "sl-dcase17"} <= set(recipe_names())
    for name in recipe_names():
        config = load_config(recipe_path(name))
        # a recipe names no label file or audio: those are the user's (the dataset recipes carry only
        # how to use them: a validation fraction, a class list)
        d = config.data
        assert (d.train, d.validation, d.test, d.audio_dir, d.class_labels_indices) == (None,) * 5
        assert (REPO / "configs" / f"{name}.yaml").resolve() == recipe_path(name)
    cpu = load_config(recipe_path("recommended"))
    assert (cpu.model.backbone, cpu.model.freeze, cpu.scheme.name) == ("aisfx", 4, "attention")
    assert cpu.train.event_output == "auto" and cpu.train.accelerator == "cpu"
    gpu = load_config(recipe_path("recommended-gpu"))
    assert gpu.train.accelerator == "gpu" and gpu.train.precision == "bf16-mixed" and gpu.model.freeze < 4


def test_a_recipe_takes_the_data_of_another_config(tmp_path: Path):
    base = load_config(None, ["data.train=t.tsv", "data.validation=v.tsv", "output_dir=runs/x"])
    recipe = recipe_config(base, recipe_path("recommended"), ["train.max_epochs=3"])
    assert recipe.data.train == "t.tsv" and recipe.output_dir == "runs/x" and recipe.train.max_epochs == 3
    assert recipe.model.backbone == "aisfx"
    with pytest.raises(ValueError, match="no packaged recipe 'nope'"):
        recipe_path("nope")


def test_dataset_recipes_follow_the_paper():
    audioset = load_config(recipe_path("audioset-balanced"))
    sl = load_config(recipe_path("sl-dcase17"))
    for config in (audioset, sl):  # VGGish at full width, first three layers frozen, row 6, 50 epochs
        assert (config.model.backbone, config.model.width, config.model.batch_norm, config.model.freeze) == (
            "vggish", 1.0, False, 3)
        assert (config.scheme.name, config.scheme.alpha, config.train.max_epochs) == ("attention-self", 1.0, 50)
        assert config.train.accelerator == "gpu" and config.train.early_stopping_patience == 0
    assert (audioset.train.lr, audioset.data.validation_fraction, audioset.data.classes) == (1e-3, 0.1, [])
    assert (sl.train.lr, sl.data.validation_fraction, sl.data.classes) == (1e-4, 0.0, list(DCASE17_CLASSES))


def _audio_opened(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every soundfile entry point records its call and fails (a reader that catches the failure is
    still caught by the record): reading label files must leave the list empty."""
    import soundfile

    opened: list = []

    def refuse(*args, **kwargs):
        opened.append(args[:1])
        raise RuntimeError("audio opened while reading labels")

    for name in ("read", "info", "SoundFile", "blocks"):
        monkeypatch.setattr(soundfile, name, refuse)
    return opened


def _data_rows(path: Path) -> list[list[str]]:
    """The segment rows of an AudioSet CSV, counted with the csv module (not weaktag's reader)."""
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return list(csv.reader(lines, skipinitialspace=True))


def test_audioset_recipe_reads_the_real_lists(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    folder = shared_data("metadata/audioset")
    opened = _audio_opened(monkeypatch)
    overrides = [f"data.train={folder / 'balanced_train_segments.csv'}", f"data.test={folder / 'eval_segments.csv'}",
                 f"data.class_labels_indices={folder / 'class_labels_indices.csv'}", f"data.audio_dir={tmp_path / 'none'}"]
    classes, manifests = read_manifests(load_config(recipe_path("audioset-balanced"), overrides))
    assert not opened
    # the class list is the class index's, in its order: AudioSet's output index
    assert classes == [c.display_name for c in read_class_labels_indices(folder / "class_labels_indices.csv")]
    assert len(classes) == 527
    train, validation, test = manifests["train"], manifests["validation"], manifests["test"]
    balanced = _data_rows(folder / "balanced_train_segments.csv")
    assert len(train) + len(validation) == len(balanced)  # every row is a clip: no MID outside the index
    assert len(validation) == round(0.1 * len(balanced))  # the paper's 10%
    assert len(test) == len(_data_rows(folder / "eval_segments.csv"))
    assert not {c.clip_id for c in train} & {c.clip_id for c in validation}
    assert not {recording_of(c) for c in train} & {recording_of(c) for c in validation}
    assert all(m.classes == classes for m in manifests.values())
    assert {label for c in validation for label in c.labels} == set(classes)  # every class validated
    assert validation[0].audio_path == tmp_path / "none" / f"{validation[0].clip_id}.wav"
    # data.split_seed chooses the held-out clips (the same seed, the same clips: tests/unit/labels/test_labels.py)
    other = load_config(recipe_path("audioset-balanced"), [overrides[0], overrides[2], "data.split_seed=1"])
    assert {c.clip_id for c in read_manifests(other)[1]["validation"]} != {c.clip_id for c in validation}


def test_sl_dcase17_recipe_reads_the_real_lists(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    folder = shared_data("metadata/eusipco19_sl_dcase17")
    opened = _audio_opened(monkeypatch)
    config = load_config(recipe_path("sl-dcase17"), [
        f"data.train={folder / 'train_strong_labels.csv'}", f"data.validation={folder / 'validation_set.csv'}",
        f"data.test={folder / 'test_set.csv'}", f"data.train_audio_dir={tmp_path / 'dcase17'}",
        # one class index for every split is ignored by the formats that do not need it
        f"data.class_labels_indices={tmp_path / 'class_labels_indices.csv'}"])
    classes, manifests = read_manifests(config)
    assert classes == list(DCASE17_CLASSES) and not opened
    with (folder / "train_strong_labels.csv").open() as f:  # one row per (clip, class): count the files
        files = {row["DCASE17-filename"] for row in csv.DictReader(f, delimiter="\t")}
    counts = {split: len(m) for split, m in manifests.items()}
    # validation and test: one row per clip, after the header (counts of the paper: 1,638 and 626)
    rows = {split: len((folder / name).read_text().strip().splitlines()) - 1
            for split, name in (("validation", "validation_set.csv"), ("test", "test_set.csv"))}
    assert counts == {"train": len(files), **rows} and (rows["validation"], rows["test"]) == (1638, 626)
    assert all(c.has_strong for c in manifests["train"]) and not manifests["validation"].has_strong
    assert not manifests["test"].has_strong
    first = manifests["train"][0]
    assert first.audio_path == tmp_path / "dcase17" / f"{first.clip_id}.wav"


def test_a_training_config_needs_validation_labels_or_a_fraction(tmp_path: Path):
    with pytest.raises(ValueError, match=r"data.validation must name .*or data.validation_fraction > 0"):
        read_manifests(load_config(None, ["data.train=t.tsv"]))
    tiny = tmp_path / "train.tsv"
    tiny.write_text("filename\tevent_labels\na.wav\tdog\n")
    with pytest.raises(ValueError, match=rf"data.validation_fraction: {tiny}: cannot hold out 0.1 of 1 clip"):
        read_manifests(load_config(None, [f"data.train={tiny}", "data.validation_fraction=0.1"]))
