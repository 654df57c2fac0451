"""Table I rows 1-3: no attention, mean of X^a over time at inference."""

from __future__ import annotations

from ..models import ModelOutput
from .base import Batch, LossTerms, TrainingScheme, bce, masked_clip_mean


class PoolWeak(TrainingScheme):
    """Row 1: mean-pooled clip prediction against the weak labels."""

    name = "pool-weak"
    uses_attention = False
    description = "no attention; BCE(mean_t X^a, y)"

    def loss(self, output: ModelOutput, batch: Batch) -> LossTerms:
        pred = bce(output.clip_probs, batch.weak)
        return LossTerms(pred, {"pred": pred})


class PoolStrong(TrainingScheme):
    """Row 2: segment predictions X^a against the strong segment labels Y, no pooling in training."""

    name = "pool-strong"
    uses_attention = False
    needs_strong = True
    description = "no attention; BCE(X^a, Y) on strongly labelled clips"

    def loss(self, output: ModelOutput, batch: Batch) -> LossTerms:
        seg = masked_clip_mean(bce(output.segment_probs, batch.strong, reduce_dims=(1, 2)), batch.has_strong)
        return LossTerms(seg, {"segment": seg})


class PoolWeakStrong(TrainingScheme):
    """Row 3: the segment loss before pooling plus the clip loss after mean pooling."""

    name = "pool-weak-strong"
    uses_attention = False
    needs_strong = True
    description = "no attention; BCE(mean_t X^a, y) + BCE(X^a, Y)"

    def loss(self, output: ModelOutput, batch: Batch) -> LossTerms:
        pred = bce(output.clip_probs, batch.weak)
        seg = masked_clip_mean(bce(output.segment_probs, batch.strong, reduce_dims=(1, 2)), batch.has_strong)
        return LossTerms(pred + seg, {"pred": pred, "segment": seg})
