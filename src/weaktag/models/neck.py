"""An optional trainable neck between a backbone and the head: 1-D convolutions over time.

The paper trains L7 (a 3x1 convolution with 1024 filters) on top of the transferred VGGish layers;
the neck is that layer for a backbone without one (aisfx), and it is what a frozen backbone's
features need to become class evidence: a 1x1 head on frozen features is only a linear probe.
Each layer is a convolution over ``kernel`` segments, batch norm and ReLU, then dropout; its
reach in time widens the receptive field by ``kernel // 2`` segments per layer on each side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class NeckConfig:
    channels: int = 0  # 0: no neck, the head sits on the backbone's outputs
    layers: int = 1
    kernel: int = 3  # segments; odd, so that output segment t is centred on input segment t
    dropout: float = 0.0  # before every neck layer's output and before the head

    def __post_init__(self) -> None:
        if self.channels < 0 or self.layers < 1 or self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"a neck needs channels >= 0, layers >= 1 and an odd kernel >= 1; got {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout}")

    @property
    def context_segments(self) -> int:
        """Segments the neck looks beyond a segment on each side."""
        return self.layers * (self.kernel // 2) if self.channels else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TemporalNeck(nn.Module):
    """(B, in_channels, T) -> (B, out_channels, T); the identity (with dropout) when ``channels`` is 0."""

    def __init__(self, in_channels: int, config: NeckConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(config.layers if config.channels else 0):
            layers += [nn.Conv1d(channels, config.channels, config.kernel, padding=config.kernel // 2, bias=False),
                       nn.BatchNorm1d(config.channels), nn.ReLU(inplace=True)]
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
            channels = config.channels
        if not layers and config.dropout:
            layers.append(nn.Dropout(config.dropout))
        self.layers = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)
