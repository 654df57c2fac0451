"""The full network of Kim & Ghaffarzadegan (2019), Fig. 1: front end, L1-L7, L8 head."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..audio import HOP, LOG_OFFSET, SAMPLE_RATE, LogMel
from .backbone import TIME_STRIDE, BackboneConfig, VGGishBackbone
from .heads import AttentionHead, MeanPoolHead
from .output import ModelOutput


@dataclass(frozen=True)
class ModelConfig:
    num_classes: int
    attention: bool = True  # L8-b present (Table I rows 4-6) or mean pooling (rows 1-3)
    width: float = 1.0
    l7_channels: int = 1024
    freq_pool: str = "max"
    batch_norm: bool = False  # see BackboneConfig.batch_norm

    def to_dict(self) -> dict:
        return asdict(self)


class WeakTagNet(nn.Module):
    """Waveform or log-mel in, :class:`ModelOutput` out. Fully convolutional in time."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.frontend = LogMel()
        self.backbone = VGGishBackbone(BackboneConfig(config.width, config.l7_channels, config.freq_pool, config.batch_norm))
        head_cls = AttentionHead if config.attention else MeanPoolHead
        self.head = head_cls(self.backbone.out_channels, config.num_classes)

    def forward_features(self, logmel: torch.Tensor) -> ModelOutput:
        """logmel: (B, frames, 64). Inputs shorter than one segment are padded with silence."""
        if logmel.shape[1] < TIME_STRIDE:
            pad = logmel.new_full((logmel.shape[0], TIME_STRIDE - logmel.shape[1], logmel.shape[2]), math.log(LOG_OFFSET))
            logmel = torch.cat([logmel, pad], dim=1)
        return self.head(self.backbone(logmel))

    def forward(self, waveform: torch.Tensor) -> ModelOutput:
        """waveform: (B, N) mono float32 at 16 kHz."""
        return self.forward_features(self.frontend(waveform))


def segment_duration() -> float:
    """Seconds between the starts of consecutive output segments (16 frames x 10 ms = 0.16 s)."""
    return TIME_STRIDE * HOP / SAMPLE_RATE
