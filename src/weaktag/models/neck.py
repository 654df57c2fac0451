"""An optional trainable neck between a backbone and the head: 1-D convolutions over time.

The paper trains L7 (a 3x1 convolution with 1024 filters) on top of the transferred VGGish layers;
the neck is that layer for a backbone without one (aisfx), and it is what a frozen backbone's
features need to become class evidence: a 1x1 head on frozen features is only a linear probe.
Each layer is a convolution over ``kernel`` segments, batch norm and ReLU, then dropout; its
reach in time widens the receptive field by ``kernel // 2`` segments per layer on each side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..settings import at_least, check_fields


@dataclass(frozen=True)
class NeckConfig:
    """The neck's settings, each range declared once here (field metadata; a config's ``model.neck_*``
    fields take these ranges: :data:`NECK_RANGES`)."""

    channels: int = field(default=0, metadata=at_least(0))  # 0: no neck, the head sits on the backbone's outputs
    layers: int = field(default=1, metadata=at_least(1))
    # segments; odd, so that output segment t is centred on input segment t
    kernel: int = field(default=3, metadata=at_least(1))
    # before every neck layer's output and before the head
    dropout: float = field(default=0.0, metadata={"min": 0.0, "max_exclusive": 1.0})

    def __post_init__(self) -> None:
        check_fields(self, "neck")
        if self.kernel % 2 == 0:
            raise ConfigError(f"a neck needs an odd kernel; got {self}")

    @property
    def context_segments(self) -> int:
        """Segments the neck looks beyond a segment on each side."""
        return self.layers * (self.kernel // 2) if self.channels else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: each NeckConfig field's metadata (its range), by name
NECK_RANGES = {f.name: f.metadata for f in fields(NeckConfig)}


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
