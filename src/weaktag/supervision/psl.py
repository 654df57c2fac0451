"""PSL, pseudo strong labels (Dinkel et al. 2022), as a student's training scheme.

A trained weaktag model (the teacher, a checkpoint) tags sub-chunks of every training clip
(``chunk_seconds`` long, e.g. 2, 5 or 10 s); the student trains on those chunks with

    L = w * BCE(y-hat, teacher's chunk probabilities) + (1 - w) * BCE(y-hat, y)

where y are the clip's weak labels and w is ``teacher_weight``. PSL proper (the paper's Table 2)
trains on the teacher's labels alone: w = 1, the default. Its Table 3 teacher-student baseline mixes
the two halves (w = 0.5): the ``teacher-student`` scheme. The chunks and their teacher labels are made
once, before training (:mod:`weaktag.training.psl`), so these schemes train without batch mixup (as
PSL's configs do: a mix of two chunks is not what the teacher labelled); validation and test use whole
clips. The student is whatever network the config's ``model`` section describes, on any front end: a
teacher on another front end labels the same chunks of audio through its own.

In ``weaktag compare`` the teacher is the same-seed trial of ``teacher_arm`` (default: the student's
recipe's ``attention``); naming another recipe's arm (``recommended:attention``) tests PSL's claim, that
a teacher that knows more makes a better student than the clip labels alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from ..errors import ConfigError
from ..models import ModelOutput
from .base import Batch, LossTerms, SchemeParameters, TrainingScheme, bce
from .registry import register_scheme


@dataclass
class PSLParameters(SchemeParameters):
    # the teacher checkpoint (in compare, none: the same-seed trial of teacher_arm)
    teacher: Optional[str] = None
    # in compare: the arm whose same-seed trial teaches (none: the student's recipe's attention)
    teacher_arm: Optional[str] = None
    chunk_seconds: float = field(default=2.0, metadata={"min_exclusive": 0.0, "finite": True})  # chunk length
    teacher_weight: float = field(default=1.0, metadata={"min": 0.0, "max": 1.0})  # w of the teacher's labels
    recorded_defaults: ClassVar[dict[str, Any]] = {"teacher_weight": 0.5}  # its default until PSL proper's 1.0


@dataclass
class TeacherStudentParameters(PSLParameters):
    recorded_defaults: ClassVar[dict[str, Any]] = {}
    teacher_weight: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})  # half teacher, half clip labels


@register_scheme
class PseudoStrongLabelStudent(TrainingScheme):
    """The PSL student: chunk-level targets from a teacher, mixed with the clip labels."""

    name = "psl"
    description = "PSL student: w * BCE(y-hat, teacher on chunk) + (1 - w) * BCE(y-hat, y)"
    labels = "weak"
    attention_supervision = "none"
    Parameters = PSLParameters
    needs_teacher = True
    allows_mixup = False

    def __init__(self, params: PSLParameters) -> None:
        super().__init__(params)
        self.teacher = params.teacher  # training reads these two to make the teacher-labelled chunks
        self.chunk_seconds = float(params.chunk_seconds)

    def loss(self, output: ModelOutput, batch: Batch, teacher: ModelOutput | None = None) -> LossTerms:
        if batch.teacher is None:
            raise ConfigError("the psl scheme trains on chunks labelled by a teacher (scheme.teacher), and this "
                             "batch has no teacher labels")
        from_teacher = bce(output.clip_probs, batch.teacher, weight=self.class_weights)
        from_labels = bce(output.clip_probs, batch.weak, weight=self.class_weights)
        w = self.params.teacher_weight
        return LossTerms(w * from_teacher + (1.0 - w) * from_labels,
                         {"teacher": from_teacher, "pred": from_labels})


@register_scheme
class TeacherStudentBaseline(PseudoStrongLabelStudent):
    """The PSL paper's teacher-student baseline (Table 3): the teacher's chunk labels and the clip labels
    weighed half and half (``teacher_weight`` 0.5)."""

    name = "teacher-student"
    description = "teacher-student baseline: 0.5 * BCE(y-hat, teacher on chunk) + 0.5 * BCE(y-hat, y)"
    Parameters = TeacherStudentParameters
