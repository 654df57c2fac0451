"""The detection benchmark's own logic (recipes/soundscapes/detection.py), without training: which levers of a
recipe the ablation removes, the unlabelled-clips table (gap recovered, paired Wilcoxon) and the probe rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import soundscape_script


detection = soundscape_script("detection", "detection_benchmark")


def test_the_ablation_removes_only_the_levers_a_recipe_uses():
    assert detection.levers_used({"model": {"backbone": "aisfx"}, "train": {"lr": 1e-3}}) == {}
    recipe = {"model": {"neck": "gru", "time_stride": 8}, "train": {"event_durations": True},
              "mean_teacher": {"weight": 0.0}}
    assert list(detection.levers_used(recipe)) == ["no-sequence-neck", "no-durations"]
    assert list(detection.levers_used({"model": {"time_stride": 4}, "mean_teacher": {"weight": 2.0}})) == [
        "no-fine-stride", "no-mean-teacher"]
    assert detection.with_unlabeled({"mean_teacher": {"weight": 2.0}}) == {
        "unlabeled": detection.data2.manifest("unlabeled")}
    assert detection.with_unlabeled({"mean_teacher": {"weight": 0}}) == {}


def test_the_unlabeled_arms_are_recipes_with_their_own_training_data(tmp_path: Path):
    from weaktag.config import config_from_dict

    recipe = {"model": {"backbone": "vggish"}, "scheme": {"name": "attention"}, "data": {"train": "x.jsonl"}}
    arms = detection.unlabeled_recipes(recipe, tmp_path)
    written = {name: yaml.safe_load(path.read_text()) for name, (_, path) in arms.items()}
    assert list(written) == ["labelled25", "mean-teacher", "labelled100"]
    assert written["labelled25"]["data"] == {"train": str(detection.data2.LABELLED.resolve())}
    assert written["mean-teacher"]["data"] == {"train": str(detection.data2.LABELLED.resolve()),
                                               "unlabeled": str(detection.data2.UNLABELLED.resolve())}
    assert written["mean-teacher"]["mean_teacher"] == detection.MEAN_TEACHER
    assert "data" not in written["labelled100"] and "mean_teacher" not in written["labelled100"]
    config_from_dict(written["labelled25"])  # loads as a config today
    own = detection.unlabeled_recipes({**recipe, "mean_teacher": {"weight": 3.0, "ema_decay": 0.99}}, tmp_path)
    own = {name: yaml.safe_load(path.read_text())["mean_teacher"] for name, (_, path) in own.items()}
    assert own == {"labelled25": {"weight": 0.0, "ema_decay": 0.99},
                   "mean-teacher": {**detection.MEAN_TEACHER, "weight": 3.0, "ema_decay": 0.99},  # the recipe's own
                   "labelled100": {"weight": 0.0, "ema_decay": 0.99}}
    assert list(detection.unlabeled_recipes(recipe, tmp_path, mean_teacher=False)) == ["labelled25", "labelled100"]


def _runs(values: dict[str, list[float]]) -> list[dict]:
    return [{"seed": seed, "metrics": {m: v[seed] for m, v in values.items()}} for seed in range(5)]


def test_unlabeled_table_gives_the_share_of_the_gap_and_paired_tests(tmp_path: Path):
    low = [0.40, 0.42, 0.41, 0.43, 0.44]
    outcomes = {
        "labelled25": ("25% labelled", _runs({"mAP": low, "psds1": [0.1] * 5})),
        "mean-teacher": ("25% + 75% unlabelled, mean teacher",
                         _runs({"mAP": [v + 0.1 for v in low], "psds1": [0.1] * 5})),
        "labelled100": ("100% labelled", _runs({"mAP": [v + 0.2 for v in low], "psds1": [0.3] * 5})),
    }
    table = detection.write_unlabeled_table(outcomes, "attention", tmp_path)
    assert table["recovered"]["mAP"] == pytest.approx(0.5) and table["recovered"]["psds1"] == pytest.approx(0.0)
    # five pairs all one way: the smallest two-sided exact p of the signed-rank test, 2 / 2**5
    assert table["wilcoxon"]["mAP"]["labelled25 vs mean-teacher"]["p"] == pytest.approx(0.0625)
    assert table["wilcoxon"]["psds1"]["labelled25 vs mean-teacher"]["p"] == 1.0  # no difference at all
    text = (tmp_path / "unlabeled.md").read_text()
    assert "| gap recovered, (MT - 25%) / (100% - 25%) | 50% | 0% |" in text
    assert "| 25% labelled | 42.0 ± 1.6 |" in text
    assert json.loads((tmp_path / "unlabeled.json").read_text())["arms"]["labelled25"]["psds2"]["mean"] is None


def test_a_probe_run_again_replaces_its_row(tmp_path: Path):
    row = {"name": "gru", "base": "configs/recommended.yaml", "overrides": ["model.neck=gru"], "trials": 1,
           "seeds": [0], "mAP": 0.5, "psds1": 0.2, "psds2": None, "event_f1_macro": 0.3, "best_epoch": 7.0,
           "minutes_per_trial": 1.5}
    detection.write_probe_row(row, tmp_path)
    detection.write_probe_row({**row, "name": "conv", "overrides": []}, tmp_path)
    detection.write_probe_row({**row, "mAP": 0.6}, tmp_path)
    lines = [line for line in (tmp_path / "probes.md").read_text().splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in lines[1:]] == ["| conv", "| gru"]
    assert "| gru | `configs/recommended.yaml` | `model.neck=gru` | 1 | 60.0 | 20.0 | n/a | 30.0 | 7 | 1.5 |" in lines


def test_a_probe_puts_its_overrides_into_the_probed_recipe():
    recipe = {"model": {"backbone": "aisfx", "neck_channels": 256}, "train": {"lr": 0.001}}
    merged = detection.with_overrides(recipe, ["model.time_stride=4", "model.neck=transformer",
                                               "mean_teacher.weight=2"])
    assert merged == {"model": {"backbone": "aisfx", "neck_channels": 256, "time_stride": 4, "neck": "transformer"},
                      "train": {"lr": 0.001}, "mean_teacher": {"weight": 2}}
    assert recipe["model"] == {"backbone": "aisfx", "neck_channels": 256}  # the base is left as it was
    assert detection.with_unlabeled(merged) == {"unlabeled": detection.data2.manifest("unlabeled")}


def test_probes_of_one_run_are_split_at_the_separator():
    probes = detection.split_probes(["gru", "model.neck=gru", "model.neck_layers=2", "+", "v1", "+", "s4",
                                     "model.time_stride=4"])
    assert probes == [("gru", ["model.neck=gru", "model.neck_layers=2"]), ("v1", []), ("s4", ["model.time_stride=4"])]
    for bad in (["gru", "+"], ["+", "gru"], ["gru", "+", "+", "v1"], ["a", "+", "a"], ["model.neck=gru"]):
        with pytest.raises(SystemExit):
            detection.split_probes(bad)
