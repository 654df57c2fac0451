"""Distillation: a small student learns what a trained teacher says about every chunk, in time as well.

PSL (:mod:`.psl`) gives the student the teacher's clip probabilities of each chunk. A detector also
needs to say *where*, so the distilled student is taught the teacher's segment scores too (its event
output, the one it chose on validation, on the student's time grid), with the clip labels mixed in:

    L = w * BCE(y-hat, teacher's chunk probabilities) + (1 - w) * BCE(y-hat, y)
        + lambda * BCE(X^a, teacher's segment scores)

``w`` is ``teacher_weight``, ``lambda`` is ``segment_weight`` (0: PSL with the clip labels mixed in). The
student keeps the teacher's classes; its tag thresholds and event settings are chosen again on validation,
as for any training run. ``weaktag distill --teacher CKPT --config ...`` is this scheme.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import ConfigError
from ..models import ModelOutput
from .base import Batch, LossTerms, segment_bce
from .psl import PseudoStrongLabelStudent, PSLParameters
from .registry import register_scheme


@dataclass
class DistillParameters(PSLParameters):
    recorded_defaults: ClassVar[dict[str, Any]] = {}
    # mostly the teacher, the clip labels mixed in (PSL proper's w = 1 trains on the teacher alone)
    teacher_weight: float = field(default=0.9, metadata={"min": 0.0, "max": 1.0})
    segment_weight: float = field(default=1.0, metadata={"min": 0.0, "finite": True})  # lambda of the segment term


@register_scheme
class DistilledStudent(PseudoStrongLabelStudent):
    """A student trained on a teacher checkpoint's clip and segment outputs on chunks, plus the clip labels."""

    name = "distill"
    description = ("distilled student: w * BCE(y-hat, teacher on chunk) + (1 - w) * BCE(y-hat, y) "
                   "+ lambda * BCE(X^a, teacher's segment scores)")
    Parameters = DistillParameters
    needs_teacher_segments = True

    def loss(self, output: ModelOutput, batch: Batch, teacher: ModelOutput | None = None) -> LossTerms:
        clip = super().loss(output, batch, teacher)
        if batch.teacher_segments is None:
            raise ConfigError("the distill scheme trains on chunks with a teacher's segment scores (scheme.teacher), "
                              "and this batch has none")
        target = batch.teacher_segments.to(output.segment_probs.device)
        if target.shape != output.segment_probs.shape:
            raise ValueError(f"teacher segment targets {tuple(target.shape)} do not match the student's segments "
                             f"{tuple(output.segment_probs.shape)}")
        from_segments = segment_bce(output, target, weight=self.class_weights)
        return LossTerms(clip.total + self.params.segment_weight * from_segments,
                         {**clip.parts, "segments": from_segments})
