"""A MobileNetV2-style back-end (Sandler et al. 2018) on VGGish's log-mel: the student network PSL
(Dinkel et al. 2022) trains, here on weaktag's time grid.

Inverted residual blocks (1x1 expansion, 3x3 depthwise, 1x1 linear projection; a skip connection
when shape allows) with batch norm and ReLU6, the original's stage layout cut after the 96-channel
stage; four stride-2 steps (the stem and three stages) give one output segment per 16 frames, the
grid of :data:`~weaktag.geometry.VGGISH_GRID`, so labels, events and chunked tagging work as for
VGGish. ``model.width`` scales every stage; ``model.l7_channels`` is the last 1x1 convolution's width.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import torch
from torch import nn

from ..errors import ConfigError
from ..geometry import VGGISH_GRID, TimeGrid
from .backbone import BackboneConfig

# (expansion t, channels c, repeats n, first stride s), as in MobileNetV2's Table 2 up to the 96 stage
STAGES: tuple[tuple[int, int, int, int], ...] = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                                                 (6, 96, 3, 1))
TIME_STRIDE = VGGISH_GRID.time_stride
# how far the receptive field reaches beyond a segment: each 3x3 convolution adds its input's frame
# spacing: stem 1, stage 1: 2, stage 2: 2 + 4, stage 3: 4 + 8 + 8, stage 4: 8 + 3 * 16, stage 5: 3 * 16
CONTEXT_FRAMES = 1 + 2 + (2 + 4) + (4 + 8 + 8) + (8 + 3 * 16) + 3 * 16
MOBILENET_GRID = replace(VGGISH_GRID, context_frames=CONTEXT_FRAMES)


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        layers = [] if expansion == 1 else [_conv_bn(cin, hidden, 1)]
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden), _conv_bn(hidden, cout, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.skip else self.block(x)


class MobileNetV2Backbone(nn.Module):
    """Log-mel (B, frames, 64) -> features (B, channels, T) with T = frames // 16 (VGGish's grid)."""

    grid: ClassVar[TimeGrid] = MOBILENET_GRID
    packaged_weights: ClassVar[bool] = False
    licence: ClassVar[str | None] = None  # no packaged weights: nothing to attribute
    attribution: ClassVar[str | None] = None

    @classmethod
    def grid_for(cls, config: BackboneConfig) -> TimeGrid:
        if config.time_stride not in (0, TIME_STRIDE):
            raise ConfigError(f"the mobilenetv2 backbone's time stride is {TIME_STRIDE} frames, "
                             f"not {config.time_stride}")
        return cls.grid

    def __init__(self, config: BackboneConfig = BackboneConfig()) -> None:
        super().__init__()
        if config.freq_pool not in (None, "max", "mean"):
            raise ConfigError(f"the mobilenetv2 backbone's freq_pool must be 'max' or 'mean', not {config.freq_pool!r}")
        self.grid_for(config)
        self.config = config
        cin = config.channels(32)
        blocks: list[nn.Module] = [_conv_bn(1, cin, 3, 2)]
        for t, c, n, s in STAGES:
            cout = config.channels(c)
            for i in range(n):
                blocks.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = config.channels(config.l7_channels)
        self.head = _conv_bn(cin, self.out_channels, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")

    def freeze(self, blocks: int) -> list[nn.Module]:
        """Freeze the first ``blocks`` blocks (the stem is block 1); returns them."""
        frozen = list(self.blocks)[:blocks]
        for block in frozen:
            block.requires_grad_(False)
        return frozen

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        frames = logmel.shape[1]
        usable = (frames // TIME_STRIDE) * TIME_STRIDE  # a partial last segment is dropped, as VGGish's pools do
        x = self.head(self.blocks(logmel[:, :usable].unsqueeze(1)))  # (B, C, T, F)
        return x.mean(dim=3) if self.config.freq_pool == "mean" else x.amax(dim=3)
