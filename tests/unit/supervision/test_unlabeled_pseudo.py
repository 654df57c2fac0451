"""attention-self-ext's unlabeled_pseudo_threshold: L_att(A, P) on unlabelled clips, their clip labels the mean
teacher's clip predictions at or above the threshold, P made from the teacher's X^a; no L_pred on them."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from helpers import learnable_features
from weaktag.batch import Batch
from weaktag.config import check_unlabeled_scheme, load_config
from weaktag.data import FeatureSet, WithUnlabeled
from weaktag.errors import ConfigError
from weaktag.models import BackboneConfig, ModelConfig, ModelOutput, WeakTagNet
from weaktag.supervision import make_scheme, scheme_parameters
from weaktag.supervision.extended import teacher_clip_labels
from weaktag.supervision.mean_teacher import MeanTeacherConfig, consistency_loss, output_rows
from weaktag.training.module import WeakTagModule
from weaktag.training.run import train

# two unlabelled clips, 3 classes, 4 segments: the teacher's clip probabilities say class 0 is in clip 0 and
# classes 1 and 2 (0.5 exactly: at the threshold) in clip 1
TEACHER_CLIP = torch.tensor([[0.8, 0.3, 0.1], [0.2, 0.6, 0.5]])
TEACHER_XA = torch.tensor([[[0.9, 0.6, 0.3, 0.2], [0.5, 0.5, 0.7, 0.1], [0.2, 0.4, 0.2, 0.0]],
                           [[0.1, 0.2, 0.1, 0.2], [0.9, 0.1, 0.1, 0.8], [0.3, 0.3, 0.6, 0.6]]])
UNIFORM = torch.full((2, 3, 4), 0.25)  # the student's A


def _scheme(threshold: float, **settings):
    return make_scheme("attention-self-ext", scheme_parameters(
        "attention-self-ext", pseudo_threshold="absent-mean", pseudo_target="binary",
        unlabeled_pseudo_threshold=threshold, **settings))


def _unlabeled_batch() -> Batch:  # label rows zeros, as training gives unlabelled clips
    return Batch(torch.zeros(2, 64, 64), torch.zeros(2, 3), torch.zeros(2, 3, 4), torch.zeros(2, dtype=torch.bool),
                 labeled=torch.zeros(2, dtype=torch.bool))


def _student(requires_grad: bool = False) -> ModelOutput:
    xa = torch.full((2, 3, 4), 0.5, requires_grad=requires_grad)
    clip = torch.full((2, 3), 0.5, requires_grad=requires_grad)
    attention = UNIFORM.clone().requires_grad_(requires_grad)
    return ModelOutput(xa, clip, attention, attention)


def _row_bce(k: int) -> float:
    """BCE(A = 1/4 on 4 segments, P with k ones), mean over time."""
    return -(k * math.log(0.25) + (4 - k) * math.log(0.75)) / 4


def test_the_teachers_clip_predictions_at_or_above_the_threshold_are_the_clip_labels():
    teacher = ModelOutput(TEACHER_XA, TEACHER_CLIP, UNIFORM, UNIFORM)
    assert teacher_clip_labels(teacher, 0.5).tolist() == [[True, False, False], [False, True, True]]
    assert teacher_clip_labels(teacher, 0.7).tolist() == [[True, False, False], [False, False, False]]


def test_the_unlabelled_loss_is_alpha_times_bce_of_a_against_the_teachers_p_on_the_guessed_rows():
    # absent-mean theta, from the teacher's X^a: clip 0, absent classes 1 and 2: 2.6 / 8 = 0.325 -> P[0, 0] =
    # 1 1 0 0; clip 1, absent class 0: 0.15 -> P[1, 1] = 1 0 0 1, P[1, 2] = 1 1 1 1
    teacher = ModelOutput(TEACHER_XA, TEACHER_CLIP, UNIFORM, UNIFORM)
    terms = _scheme(0.5, alpha=2.0).unlabeled_loss(_student(), _unlabeled_batch(), teacher)
    expected = (_row_bce(2) + _row_bce(2) + _row_bce(4)) / 6  # mean over every (clip, class), 0 off the rows
    assert terms.parts["att_unlabeled"].item() == pytest.approx(expected, rel=1e-5)
    assert terms.total.item() == pytest.approx(2.0 * expected, rel=1e-5)
    # a higher threshold: clip 1 guesses no class, so only P[0, 0] supervises
    higher = _scheme(0.7, alpha=2.0).unlabeled_loss(_student(), _unlabeled_batch(), teacher)
    assert higher.parts["att_unlabeled"].item() == pytest.approx(_row_bce(2) / 6, rel=1e-5)
    # the alpha warm-up weighs it as it weighs the labelled clips' term
    ramped = _scheme(0.5, alpha=2.0, alpha_warmup_epochs=4)
    ramped.start_epoch(1)
    assert ramped.unlabeled_loss(_student(), _unlabeled_batch(), teacher).total.item() == pytest.approx(
        0.5 * expected, rel=1e-5)


def test_off_by_default_and_in_the_papers_scheme():
    teacher = ModelOutput(TEACHER_XA, TEACHER_CLIP, UNIFORM, UNIFORM)
    assert make_scheme("attention-self-ext").unlabeled_loss(_student(), _unlabeled_batch(), teacher) is None
    assert make_scheme("attention-self").unlabeled_loss(_student(), _unlabeled_batch(), teacher) is None
    assert make_scheme("attention-self-ext").params.unlabeled_setting() is None
    with pytest.raises(ValueError, match="does not take 'unlabeled_pseudo_threshold'"):
        scheme_parameters("attention-self", unlabeled_pseudo_threshold=0.5)


def test_only_the_attention_learns_from_unlabelled_clips():
    student = _student(requires_grad=True)
    teacher = ModelOutput(TEACHER_XA, TEACHER_CLIP, UNIFORM, UNIFORM)
    _scheme(0.5).unlabeled_loss(student, _unlabeled_batch(), teacher).total.backward()
    assert student.clip_probs.grad is None and student.segment_probs.grad is None  # no L_pred, P a constant
    assert student.attention.grad is not None and student.attention.grad.abs().sum() > 0


def _mixed_batch() -> Batch:
    labeled = learnable_features(4, 1, strong_every=1)
    raw = learnable_features(3, 2)
    unlabeled = FeatureSet([replace(c, labels=frozenset(), events=None) for c in raw.clips], raw.classes, raw.features)
    return WithUnlabeled(labeled, unlabeled).collate([0, 1, 2, 3, 4, 5, 6])


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # a module outside a Trainer
def test_training_adds_the_unlabelled_attention_term_to_the_labelled_loss_and_the_consistency():
    torch.manual_seed(0)
    scheme = _scheme(0.3)
    model = WeakTagNet(ModelConfig(3, True, BackboneConfig(width=0.0625, batch_norm=False)))
    module = WeakTagModule(model, scheme, 1e-3, ["a", "b", "c"], mean_teacher=MeanTeacherConfig(weight=2.0))
    module.on_train_epoch_start()
    with torch.no_grad():
        for p in module.teacher.parameters():
            p.add_(0.01)
    batch = _mixed_batch()
    total = module.training_step(batch, 0)
    out, teacher = model.forward_features(batch.features), module.teacher.forward_features(batch.features)
    on, off = batch.labeled, ~batch.labeled
    labelled = scheme.loss(output_rows(out, on), batch.labeled_part(), teacher=output_rows(teacher, on))
    unlabelled = scheme.unlabeled_loss(output_rows(out, off), batch.rows(off), output_rows(teacher, off))
    assert unlabelled.total.item() > 0
    torch.testing.assert_close(total, labelled.total + unlabelled.total + 2.0 * consistency_loss(out, teacher))
    # the unlabelled clips' (zero) label rows are not read: the teacher's clip predictions stand for them
    poisoned = replace(batch, weak=torch.where(batch.labeled[:, None], batch.weak, 1.0))
    torch.testing.assert_close(module.training_step(poisoned, 0), total)


def test_the_setting_needs_the_mean_teacher_and_unlabelled_clips(tmp_path: Path):
    ext = ["scheme.name=attention-self-ext", "scheme.unlabeled_pseudo_threshold=0.5"]
    with pytest.raises(ConfigError, match="scheme.unlabeled_pseudo_threshold=0.5: .*set mean_teacher.weight > 0"):
        load_config(None, ext)
    without_clips = load_config(None, [*ext, "mean_teacher.weight=1", f"output_dir={tmp_path / 'run'}",
                                       f"data.train={tmp_path / 'missing.csv'}"])
    with pytest.raises(ConfigError, match="data.unlabeled names none"):
        check_unlabeled_scheme(without_clips)
    with pytest.raises(ConfigError, match="data.unlabeled names none"):  # before any label or audio is read
        train(without_clips)
    check_unlabeled_scheme(load_config(None, [*ext, "mean_teacher.weight=1", "data.unlabeled=clips/"]))
