"""PSL, pseudo strong labels (Dinkel et al. 2022), as a student's training scheme.

A trained weaktag model (the teacher, a checkpoint) tags sub-chunks of every training clip
(``chunk_seconds`` long, e.g. 2, 5 or 10 s); the student trains on those chunks with

    L = w * BCE(y-hat, teacher's chunk probabilities) + (1 - w) * BCE(y-hat, y)

where y are the clip's weak labels and w is ``teacher_weight``. The chunks and their teacher
labels are made once, before training (:mod:`weaktag.training.psl`); validation and test use
whole clips. The student is whatever network the config's ``model`` section describes (the
teacher's, or another backbone on the same front end).
"""

from __future__ import annotations

import math

from ..models import ModelOutput
from .base import Batch, LossTerms, TrainingScheme, bce


class PseudoStrongLabelStudent(TrainingScheme):
    """The PSL student: chunk-level targets from a teacher, mixed with the clip labels."""

    name = "psl"
    description = "PSL student: w * BCE(y-hat, teacher on chunk) + (1 - w) * BCE(y-hat, y)"
    labels = "weak"
    attention_supervision = "none"
    parameters = ("teacher", "chunk_seconds", "teacher_weight")
    needs_teacher = True

    def __init__(self, teacher: str | None = None, chunk_seconds: float = 2.0, teacher_weight: float = 0.5) -> None:
        if not (isinstance(chunk_seconds, (int, float)) and math.isfinite(chunk_seconds) and chunk_seconds > 0):
            raise ValueError(f"scheme.chunk_seconds must be a number > 0, not {chunk_seconds!r}")
        if not (isinstance(teacher_weight, (int, float)) and 0.0 <= teacher_weight <= 1.0):
            raise ValueError(f"scheme.teacher_weight must be in [0, 1], not {teacher_weight!r}")
        self.teacher = teacher
        self.chunk_seconds = float(chunk_seconds)
        self.teacher_weight = float(teacher_weight)

    def loss(self, output: ModelOutput, batch: Batch, teacher: ModelOutput | None = None) -> LossTerms:
        if batch.teacher is None:
            raise ValueError("the psl scheme trains on chunks labelled by a teacher (scheme.teacher), and this "
                             "batch has no teacher labels")
        from_teacher = bce(output.clip_probs, batch.teacher, weight=self.class_weights)
        from_labels = bce(output.clip_probs, batch.weak, weight=self.class_weights)
        w = self.teacher_weight
        return LossTerms(w * from_teacher + (1.0 - w) * from_labels,
                         {"teacher": from_teacher, "pred": from_labels})
