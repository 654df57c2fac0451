"""The typed config system: every section parses, bad values fail on load naming the key, overrides and
bools coerce, and YAMLs written before it still load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from weaktag.config import ExperimentConfig, config_from_dict, load_config
from weaktag.errors import ConfigError
from weaktag.inference.settings import TaggingConfig, tagging_config
from weaktag.models import BackboneConfig


FULL = """\
data:
  train: labels/train.tsv
  validation: labels/validation.tsv
  test: /abs/test.tsv
  audio_dir: audio
  train_audio_dir: audio/train
  classes: [dog, cat]
model:
  backbone: vggish
  width: 0.25
  l7_channels: 128
  freq_pool: mean
  batch_norm: "true"
  init: weights/vggish.pth
  freeze: 2
scheme:
  name: attention-strong
  alpha: 0.5
  attention_target: raw
train:
  lr: 3e-4
  batch_size: 8
  max_epochs: 3
  seed: 7
  num_workers: 2
  accelerator: cpu
  devices: [0, 1]
  strategy: ddp
  precision: bf16-mixed
  logger: none
  progress: "false"
output_dir: runs/x
"""


def test_every_section_and_key_parses_with_types(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(FULL)
    c = load_config(path)
    assert c.data.train == str(tmp_path / "labels" / "train.tsv")  # relative to the YAML's folder
    assert c.data.test == "/abs/test.tsv" and c.data.classes == ["dog", "cat"]
    assert c.data.audio_dir_for("train") == str(tmp_path / "audio" / "train")
    assert c.data.audio_dir_for("validation") == str(tmp_path / "audio")  # the shared folder
    assert c.model.backbone_config() == BackboneConfig("vggish", 0.25, 128, "mean", True)
    assert c.model.init == str(tmp_path / "weights" / "vggish.pth") and c.model.freeze == 2
    assert (c.scheme.name, c.scheme.alpha, c.scheme.attention_target) == ("attention-strong", 0.5, "raw")
    t = c.train
    assert (t.lr, t.batch_size, t.max_epochs, t.seed, t.num_workers) == (3e-4, 8, 3, 7, 2)
    assert (t.accelerator, t.devices, t.strategy, t.precision, t.logger) == ("cpu", [0, 1], "ddp", "bf16-mixed", "none")
    assert t.progress is False and c.model.batch_norm is True  # quoted "false"/"true" are bools
    assert c.output_dir == "runs/x"


@pytest.mark.parametrize("override, check", [
    ("train.progress=false", lambda c: c.train.progress is False),
    ("train.progress=False", lambda c: c.train.progress is False),
    ("train.lr=1e-3", lambda c: c.train.lr == 0.001 and isinstance(c.train.lr, float)),
    ("train.max_epochs=4", lambda c: c.train.max_epochs == 4),
    ("model.batch_norm=true", lambda c: c.model.batch_norm is True),
    ("model.init=", lambda c: c.model.init is None),
    ("data.classes=[a,b]", lambda c: c.data.classes == ["a", "b"]),
    ("scheme.name=attention", lambda c: c.scheme.name == "attention"),
])
def test_overrides_coerce(override, check):
    assert check(load_config(None, [override]))


@pytest.mark.parametrize("override, message", [
    ("train.lr=fast", "train.lr"),
    ("train.lr=0", "train.lr: 0.0 must be above 0.0"),
    ("train.batch_size=0", "train.batch_size: 0 is below its minimum 1"),
    ("train.progress=maybe", "train.progress"),
    ("train.logger=wandb", "train.logger: 'wandb' is not allowed; allowed: csv, tensorboard, none"),
    ("model.freq_pool=median", "model.freq_pool: 'median' is not allowed; allowed: max, mean"),
    ("model.backbone=resnet", "model.backbone: unknown backbone 'resnet'; allowed: vggish"),
    ("scheme.alpha=-1", "scheme.alpha: -1.0 is below its minimum 0.0"),
    ("scheme.attention_target=softmax", "scheme.attention_target: 'softmax' is not allowed"),
    ("scheme.name=mode3", "scheme.name: unknown scheme 'mode3'"),
    ("nosuch.key=1", "nosuch"),
    ("train", "is not key=value"),
])
def test_bad_values_fail_on_load_naming_the_key(override, message):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_old_yamls_still_load(tmp_path: Path):
    for path in (REPO / "configs" / "narrow.yaml",):
        c = load_config(path)
        assert c.model.width == 0.125 and c.model.batch_norm is True and c.train.lr == 0.001
    old = tmp_path / "old.yaml"  # the hand-rolled system wrote "" for "not set"
    old.write_text('data:\n  train: t.tsv\n  audio_dir: ""\nmodel:\n  init: ""\n  width: 1\n')
    c = load_config(old)
    assert c.data.audio_dir is None and c.model.init is None and c.model.width == 1.0
    # a checkpoint's stored experiment dict round-trips
    assert config_from_dict(c.to_dict()) == c


def test_defaults_are_the_papers():
    c = ExperimentConfig()
    assert (c.train.lr, c.train.max_epochs, c.model.width, c.model.batch_norm, c.scheme.alpha) == (1e-4, 50, 1.0, False, 1.0)


def test_tagging_settings_share_one_set_of_defaults():
    default = TaggingConfig()
    assert tagging_config() == default
    assert (default.chunk_seconds, default.context_seconds, default.batch_size) == (30.72, None, 32)
    assert tagging_config(chunk_seconds=None).chunk_seconds == 30.72  # None keeps the default
    assert tagging_config(chunk_seconds="2.5").chunk_seconds == 2.5
    with pytest.raises(ConfigError, match="chunk_seconds: 0.0 must be above 0.0"):
        tagging_config(chunk_seconds=0)
    with pytest.raises(ConfigError, match="event_output: 'peak' is not allowed; allowed: segment, attention, product"):
        tagging_config(event_output="peak")


def test_learning_rate_schedules():
    from weaktag.training.module import Optimisation

    cosine = Optimisation(1e-3, schedule="cosine", warmup_epochs=2, max_epochs=12)
    factors = [cosine.factor(e) for e in range(12)]
    assert factors[:3] == pytest.approx([1 / 3, 2 / 3, 1.0])  # linear warm-up, then the full rate
    assert all(a > b for a, b in zip(factors[2:], factors[3:]))  # then decays every epoch ...
    assert factors[-1] == pytest.approx(0.5 * (1 + np.cos(np.pi * 9 / 10)))  # ... towards 0 at epoch 12
    assert [Optimisation(1e-3).factor(e) for e in (0, 5)] == [1.0, 1.0]
    with pytest.raises(ConfigError, match="train.lr_schedule: 'step' is not allowed"):
        load_config(None, ["train.lr_schedule=step"])
    with pytest.raises(ConfigError, match="train.lr: nan"):
        load_config(None, ["train.lr=nan"])


def test_validation_held_out_of_the_training_list(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  train: as/balanced_train_segments.csv\n  class_labels_indices: as/class_labels_indices.csv\n"
                    "  validation_fraction: 0.1\n  split_seed: 3\n")
    c = load_config(path)
    assert c.data.class_labels_indices == str(tmp_path / "as" / "class_labels_indices.csv")  # beside the YAML
    assert (c.data.validation, c.data.validation_fraction, c.data.split_seed) == (None, 0.1, 3)
    assert load_config(None).data.validation_fraction == 0.0  # default: validation labels of their own
    for override, message in (
        ("data.validation_fraction=1", "data.validation_fraction: 1.0 must be below 1.0"),
        ("data.validation_fraction=-0.1", "data.validation_fraction: -0.1 is below its minimum 0.0"),
        ("data.split_seed=-1", "data.split_seed: -1 is below its minimum 0"),
    ):
        with pytest.raises(ConfigError, match=message):
            load_config(path, [override])
    with pytest.raises(ConfigError, match=rf"{path}: data.validation_fraction: 0.1 .* data.validation names them too"):
        load_config(path, ["data.validation=v.tsv"])
    assert load_config(path, ["data.validation=v.tsv", "data.validation_fraction=0"]).data.validation == "v.tsv"
