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
    """

    segment_probs: torch.Tensor
    clip_probs: torch.Tensor
    attention: torch.Tensor | None = None
    attention_raw: torch.Tensor | None = None

    @property
    def num_segments(self) -> int:
        return self.segment_probs.shape[-1]
