"""Heads that turn backbone features into segment and clip predictions (the paper's L8).

``AttentionHead``: L8-a, a 1x1 convolution with C filters and a sigmoid, gives the segment
class probabilities X^a; L8-b, a parallel 1x1 convolution with a sigmoid, gives X^b > 0.
A = X^b / sum_t X^b and the clip prediction is y = sum_t A_t * X^a_t.

We use a sigmoid for X^b (the paper only requires X^b > 0): it keeps X^b in (0, 1), so
the alternative attention loss on X^b itself (``attention_target="raw"``) is a proper
binary cross-entropy.

``MeanPoolHead``: L8-a only, clip prediction = mean of X^a over time (Table I rows 1-3).
"""

from __future__ import annotations

import torch
from torch import nn

from .output import ModelOutput

# Keeps A finite when every X^b of a class underflows to 0 (possible only in float16).
ATTENTION_EPS = 1e-7


def attention_pool(segment_probs: torch.Tensor, attention_raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, y): A = X^b / sum_t X^b over the last axis, y = sum_t A * X^a.

    The one definition of the pooling: the head uses it in training, and chunked inference
    re-pools stitched X^a / X^b of a whole recording with it (in float64 there).
    """
    attention = attention_raw / (attention_raw.sum(dim=-1, keepdim=True) + ATTENTION_EPS)
    return attention, (attention * segment_probs).sum(dim=-1)


class AttentionHead(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.segment = nn.Conv1d(in_channels, num_classes, kernel_size=1)  # L8-a
        self.attention = nn.Conv1d(in_channels, num_classes, kernel_size=1)  # L8-b

    def forward(self, features: torch.Tensor) -> ModelOutput:
        # float32 from the logits on: under bf16/fp16 autocast the convolutions run in half precision,
        # but A's normalisation over T and the losses on probabilities need float32's range
        logits = self.segment(features).float()
        xa = torch.sigmoid(logits)
        xb = torch.sigmoid(self.attention(features).float())
        att, clip = attention_pool(xa, xb)
        return ModelOutput(segment_probs=xa, clip_probs=clip, attention=att, attention_raw=xb, segment_logits=logits)


class MeanPoolHead(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.segment = nn.Conv1d(in_channels, num_classes, kernel_size=1)  # L8-a

    def forward(self, features: torch.Tensor) -> ModelOutput:
        logits = self.segment(features).float()  # float32, as in AttentionHead
        xa = torch.sigmoid(logits)
        return ModelOutput(segment_probs=xa, clip_probs=xa.mean(dim=-1), segment_logits=logits)
