"""The mean teacher's pieces against their formulas: EMA update, consistency loss, ramp-up, batch split."""

from __future__ import annotations

import math

import pytest
import torch

from weaktag.batch import Batch
from weaktag.models import ModelOutput
from weaktag.supervision.mean_teacher import (batch_split, consistency_loss, ema_decay_at, ema_update, output_rows,
                                              sigmoid_rampup)


class _Net(torch.nn.Module):
    def __init__(self, weight: list[float], mean: list[float]) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1, bias=False)
        self.bn = torch.nn.BatchNorm1d(2)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([weight]))
        self.bn.running_mean.copy_(torch.tensor(mean))


def test_ema_update_is_decay_times_teacher_plus_the_rest_times_student_and_copies_buffers():
    teacher, student = _Net([1.0, -2.0], [0.0, 0.0]), _Net([3.0, 2.0], [5.0, -1.0])
    ema_update(teacher, student, 0.75)
    # 0.75 * 1 + 0.25 * 3 = 1.5; 0.75 * -2 + 0.25 * 2 = -1
    assert teacher.linear.weight.tolist() == [[1.5, -1.0]]
    assert teacher.bn.weight.tolist() == [1.0, 1.0]  # both 1: unchanged by the average
    assert teacher.bn.running_mean.tolist() == [5.0, -1.0]  # buffers are copied, not averaged
    assert student.linear.weight.tolist() == [[3.0, 2.0]]  # the student is not touched
    ema_update(teacher, student, 0.5)
    assert teacher.linear.weight.tolist() == [[2.25, 0.5]]


def test_the_decay_is_the_true_average_until_the_configured_one_is_smaller():
    assert [ema_decay_at(n, 0.999) for n in (1, 2, 3)] == [0.5, pytest.approx(2 / 3), 0.75]
    assert ema_decay_at(10_000, 0.999) == 0.999
    assert ema_decay_at(1, 0.2) == 0.2


def _output(clip: list[list[float]], segment: list[list[list[float]]]) -> ModelOutput:
    return ModelOutput(segment_probs=torch.tensor(segment), clip_probs=torch.tensor(clip))


def test_consistency_is_the_mse_of_clip_probabilities_plus_the_mse_of_segment_outputs():
    student = _output([[0.5, 1.0], [0.0, 0.25]], [[[0.5, 0.5]], [[1.0, 0.0]]])  # B=2, C=2 / C=1, T=2
    teacher = _output([[0.0, 1.0], [0.5, 0.25]], [[[0.5, 1.0]], [[0.0, 0.0]]])
    # clip: (0.25 + 0 + 0.25 + 0) / 4 = 0.125; segment: (0 + 0.25 + 1 + 0) / 4 = 0.3125
    assert float(consistency_loss(student, teacher)) == 0.4375
    assert float(consistency_loss(teacher, teacher)) == 0.0


def test_consistency_gradient_reaches_the_student_only():
    s = torch.tensor([[0.5]], requires_grad=True)
    t = torch.tensor([[0.0]], requires_grad=True)
    loss = consistency_loss(ModelOutput(s.unsqueeze(-1), s), ModelOutput(t.unsqueeze(-1), t))
    loss.backward()
    assert s.grad.tolist() == [[2.0]]  # d/ds of 2 (s - t)^2 at 0.5
    assert t.grad is None


def test_sigmoid_rampup_follows_exp_minus_5_one_minus_t_squared():
    assert sigmoid_rampup(0, 10) == pytest.approx(math.exp(-5.0))
    assert sigmoid_rampup(5, 10) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(10, 10) == 1.0
    assert sigmoid_rampup(25, 10) == 1.0  # capped
    assert sigmoid_rampup(0, 0) == 1.0  # no ramp-up: the full weight at once


def test_batch_split_rounds_the_unlabelled_share_and_refuses_an_empty_part():
    assert batch_split(8, 0.5) == (4, 4)
    assert batch_split(24, 0.5) == (12, 12)
    assert batch_split(10, 0.25) == (7, 3)  # 2.5 rounds up
    with pytest.raises(ValueError, match="unlabeled_fraction"):
        batch_split(1, 0.5)  # one unlabelled clip leaves no labelled one
    with pytest.raises(ValueError, match="batch_size"):
        batch_split(4, 0.1)  # 0.4 unlabelled clips: none


def test_output_rows_and_batch_rows_keep_the_selected_clips_of_every_field():
    out = ModelOutput(segment_probs=torch.arange(12.0).reshape(3, 2, 2), clip_probs=torch.arange(6.0).reshape(3, 2),
                      micro_levels=[(torch.arange(3.0), torch.arange(3.0) * 2)])
    mask = torch.tensor([True, False, True])
    picked = output_rows(out, mask)
    assert picked.clip_probs.tolist() == [[0.0, 1.0], [4.0, 5.0]]
    assert picked.segment_probs.shape == (2, 2, 2) and picked.attention is None
    assert [level[1].tolist() for level in picked.micro_levels] == [[0.0, 4.0]]
    batch = Batch(torch.zeros(3, 4, 2), torch.eye(3)[:, :2], torch.zeros(3, 2, 2), torch.tensor([True, False, False]),
                  ["a", "b", "c"], labeled=mask)
    part = batch.labeled_part()
    assert part.clip_ids == ["a", "c"] and part.weak.tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert part.all_labeled and Batch.join(part, batch.rows(~mask)).clip_ids == ["a", "c", "b"]
