"""PSL's teacher: another recipe's arm in compare, a teacher on another front end, no mixup for its chunks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from weaktag.checkpoint import save_checkpoint
from weaktag.config import load_config
from weaktag.data import build_feature_set
from weaktag.experiments.trials import teacher_arm, trial_config
from weaktag.geometry import VGGISH_GRID
from weaktag.labels import Clip, Manifest
from weaktag.models import ModelConfig, WeakTagNet
from weaktag.models.backbone import BackboneConfig
from weaktag.supervision import SCHEMES, make_scheme, scheme_parameters
from weaktag.training.psl import chunk_segments_for, teacher_labelled_chunks


def test_psl_trains_on_the_teacher_alone_and_the_baseline_halves_it() -> None:
    assert scheme_parameters("psl").teacher_weight == 1.0  # PSL proper (the paper's Table 2)
    assert scheme_parameters("teacher-student").teacher_weight == 0.5  # its Table 3 baseline
    assert not SCHEMES["psl"].allows_mixup and not SCHEMES["teacher-student"].allows_mixup
    assert SCHEMES["attention"].allows_mixup


def test_a_compare_arm_is_taught_by_the_arm_it_names(tmp_path: Path) -> None:
    assert teacher_arm("narrow:psl") == "narrow:attention"
    params = scheme_parameters("psl", teacher_arm="recommended:attention")
    assert teacher_arm("narrow:psl", params) == "recommended:attention"
    config = load_config(None, ["scheme.name=psl", "scheme.teacher_arm=recommended:attention"])
    trial = trial_config(config, "narrow:psl", 3, tmp_path)
    assert Path(trial.scheme.teacher) == tmp_path / "runs" / "recommended" / "attention" / "seed3" / "model.pt"
    default = trial_config(load_config(None, ["scheme.name=psl"]), "narrow:psl", 3, tmp_path)
    assert Path(default.scheme.teacher) == tmp_path / "runs" / "narrow" / "attention" / "seed3" / "model.pt"


@pytest.mark.skipif(importlib.util.find_spec("aisfx") is None,
                    reason="the aisfx package is not installed (pip install --no-deps aisfx==0.1.2)")
def test_a_teacher_on_another_front_end_labels_the_same_chunks_of_audio(tmp_path: Path) -> None:
    import soundfile

    rng = np.random.default_rng(0)
    clips = []
    for i in range(2):
        path = tmp_path / f"c{i}.wav"
        soundfile.write(path, (0.1 * rng.standard_normal(16000 * 10)).astype(np.float32), 16000)
        clips.append(Clip(f"c{i}", path, frozenset({"a"})))
    train = build_feature_set(Manifest(clips, ["a", "b"]), ["a", "b"], grid=VGGISH_GRID)
    torch.manual_seed(0)
    student = WeakTagNet(ModelConfig(2, True, BackboneConfig(width=0.0625, l7_channels=16))).eval()
    teacher = WeakTagNet(ModelConfig(2, True, BackboneConfig(backbone="aisfx", pretrained=False))).eval()
    ckpt = save_checkpoint(tmp_path / "teacher.pt", teacher, ["a", "b"], "attention", {})
    cache = tmp_path / "cache"

    labelled = teacher_labelled_chunks(train, ckpt, 2.0, student, cache=cache)
    chunk = chunk_segments_for(2.0, VGGISH_GRID.segment_seconds, train.num_segments)  # 12 segments, 1.92 s
    starts = train.chunk_starts(chunk)
    assert len(labelled) == 2 * len(starts) and labelled.features.shape[1:] == (chunk * 16, 64)  # student's

    own = build_feature_set(Manifest(clips, ["a", "b"]), ["a", "b"], grid=teacher.grid)
    seconds = teacher.grid.segment_seconds
    length = round(chunk * VGGISH_GRID.segment_seconds / seconds)
    first = round(starts[1] * VGGISH_GRID.segment_seconds / seconds)  # clip 1's second chunk, on the teacher's grid
    stride = teacher.grid.time_stride
    with torch.no_grad():
        direct = teacher.forward_features(own.features[1:2, first * stride : (first + length) * stride]).clip_probs
    assert torch.allclose(labelled.teacher[len(starts) + 1], direct[0], atol=1e-5)
    assert any(cache.iterdir())  # the teacher's backbone outputs were kept ...
    again = teacher_labelled_chunks(train, ckpt, 2.0, student, cache=cache)
    assert torch.equal(again.teacher, labelled.teacher)  # ... and read back the same


def test_teacher_schemes_train_without_mixup(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from weaktag.data import FeatureSet
    from weaktag.training.run import PreparedData, _lightning_module

    config = load_config(None, ["scheme.name=psl", "scheme.teacher=t.pt", "augment.mixup_alpha=0.4",
                                "model.width=0.0625", "model.l7_channels=16"])
    scheme = make_scheme("psl", config.scheme)
    net = WeakTagNet(ModelConfig(2, True, BackboneConfig(width=0.0625, l7_channels=16)))
    empty = FeatureSet([], ["a", "b"], torch.zeros(0, 64, 64))
    data = PreparedData(["a", "b"], empty, empty)
    with caplog.at_level("INFO", logger="weaktag.training.run"):
        module = _lightning_module(config, net, scheme, data)
    assert module.augmenter is None and "without mixup" in caplog.text  # mixup was its only augmentation
    attention = load_config(None, ["scheme.name=attention", "augment.mixup_alpha=0.4"])
    kept = _lightning_module(attention, net, make_scheme("attention", attention.scheme), data)
    assert kept.augmenter is not None and kept.augmenter.config.mixup_alpha == 0.4
