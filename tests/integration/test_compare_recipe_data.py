"""A ``weaktag compare --recipe`` arm may train on data of its own (a labelled subset: the detection benchmark's
25%-labelled arm) while every arm is scored on the same validation and test clips."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from weaktag.checkpoint import load_checkpoint
from weaktag.config import config_from_dict, recipe_config
from weaktag.errors import DataError
from weaktag.experiments.compare import CompareConfig, Recipe, run_compare, trial_dir
from weaktag.labels import Manifest
from weaktag.synth import SynthConfig, synthesize_splits

SPLITS = {"train": 16, "validation": 8, "test": 8}
TRAIN = {"lr": 1e-3, "batch_size": 8, "max_epochs": 1, "seed": 0, "progress": False, "logger": "none",
         "accelerator": "cpu"}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recipe-data")
    synthesize_splits(root, SPLITS, SynthConfig(seed=1, clip_seconds=2.0))
    train = Manifest.from_jsonl(root / "train" / "manifest.jsonl")
    train.subset(c.clip_id for c in train.clips[::2]).to_jsonl(root / "train" / "half.jsonl")
    return root


def _base(data: Path):
    return config_from_dict({"data": {split: str(data / split / "manifest.jsonl") for split in SPLITS},
                             "model": {"width": 0.0625, "l7_channels": 32}, "train": TRAIN})


def _recipe_file(folder: Path, data_section: dict) -> Path:
    path = folder / "half.yaml"
    path.write_text(yaml.safe_dump({"model": {"width": 0.0625, "l7_channels": 16}, "train": TRAIN,
                                    "data": data_section}))
    return path


def test_a_recipe_keeps_only_the_training_data_it_names(data: Path, tmp_path: Path):
    base = _base(data)
    recipe = recipe_config(base, _recipe_file(tmp_path, {"train": str(data / "train" / "half.jsonl"),
                                                         "test": "elsewhere.jsonl"}))
    assert recipe.data.train == str(data / "train" / "half.jsonl")
    assert (recipe.data.validation, recipe.data.test) == (base.data.validation, base.data.test)
    plain = recipe_config(base, _recipe_file(tmp_path, {"validation_fraction": 0.5}))
    assert plain.data == base.data  # no training data of its own: the other config's, as before


def test_a_recipe_arm_trains_on_its_own_clips_and_is_scored_on_the_shared_test(data: Path, tmp_path: Path):
    base = _base(data)
    # a relative path in the recipe's YAML is relative to the YAML's folder, as in any config
    recipe = recipe_config(base, _recipe_file(data / "train", {"train": "half.jsonl"}))
    out = tmp_path / "out"
    result = run_compare(base, CompareConfig(["attention", "half:attention"], 1), out,
                         recipes={"half": Recipe(recipe)}, log=None)
    shared, own = (load_checkpoint(trial_dir(out, arm, 0) / "model.pt").experiment["data"]
                   for arm in ("attention", "half:attention"))
    assert shared["train"] == base.data.train and own["train"] == str(data / "train" / "half.jsonl")
    assert own["test"] == shared["test"] == base.data.test
    assert [t.n_test for t in (result.trials["attention"][0], result.trials["half:attention"][0])] == [8, 8]


def test_a_recipe_whose_training_labels_order_the_classes_otherwise_is_refused(data: Path, tmp_path: Path):
    train = Manifest.from_jsonl(data / "train" / "manifest.jsonl")
    Manifest(train.clips, train.classes[::-1]).to_jsonl(data / "train" / "reordered.jsonl")  # outputs differ
    base = _base(data)
    recipe = recipe_config(base, _recipe_file(tmp_path, {"train": str(data / "train" / "reordered.jsonl")}))
    with pytest.raises(DataError, match="recipe half: its training labels .*reordered.jsonl have other classes"):
        run_compare(base, CompareConfig(["half:attention"], 1), tmp_path / "out", recipes={"half": Recipe(recipe)},
                    log=None)
