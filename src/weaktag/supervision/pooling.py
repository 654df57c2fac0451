"""Table I rows 1-3: no attention, mean of X^a over time at inference.

Their losses combine two pieces: the clip term BCE(mean_t X^a, y) on the clip labels and the
segment term BCE(X^a, Y) on strongly labelled clips (before any pooling).
"""

from __future__ import annotations

from typing import ClassVar

from ..models import ModelOutput
from .base import Batch, LossTerms, TrainingScheme, bce, masked_clip_mean, segment_bce
from .registry import register_scheme


class PoolingScheme(TrainingScheme):
    """No attention branch; the loss terms its class switches on."""

    uses_attention = False
    attention_supervision = ""
    clip_term: ClassVar[bool] = True
    segment_term: ClassVar[bool] = False

    def loss(self, output: ModelOutput, batch: Batch, teacher: ModelOutput | None = None) -> LossTerms:
        parts = {}
        if self.clip_term:
            parts["pred"] = bce(output.clip_probs, batch.weak, weight=self.class_weights)
        if self.segment_term:
            parts["segment"] = masked_clip_mean(segment_bce(output, batch.strong, reduce_dims=(1, 2), weight=self.class_weights),
                                                batch.has_strong)
        terms = list(parts.values())
        return LossTerms(sum(terms[1:], terms[0]), parts)


@register_scheme
class PoolWeak(PoolingScheme):
    """Row 1: mean-pooled clip prediction against the weak labels."""

    name = "pool-weak"
    description = "no attention; BCE(mean_t X^a, y)"
    table_i_row = 1


@register_scheme
class PoolStrong(PoolingScheme):
    """Row 2: segment predictions X^a against the strong segment labels Y, no pooling in training."""

    name = "pool-strong"
    description = "no attention; BCE(X^a, Y) on strongly labelled clips"
    labels = "strong"
    needs_strong = True
    table_i_row = 2
    clip_term = False
    segment_term = True


@register_scheme
class PoolWeakStrong(PoolingScheme):
    """Row 3: the segment loss before pooling plus the clip loss after mean pooling."""

    name = "pool-weak-strong"
    description = "no attention; BCE(mean_t X^a, y) + BCE(X^a, Y)"
    labels = "weak+strong"
    needs_strong = True
    table_i_row = 3
    segment_term = True
