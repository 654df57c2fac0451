"""Table I rows 4-6 and their combination: attention schemes, which differ only in what supervises A.

Every attention scheme's loss is ``L_pred + alpha * (sum of its attention terms)``:
``L_pred = BCE(y-hat, y)`` on the clip labels, plus ``L_att(A, Y)`` on strongly labelled clips
(strong supervision, row 5) and/or ``L_att(A, P)`` with pseudo-strong labels P made from the
model's own X^a (self-supervision, row 6; see :mod:`weaktag.supervision.self_supervised`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from ..errors import ConfigError
from ..models import ModelOutput
from ..settings import at_least, choices
from .base import Batch, LossTerms, SchemeParameters, TrainingScheme, bce, masked_clip_mean
from .registry import register_scheme
from .self_supervised import pseudo_strong_labels

ATTENTION_TARGETS = ("normalized", "raw")
#: how the attention terms reduce over time: weaktag's mean, or the paper's sum (a factor T larger)
LOSS_REDUCTIONS = ("mean", "sum")


@dataclass
class AttentionParameters(SchemeParameters):
    """The parameters of the attention schemes with attention terms (rows 5, 6 and their combination)."""

    alpha: float = field(default=1.0, metadata=at_least(0.0, finite=True))  # the attention terms' weight
    # what L_att is on: A ("normalized", the paper's text) or X^b before normalisation ("raw")
    attention_target: str = field(default="normalized", metadata=choices(*ATTENTION_TARGETS))
    # the attention terms over time: "mean" (weaktag's; alpha 1 weighs them like L_pred) or "sum" (the
    # paper's eq.: T times larger, so its alpha grid 0.1-1.5 means what the paper's does); classes and clips
    # are averaged either way, as in L_pred
    loss_reduction: str = field(default="mean", metadata=choices(*LOSS_REDUCTIONS))


def attention_loss(output: ModelOutput, target: torch.Tensor, attention_target: str = "normalized",
                   weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per-clip L_att: BCE between the attention and a (C, T) segment target, mean over (C, T).

    ``normalized`` (default, the paper's text): on A = X^b / sum_t X^b. Because A sums to
    1 over time, its optimum for a target with k active segments is 1/k on each of them
    and 0 elsewhere: the loss shapes *where* attention goes, not its height.
    ``raw``: on X^b before normalisation, which can reach 1 on every active segment.
    Returns a (B,) tensor so callers can mask clips. ``weight``: per-class loss weights, or None.
    """
    if output.attention is None or output.attention_raw is None:
        raise ValueError("attention loss needs a model with an attention head (L8-b)")
    if attention_target == "normalized":
        att = output.attention
    elif attention_target == "raw":
        att = output.attention_raw
    else:
        raise ConfigError(f"attention_target must be one of {ATTENTION_TARGETS}, not {attention_target!r}")
    return bce(att, target, reduce_dims=(1, 2), weight=weight)


class AttentionScheme(TrainingScheme):
    """Attention trained on clip labels, with the attention terms its class switches on (weighed by
    ``params.alpha``, which a scheme with terms takes: :class:`AttentionParameters`)."""

    Parameters = AttentionParameters
    params: AttentionParameters
    strong_term: ClassVar[bool] = False  # L_att(A, Y) on strongly labelled clips
    self_term: ClassVar[bool] = False  # L_att(A, P), P pseudo-strong labels from X^a

    def over_time(self, term: torch.Tensor, output: ModelOutput) -> torch.Tensor:
        """A per-segment mean ``term`` as ``scheme.loss_reduction`` asks: unchanged, or times T (a sum over time)."""
        if self.params.loss_reduction == "sum":
            return term * output.segment_probs.shape[-1]
        return term

    def loss(self, output: ModelOutput, batch: Batch, teacher: ModelOutput | None = None) -> LossTerms:
        w = self.class_weights
        pred = bce(output.clip_probs, batch.weak, weight=w)
        parts = {"pred": pred}
        if self.strong_term:
            parts["att_strong"] = self.over_time(masked_clip_mean(
                attention_loss(output, batch.strong, self.params.attention_target, w), batch.has_strong), output)
        if self.self_term:
            pseudo = pseudo_strong_labels(output.segment_probs, batch.weak)
            parts["att_self"] = self.over_time(
                attention_loss(output, pseudo, self.params.attention_target, w).mean(), output)
        attention_terms = [parts[k] for k in ("att_strong", "att_self") if k in parts]
        if not attention_terms:
            return LossTerms(pred, parts)
        return LossTerms(pred + self.params.alpha * sum(attention_terms[1:], attention_terms[0]), parts)


@register_scheme
class Attention(AttentionScheme):
    """Row 4: unsupervised attention, L = L_pred (no attention term, so no parameter)."""

    name = "attention"
    description = "attention; L_pred only"
    table_i_row = 4
    Parameters = SchemeParameters


@register_scheme
class StronglySupervisedAttention(AttentionScheme):
    """Row 5: L = L_pred + alpha * L_att(A, Y), the attention term on strongly labelled clips only."""

    name = "attention-strong"
    description = "attention; L_pred + alpha * L_att(A, Y)"
    labels = "weak+strong"
    needs_strong = True
    attention_supervision = "strong"
    table_i_row = 5
    strong_term = True


@register_scheme
class SelfSupervisedAttention(AttentionScheme):
    """Row 6: L = L_pred + alpha * L_att(A, P) with on-the-fly pseudo-strong labels P."""

    name = "attention-self"
    description = "attention; L_pred + alpha * L_att(A, P), P from binarised X^a"
    attention_supervision = "self"
    table_i_row = 6
    self_term = True


@register_scheme
class StrongAndSelfSupervisedAttention(AttentionScheme):
    """Both attention terms: strong clips get L_att(A, Y) and L_att(A, P); weak-only clips get L_att(A, P)."""

    name = "attention-strong-self"
    description = "attention; L_pred + alpha * (L_att(A, Y) on strong clips + L_att(A, P))"
    labels = "weak+strong"
    attention_supervision = "strong+self"
    strong_term = True
    self_term = True
