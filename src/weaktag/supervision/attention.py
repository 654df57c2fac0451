"""Table I rows 4-5: attention trained on weak labels only, and strongly supervised attention."""

from __future__ import annotations

import torch

from ..models import ModelOutput
from .base import Batch, LossTerms, TrainingScheme, bce, masked_clip_mean

ATTENTION_TARGETS = ("normalized", "raw")


def attention_loss(output: ModelOutput, target: torch.Tensor, attention_target: str = "normalized") -> torch.Tensor:
    """Per-clip L_att: BCE between the attention and a (C, T) segment target, mean over (C, T).

    ``normalized`` (default, the paper's text): on A = X^b / sum_t X^b. Because A sums to
    1 over time, its optimum for a target with k active segments is 1/k on each of them
    and 0 elsewhere: the loss shapes *where* attention goes, not its height.
    ``raw``: on X^b before normalisation, which can reach 1 on every active segment.
    Returns a (B,) tensor so callers can mask clips.
    """
    if output.attention is None or output.attention_raw is None:
        raise ValueError("attention loss needs a model with an attention head (L8-b)")
    if attention_target == "normalized":
        att = output.attention
    elif attention_target == "raw":
        att = output.attention_raw
    else:
        raise ValueError(f"attention_target must be one of {ATTENTION_TARGETS}, not {attention_target!r}")
    return bce(att, target, reduce_dims=(1, 2))


class Attention(TrainingScheme):
    """Row 4: unsupervised attention, L = L_pred."""

    name = "attention"
    description = "attention; L_pred only"

    def loss(self, output: ModelOutput, batch: Batch) -> LossTerms:
        pred = bce(output.clip_probs, batch.weak)
        return LossTerms(pred, {"pred": pred})


class StronglySupervisedAttention(TrainingScheme):
    """Row 5: L = L_pred + alpha * L_att(A, Y), the attention term on strongly labelled clips only."""

    name = "attention-strong"
    needs_strong = True
    description = "attention; L_pred + alpha * L_att(A, Y)"

    def __init__(self, alpha: float = 1.0, attention_target: str = "normalized") -> None:
        self.alpha = alpha
        self.attention_target = attention_target

    def loss(self, output: ModelOutput, batch: Batch) -> LossTerms:
        pred = bce(output.clip_probs, batch.weak)
        att = masked_clip_mean(attention_loss(output, batch.strong, self.attention_target), batch.has_strong)
        return LossTerms(pred + self.alpha * att, {"pred": pred, "att_strong": att})
