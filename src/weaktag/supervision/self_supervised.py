"""Table I row 6 (self-supervised attention) and its combination with strong labels.

Pseudo-strong labels (the paper's eq. 1) are made in every forward pass from the
model's own segment predictions X^a:

    theta = mean of X^a over the classes absent from the clip (all segments)
    P[c, t] = 1  if c is present in the clip and X^a[c, t] >= theta, else 0

P carries no gradient: it is a target, not a path for the loss to move X^a.
"""

from __future__ import annotations

import torch

from ..models import ModelOutput
from .attention import attention_loss
from .base import Batch, LossTerms, TrainingScheme, bce, masked_clip_mean

# When every class is present there are no absent classes to set theta from; 0.5 is the
# decision threshold of a sigmoid output.
FALLBACK_THRESHOLD = 0.5


def pseudo_strong_labels(segment_probs: torch.Tensor, weak: torch.Tensor) -> torch.Tensor:
    """P in {0, 1}^(B, C, T) from X^a (B, C, T) and weak labels y (B, C), without gradient."""
    with torch.no_grad():
        xa = segment_probs.detach().float()
        absent = (weak < 0.5).float().unsqueeze(-1).expand_as(xa)  # (B, C, T)
        n_absent = absent.sum(dim=(1, 2))
        theta = (xa * absent).sum(dim=(1, 2)) / n_absent.clamp(min=1.0)
        theta = torch.where(n_absent > 0, theta, torch.full_like(theta, FALLBACK_THRESHOLD))
        present = (weak >= 0.5).unsqueeze(-1)
        return ((xa >= theta.view(-1, 1, 1)) & present).to(segment_probs.dtype)


class SelfSupervisedAttention(TrainingScheme):
    """Row 6: L = L_pred + alpha * L_att(A, P) with on-the-fly pseudo-strong labels P."""

    name = "attention-self"
    description = "attention; L_pred + alpha * L_att(A, P), P from binarised X^a"

    def __init__(self, alpha: float = 1.0, attention_target: str = "normalized") -> None:
        self.alpha = alpha
        self.attention_target = attention_target

    def loss(self, output: ModelOutput, batch: Batch) -> LossTerms:
        pred = bce(output.clip_probs, batch.weak)
        pseudo = pseudo_strong_labels(output.segment_probs, batch.weak)
        att = attention_loss(output, pseudo, self.attention_target).mean()
        return LossTerms(pred + self.alpha * att, {"pred": pred, "att_self": att})


class StrongAndSelfSupervisedAttention(TrainingScheme):
    """Both attention terms: strong clips get L_att(A, Y) and L_att(A, P); weak-only clips get L_att(A, P)."""

    name = "attention-strong-self"
    description = "attention; L_pred + alpha * (L_att(A, Y) on strong clips + L_att(A, P))"

    def __init__(self, alpha: float = 1.0, attention_target: str = "normalized") -> None:
        self.alpha = alpha
        self.attention_target = attention_target

    def loss(self, output: ModelOutput, batch: Batch) -> LossTerms:
        pred = bce(output.clip_probs, batch.weak)
        pseudo = pseudo_strong_labels(output.segment_probs, batch.weak)
        att_self = attention_loss(output, pseudo, self.attention_target).mean()
        att_strong = masked_clip_mean(attention_loss(output, batch.strong, self.attention_target), batch.has_strong)
        total = pred + self.alpha * (att_strong + att_self)
        return LossTerms(total, {"pred": pred, "att_strong": att_strong, "att_self": att_self})
