"""What every model returns: a small typed record instead of a tuple or a dict."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ModelOutput:
    """Predictions for a batch of B clips, C classes and T time segments.

    segment_probs: X^a, (B, C, T), segment-level class probabilities.
    clip_probs:    y-hat, (B, C), clip-level class probabilities.
    attention:     A, (B, C, T), sums to 1 over T for every class; None without attention.
    attention_raw: X^b, (B, C, T), the attention layer's output before normalisation.
    segment_logits: the logits of X^a (X^a = sigmoid of them), so that segment-level losses can be
                   computed from logits (stable under mixed precision); None where a model has none.

    Heads compute every field in float32, also under autocast: the attention normalisation and the
    losses on probabilities need its range.
    """

    segment_probs: torch.Tensor
    clip_probs: torch.Tensor
    attention: torch.Tensor | None = None
    attention_raw: torch.Tensor | None = None
    segment_logits: torch.Tensor | None = None

    @property
    def num_segments(self) -> int:
        return self.segment_probs.shape[-1]
