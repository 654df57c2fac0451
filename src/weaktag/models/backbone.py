"""The VGGish convolutional stack (the paper's L1-L6) and the L7 layer, with a width factor.

VGGish: 64-M-128-M-256-256-M-512-512-M, 3x3 convolutions (padding 1) with ReLU, 2x2 max
pooling. A 998x64 log-mel input leaves 512 x 62 (time) x 4 (frequency).

L7 is not specified in the paper beyond its position. We use a (3 time x 1 frequency)
convolution with 1024 filters followed by a max over the 4 remaining frequency bins. With
527 classes this gives 6.6M parameters without attention and 7.2M with it, close to the
6.7M / 7.3M of the paper's Table II; the frequency collapse is a max so that a
narrow-band event is not diluted by empty bands (``freq_pool="mean"`` is the alternative).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Optional

import torch
from torch import nn

from ..errors import ConfigError
from ..geometry import VGGISH_GRID, TimeGrid

# (out_channels or "M") in VGGish order; the module names below match the PyTorch port's
# ``features.<index>`` numbering so that its state dict loads by name.
VGGISH_LAYOUT: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")
FREQ_POOLS = ("max", "mean", "mean+max")  # mean+max: both, concatenated (twice the channels)
TIME_STRIDE = VGGISH_GRID.time_stride  # four 2x2 max-pools: one output segment per 16 input frames


@dataclass(frozen=True)
class BackboneConfig:
    """The architecture of a backbone: which one (a :data:`BACKBONES` name) and its size."""

    backbone: str = "vggish"
    width: float = 1.0  # channel multiplier; 1.0 is the paper's size
    l7_channels: int = 1024
    # over the frequency bins left at the end; None: the backbone's own (VGGish L7: max, aisfx: mean)
    freq_pool: Optional[str] = field(default=None, metadata={"choices": FREQ_POOLS})
    # Batch norm after every convolution. VGGish has none (and its weights assume none), so the
    # paper-size default is off; narrow models trained from scratch on a CPU converge in far
    # fewer epochs with it, which is why the CPU recipes turn it on.
    batch_norm: bool = False
    # load the weights a pretrained backbone ships with (aisfx); off when a checkpoint brings its own
    pretrained: bool = True
    # frames per output segment; 0: the backbone's own (VGGish 16, aisfx 8). aisfx also takes 4 and 2:
    # its later pools then halve frequency only, for events finer than 0.19 s
    time_stride: int = 0

    def channels(self, base: int) -> int:
        return max(1, int(round(base * self.width)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class VGGishBackbone(nn.Module):
    """Log-mel (B, frames, 64) -> features (B, channels, T) with T = frames // 16.

    Declares its front end and time resolution in :attr:`grid` (VGGish's 16 kHz, 64-band
    log-mel; one output segment per 16 frames); callers derive every time index from it.
    """

    grid: ClassVar[TimeGrid] = VGGISH_GRID

    @classmethod
    def grid_for(cls, config: BackboneConfig) -> TimeGrid:
        """The grid of this backbone as ``config`` builds it (VGGish has one)."""
        if config.time_stride not in (0, TIME_STRIDE):
            raise ConfigError(f"the vggish backbone's time stride is {TIME_STRIDE} frames, not {config.time_stride}")
        return cls.grid
    packaged_weights: ClassVar[bool] = False  # random initialisation: a frozen VGGish depends on the seed
    licence: ClassVar[str | None] = None  # no packaged weights: nothing to attribute
    attribution: ClassVar[str | None] = None

    def __init__(self, config: BackboneConfig = BackboneConfig()) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        in_ch = 1
        for item in VGGISH_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                out_ch = config.channels(int(item))
                layers += [nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)]
                if config.batch_norm:
                    layers.append(nn.BatchNorm2d(out_ch))
                layers.append(nn.ReLU(inplace=True))
                in_ch = out_ch
        self.features = nn.Sequential(*layers)  # L1-L6
        self.out_channels = config.channels(config.l7_channels)
        l7: list[nn.Module] = [nn.Conv2d(in_ch, self.out_channels, kernel_size=(3, 1), padding=(1, 0))]
        if config.batch_norm:
            l7.append(nn.BatchNorm2d(self.out_channels))
        self.l7 = nn.Sequential(*l7, nn.ReLU(inplace=True))
        if config.freq_pool not in (None, "max", "mean"):
            raise ConfigError(f"the vggish backbone's freq_pool must be 'max' or 'mean', not {config.freq_pool!r}")
        self.grid_for(config)  # checks the time stride
        # He initialisation, as VGG implementations use: PyTorch's default shrinks the
        # signal through seven ReLU layers until every clip gets the same prediction.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def freeze(self, layers: int) -> list[nn.Module]:
        """Freeze the first ``layers`` convolutions (the paper froze 3 for AudioSet); returns them."""
        convs = [m for m in self.modules() if isinstance(m, nn.Conv2d)][:layers]
        for conv in convs:
            conv.requires_grad_(False)
        return convs

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        x = self.features(logmel.unsqueeze(1))  # (B, C, T, F)
        x = self.l7(x)
        return x.mean(dim=3) if self.config.freq_pool == "mean" else x.amax(dim=3)


def num_segments(frames: int) -> int:
    """Output segments T of the VGGish grid for ``frames`` log-mel frames (floor at each pool)."""
    return VGGISH_GRID.num_segments(frames)
