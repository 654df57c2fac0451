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

    M&mnet heads (:mod:`weaktag.models.mmnet`) also give, None elsewhere:
    macro_probs:   the macro subnet's clip prediction y-hat, (B, C) (``clip_probs`` is the ensemble).
    macro_logits:  its per-segment logits, (B, C, T): y-hat = sigmoid(mean_t of them).
    micro_logits:  f_att's attention logits v, (B, M, T): a_t = sum_m softmax_t(v_t,m) (class-wise:
                   (B, C * M, T), one a per class).
    micro_levels:  per micro subnet, (d-hat logits (B, C, T_l), a / M (B, T_l), or (B, C, T_l) class-wise):
                   the micro loss's weights, summing to 1 over time; level 0 is the one whose d-hat and a
                   are ``segment_probs`` and ``attention_raw``; M&mnet-MS adds its pyramid's levels in
                   training mode.

    Heads compute every field in float32, also under autocast: the attention normalisation and the
    losses on probabilities need its range.
    """

    segment_probs: torch.Tensor
    clip_probs: torch.Tensor
    attention: torch.Tensor | None = None
    attention_raw: torch.Tensor | None = None
    segment_logits: torch.Tensor | None = None
    macro_probs: torch.Tensor | None = None
    macro_logits: torch.Tensor | None = None
    micro_logits: torch.Tensor | None = None
    micro_levels: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    @property
    def num_segments(self) -> int:
        return self.segment_probs.shape[-1]
