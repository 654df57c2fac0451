"""Issue 20, item 4: the affects_result marks decide what a finished compare trial and a resumed run must share.

Every TrainSection field carries a mark; changing a field marked to change the result (and any field of the
data, model, scheme or augment sections) makes a finished trial not reusable and a stopped run not resumable,
while a field marked as only changing how a run runs (RUNS) does neither, and max_epochs and
early_stopping_patience (EXTENDS) may change on resume. The fields are read from the dataclasses, so a new
field is tested without editing this file.
"""

from __future__ import annotations

import copy
import json
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from weaktag.config import AugmentConfig, DataConfig, ExperimentConfig, ModelSection, TrainSection
from weaktag.experiments.trials import TRIAL_FILE, TrialRecord, fingerprint, read_trial
from weaktag.settings import result_fields
from weaktag.supervision import SCHEMES, scheme_parameters
from weaktag.training.run import resumable_checkpoint, resumable_settings

SECTIONS = {"data": DataConfig, "model": ModelSection, "augment": AugmentConfig}
#: the trial's seed is what a comparison varies: it picks another trial, it is not compared with the record
VARIED_BY_COMPARE = {"seed"}
LEARNS = [f for f in result_fields(TrainSection) if f not in VARIED_BY_COMPARE]
RUNS = list(result_fields(TrainSection, affects=False))
EXTENDS = [f.name for f in dataclasses.fields(TrainSection) if f.metadata.get("resume_may_change")]
SECTION_FIELDS = [(section, f.name) for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)]
#: every scheme's own parameters, each changed under that scheme (the arm names the scheme)
SCHEME_FIELDS = [(f"scheme:{name}", f.name) for name, cls in SCHEMES.items()
                 for f in dataclasses.fields(cls.Parameters) if f.name != "name"]


def _other_value(value: Any, field: dataclasses.Field) -> Any:
    """A value of ``field`` other than ``value`` (within its declared choices and bounds)."""
    meta = field.metadata
    if "choices" in meta:
        return next(c for c in meta["choices"] if c != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float) or "float" in str(field.type):
        return 0.25 if value != 0.25 else 0.5
    if isinstance(value, list):
        return value + ["another class"]
    if "int" in str(field.type):
        return 1
    return "another" if value is None else f"{value}-another"


def _scheme_config(section: str, config: ExperimentConfig | None = None) -> tuple[ExperimentConfig, str, str]:
    """(config, arm, section attribute) for a SECTION_FIELDS or SCHEME_FIELDS section."""
    config = config or ExperimentConfig()
    if not section.startswith("scheme:"):
        return config, "attention", section
    arm = section.partition(":")[2]
    config.scheme = scheme_parameters(arm)
    return config, arm, "scheme"


def _changed(config: ExperimentConfig, section: str, name: str) -> ExperimentConfig:
    changed, part = copy.deepcopy(config), getattr(config, section)
    value = _other_value(getattr(part, name), next(f for f in dataclasses.fields(part) if f.name == name))
    setattr(changed, section, dataclasses.replace(part, **{name: value}))  # the model section is frozen
    assert getattr(getattr(changed, section), name) != getattr(part, name)
    return changed


def _finished_trial(folder: Path, config: ExperimentConfig, arm: str) -> None:
    record = TrialRecord(scheme=arm, seed=0, trial=0, checkpoint="model.pt", classes=["a", "b"], n_test=2,
                         metrics={"mAP": 0.5, "best_epoch": 1, "wall_seconds": 1.0}, per_class_ap=[0.5, 0.5],
                         per_class_auc=[0.5, 0.5], test_support=[1, 1], fingerprint=fingerprint(config, arm),
                         skipped={}, diagnostics=[], finished="2026-01-01T00:00:00+00:00")
    folder.mkdir(parents=True)
    (folder / TRIAL_FILE).write_text(json.dumps(record.to_json()))


def test_every_train_field_is_marked() -> None:
    unmarked = [f.name for f in dataclasses.fields(TrainSection) if not isinstance(f.metadata.get("affects_result"),
                                                                                     bool)]
    assert unmarked == [], f"TrainSection fields without LEARNS/EXTENDS/RUNS: {unmarked}"
    assert set(result_fields(TrainSection)) | set(RUNS) == {f.name for f in dataclasses.fields(TrainSection)}
    assert set(EXTENDS) == {"max_epochs", "early_stopping_patience"}
    assert set(TrainSection.resume_must_match()) == set(result_fields(TrainSection)) - set(EXTENDS)


@pytest.mark.parametrize("section, name", [("train", f) for f in LEARNS] + SECTION_FIELDS + SCHEME_FIELDS)
def test_a_result_field_changed_makes_a_finished_trial_not_reusable(section: str, name: str, tmp_path: Path) -> None:
    config, arm, section = _scheme_config(section)
    _finished_trial(tmp_path / "trial", config, arm)
    assert read_trial(tmp_path / "trial", arm, 0, fingerprint(config, arm)) is not None
    with pytest.raises(ValueError, match=rf"made with a different config \({section}\.{name} "):
        read_trial(tmp_path / "trial", arm, 0, fingerprint(_changed(config, section, name), arm))


@pytest.mark.parametrize("name", RUNS)
def test_a_runs_field_changed_keeps_a_finished_trial(name: str, tmp_path: Path) -> None:
    config = ExperimentConfig()
    _finished_trial(tmp_path / "trial", config, "attention")
    changed = _changed(config, "train", name)
    assert fingerprint(changed, "attention") == fingerprint(config, "attention")
    record = read_trial(tmp_path / "trial", "attention", 0, fingerprint(changed, "attention"))
    assert record is not None and record.scheme == "attention"


def _stopped_run(tmp_path: Path, config: ExperimentConfig | None = None) -> ExperimentConfig:
    """A config whose output_dir holds the last.ckpt of a run stopped after its first epoch."""
    config = config or ExperimentConfig(output_dir=str(tmp_path / "run"))
    config.train.max_epochs = 5
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {}, "epoch": 0, "weaktag": {"experiment": resumable_settings(config)}},
               tmp_path / "run" / "checkpoints" / "last.ckpt")
    return config


@pytest.mark.parametrize("section, name", [("train", f) for f in TrainSection.resume_must_match()] + SECTION_FIELDS
                         + SCHEME_FIELDS)
def test_a_resume_must_match_field_changed_refuses_to_resume(section: str, name: str, tmp_path: Path) -> None:
    config, _, section = _scheme_config(section, ExperimentConfig(output_dir=str(tmp_path / "run")))
    config = _stopped_run(tmp_path, config)
    assert resumable_checkpoint(config).name == "last.ckpt"
    with pytest.raises(ValueError, match=rf"written by a run with other settings \(.*{section}\.{name}\b"):
        resumable_checkpoint(_changed(config, section, name))


@pytest.mark.parametrize("name", EXTENDS + RUNS)
def test_an_extends_or_runs_field_changed_resumes(name: str, tmp_path: Path) -> None:
    config = _stopped_run(tmp_path)
    assert resumable_checkpoint(_changed(config, "train", name)).name == "last.ckpt"
