"""The mean teacher (Tarvainen & Valpola 2017, "Mean teachers are better role models", NeurIPS), as the
DCASE Task 4 baseline (DESED, Turpault et al. 2019, "Sound event detection in domestic environments with
weakly labeled data and soundscape synthesis") trains it:

* the teacher is an exponential moving average of the student's weights, updated after every optimiser
  step, ``theta'_n = d_n theta'_(n-1) + (1 - d_n) theta_n`` with ``d_n = min(1 - 1/(n + 1), ema_decay)``
  (the true average of the weights so far until the moving average is the better one, as both reference
  implementations do); batch-norm buffers are copied from the student; the teacher runs without dropout,
  or with its own dropout masks (``teacher_dropout``: Tarvainen & Valpola perturb the student and the
  teacher independently; with a frozen backbone's fixed outputs dropout is the only perturbation left);
* the consistency loss is ``MSE(y-hat_student, y-hat_teacher) + MSE(X^a_student, X^a_teacher)`` (clip
  probabilities and segment outputs, means over every element) on every clip of the batch, labelled and
  unlabelled, with the teacher's outputs as constants;
* it is added to the scheme's loss (which reads the labelled clips only) with the weight
  ``weight * exp(-5 (1 - t)^2)``, t = epoch / ``rampup_epochs`` capped at 1 (the sigmoid ramp-up);
  DESED uses weight 2.

``unlabeled_fraction`` is the share of every training batch drawn from ``data.unlabeled``
(:class:`weaktag.training.sampling.GlobalBatchSampler`); the epochs are counted in labelled clips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
import torch
import torch.nn.functional as F

from ..models import ModelOutput
from ..settings import at_least


@dataclass
class MeanTeacherConfig:
    """The config's ``mean_teacher`` section (module doc); ``weight`` 0 (the default) trains without one."""

    weight: float = field(default=0.0, metadata=at_least(0.0, finite=True))  # after the ramp-up; DESED: 2
    ema_decay: float = field(default=0.999, metadata={"min": 0.0, "max_exclusive": 1.0})
    rampup_epochs: int = field(default=0, metadata=at_least(0))  # 0: the full weight from the first epoch
    # the share of each training batch that is unlabelled clips (data.unlabeled), e.g. 0.5
    unlabeled_fraction: float = field(default=0.5, metadata={"min": 0.0, "max_exclusive": 1.0})
    # the teacher's training outputs with dropout (masks of its own) instead of without
    teacher_dropout: bool = False

    @property
    def enabled(self) -> bool:
        return self.weight > 0


def sigmoid_rampup(epoch: float, rampup_epochs: int) -> float:
    """exp(-5 (1 - t)^2), t = epoch / rampup_epochs in [0, 1] (Laine & Aila 2017; the mean teacher's and
    DESED's ramp-up): 1 from the start without a ramp-up."""
    if rampup_epochs <= 0:
        return 1.0
    t = min(max(epoch, 0.0), float(rampup_epochs)) / rampup_epochs
    return math.exp(-5.0 * (1.0 - t) ** 2)


def consistency_loss(student: ModelOutput, teacher: ModelOutput) -> torch.Tensor:
    """MSE of the clip probabilities plus MSE of the segment outputs X^a, teacher's as constants, in float32."""
    with torch.autocast(student.clip_probs.device.type, enabled=False):
        clip = F.mse_loss(student.clip_probs.float(), teacher.clip_probs.detach().float())
        segment = F.mse_loss(student.segment_probs.float(), teacher.segment_probs.detach().float())
    return clip + segment


def ema_decay_at(update: int, ema_decay: float) -> float:
    """The decay of the ``update``-th teacher update (1-based): the true average until ``ema_decay`` is larger."""
    return min(1.0 - 1.0 / (update + 1), ema_decay)


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, decay: float) -> None:
    """teacher <- decay * teacher + (1 - decay) * student for every parameter; buffers (batch-norm
    statistics) copied from the student."""
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.lerp_(s.detach(), 1.0 - decay)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)


def batch_split(batch_size: int, unlabeled_fraction: float) -> tuple[int, int]:
    """(labelled, unlabelled) clips of a batch of ``batch_size``: round(batch_size x fraction) unlabelled;
    ValueError when either part would be empty."""
    unlabeled = int(math.floor(batch_size * unlabeled_fraction + 0.5))
    if unlabeled == 0 or unlabeled >= batch_size:
        raise ValueError(f"a batch of {batch_size} clips cannot hold a share of {unlabeled_fraction} unlabelled "
                         "clips and at least one labelled clip per device: raise train.batch_size or change "
                         "mean_teacher.unlabeled_fraction")
    return batch_size - unlabeled, unlabeled


def output_rows(output: ModelOutput, index: torch.Tensor) -> ModelOutput:
    """The outputs of the clips at ``index`` (a (B,) bool mask or row numbers): every field is batch-first."""
    values = {}
    for f in fields(output):
        value = getattr(output, f.name)
        if isinstance(value, torch.Tensor):
            value = value[index]
        elif isinstance(value, list):  # micro_levels: (d-hat logits, a) per level
            value = [tuple(part[index] for part in level) for level in value]
        values[f.name] = value
    return ModelOutput(**values)
