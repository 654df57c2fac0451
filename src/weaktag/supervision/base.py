"""What a training scheme is: a named object that turns model outputs and labels into a loss.

Conventions shared by every scheme (the paper is ambiguous on both, so we choose and say so):

* Binary cross-entropy is ``BCE(prediction, target)``: the paper's formulas write
  ``y-hat log y + (1 - y-hat) log(1 - y)``, with prediction and target swapped, which
  is undefined for binary targets; we read it as the standard BCE.
* Reduction is the mean over every element (classes, and segments for segment-level
  terms), then over the batch. The paper writes sums; with sums the attention term
  would outweigh the clip term by a factor T (62 for 10 s), and the paper's alpha = 1
  was tuned for a balance we cannot see. Means keep alpha = 1 meaning "equal weight".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..models import ModelOutput

_CLAMP = 1e-7  # keeps log() finite for probabilities at exactly 0 or 1


@dataclass
class Batch:
    """A training batch. ``strong`` rows of clips without strong labels are zeros and
    must be ignored: ``has_strong`` says which rows are real."""

    features: torch.Tensor  # (B, frames, 64) log-mel
    weak: torch.Tensor  # (B, C) in {0, 1}
    strong: torch.Tensor  # (B, C, T) in {0, 1}
    has_strong: torch.Tensor  # (B,) bool
    clip_ids: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.features.shape[0]


@dataclass
class LossTerms:
    """The total loss and its named parts (logged separately)."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor]


def bce(prediction: torch.Tensor, target: torch.Tensor, reduce_dims: tuple[int, ...] | None = None) -> torch.Tensor:
    """Binary cross-entropy on probabilities; mean over ``reduce_dims`` (all when None).

    Computed in float32 with clamping because the attention A can be tiny but not 0.
    """
    p = prediction.float().clamp(_CLAMP, 1 - _CLAMP)
    loss = F.binary_cross_entropy(p, target.float(), reduction="none")
    return loss.mean() if reduce_dims is None else loss.mean(dim=reduce_dims)


def masked_clip_mean(per_clip: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the clips where ``mask`` is true; 0 (with gradient graph) when none is."""
    mask = mask.to(per_clip.dtype)
    return (per_clip * mask).sum() / mask.sum().clamp(min=1.0)


class TrainingScheme(ABC):
    """One row of the paper's Table I (or a peer method): its model head and its loss."""

    name: str = ""
    uses_attention: bool = True  # the model needs L8-b
    needs_strong: bool = False  # cannot train without some strongly labelled clips
    description: str = ""

    @abstractmethod
    def loss(self, output: ModelOutput, batch: Batch) -> LossTerms: ...

    def clip_scores(self, output: ModelOutput) -> torch.Tensor:
        """Clip-level scores used for evaluation (the head's prediction by default)."""
        return output.clip_probs
