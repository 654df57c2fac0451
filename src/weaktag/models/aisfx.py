"""A pretrained backbone that works offline: the aiSFX CNN (Ma & Lerch, ISMIR 2022), from its PyPI package.

The ``aisfx`` package (CC BY 4.0, copyright 2022 A. B. Ma and A. Lerch; install it with
``pip install --no-deps aisfx==0.1.2``) ships the weights of a 4-block CNN trained for sound-effects
retrieval: each block is two 3x3 convolutions with batch norm and ReLU, 64-128-256-512 channels,
2x2 max pooling after the first three. weaktag reads the weight file from the installed package
(without importing the package, whose own code needs librosa) and rebuilds the convolutional
part here; the package's classification layers are not used.

Front end (the package's ``inference.py``): 44.1 kHz, 2048-sample frames every 1024 samples, 96
HTK-mel bands from 0 to 22050 Hz with each band normalised to unit sum, power spectrum,
``log10(1 + 10000 mel)``, divided by 9.4578 (its fixed min-max range). Two differences from the
package, both so that chunked tagging of long files equals a whole-file pass: frames are not
centred, and the audio is not peak-normalised per file (a per-file gain would make features of
one chunk depend on another).

Time grid: three 2x2 pools make one output segment per 8 frames = 8192 samples (0.186 s).
Frequency is averaged after the last block, as the package does, leaving (B, 512, T).
Two options trade that for detection: ``time_stride`` 4 or 2 lets the last one or two pools
halve frequency only (the pretrained convolutions are unchanged, they see finer time steps),
and ``freq_pool="mean+max"`` keeps both the mean and the max over frequency (B, 1024, T).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..geometry import FrontEndSpec, TimeGrid
from .backbone import BackboneConfig

AISFX_FRONTEND = FrontEndSpec(sample_rate=44_100, window=2048, hop=1024, n_fft=2048, n_mels=96, f_min=0.0,
                              f_max=22_050.0, power=2.0, mel_norm="unit_sum", compression="log10_1p",
                              log_scale=10_000.0, scale=9.457798957824707)
AISFX_CHANNELS = (64, 128, 256, 512)
AISFX_TIME_STRIDES = (8, 4, 2)
AISFX_FREQ_POOLS = ("mean", "max", "mean+max")


def time_pools(stride: int) -> tuple[int, int, int]:
    """Time factors of the three pools for an output stride of ``stride`` frames (8: 2, 2, 2)."""
    if stride not in AISFX_TIME_STRIDES:
        raise ConfigError(f"the aisfx backbone's time stride must be one of {AISFX_TIME_STRIDES}, not {stride}")
    return {8: (2, 2, 2), 4: (2, 2, 1), 2: (2, 1, 1)}[stride]


def aisfx_grid(stride: int = 8) -> TimeGrid:
    """The time grid for ``stride`` frames per segment; the context is the receptive field beyond a
    segment: two 3x3 convolutions per block at the block's input step, plus each pool's window."""
    steps = [1]
    for pool in time_pools(stride):
        steps.append(steps[-1] * pool)
    context = sum(2 * step for step in steps) + sum((pool - 1) * step for pool, step in zip(time_pools(stride), steps))
    return TimeGrid(AISFX_FRONTEND, time_stride=stride, context_frames=context)


AISFX_GRID = aisfx_grid(8)
WEIGHTS_FILE = Path("models") / "checkpoint.pth"
INSTALL_HINT = "pip install --no-deps aisfx==0.1.2"
#: the licence of the packaged weights, and the attribution it asks every model built on them to carry
#: (each such model's card repeats it)
AISFX_LICENCE = "CC BY 4.0"
AISFX_ATTRIBUTION = ("aiSFX CNN weights (A. B. Ma and A. Lerch, \"Representation Learning for the Automatic Indexing "
                     "of Sound Effects Libraries\", ISMIR 2022), from the aisfx PyPI package, copyright 2022 "
                     "A. B. Ma and A. Lerch, CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); "
                     "https://github.com/alisonbma/aisfx. weaktag rebuilt its convolutional part, and trained "
                     "the layers after it (and, unless frozen, changed its weights).")


class ConvBlock(nn.Module):
    """Two 3x3 convolutions without bias, each followed by batch norm and ReLU (the package's ConvBlock)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x)))


def weights_path() -> Path:
    """The weight file inside the installed ``aisfx`` package (FileNotFoundError with the install line)."""
    spec = importlib.util.find_spec("aisfx")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the aisfx backbone needs the aisfx package: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: the aisfx package has no weight file (reinstall: {INSTALL_HINT})")
    return path


def load_aisfx_state() -> dict[str, torch.Tensor]:
    """The package's convolutional weights, renamed to this module's names, loaded safely.

    The file is a pickled ``(state_dict, datasets)`` pair whose dataset table holds numpy scalars;
    ``weights_only`` loading is kept, with numpy's scalar constructor (and dtypes) allowed, nothing else.
    """
    import numpy as np

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar
    path = weights_path()
    allowed = [(scalar, "numpy.core.multiarray.scalar"), np.dtype, *{type(np.dtype(t)) for t in ("i8", "f8", "i4")}]
    with torch.serialization.safe_globals(allowed):
        weights, _datasets = torch.load(path, map_location="cpu", weights_only=True)
    prefix = "embedding_net."
    return {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}


class AisfxBackbone(nn.Module):
    """Log-mel (B, frames, 96) on :data:`AISFX_FRONTEND` -> features (B, 512, frames // 8) (see the options above).

    ``config.pretrained`` loads the packaged weights (else random initialisation, as for a
    checkpoint that brings its own); ``config.width`` must stay 1 (the weights fix the sizes).
    """

    grid: ClassVar[TimeGrid] = AISFX_GRID  # the package's own layout
    packaged_weights: ClassVar[bool] = True  # its initial weights do not depend on the seed
    licence: ClassVar[str | None] = AISFX_LICENCE  # of the packaged weights
    attribution: ClassVar[str | None] = AISFX_ATTRIBUTION

    @classmethod
    def grid_for(cls, config: BackboneConfig) -> TimeGrid:
        """The grid of this backbone as ``config`` builds it (``time_stride`` 0 is the package's 8)."""
        return aisfx_grid(config.time_stride or AISFX_GRID.time_stride)

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        if config.width != 1.0:
            raise ConfigError(f"the aisfx backbone has fixed channel counts; model.width must be 1, not {config.width}")
        self.freq_pool = config.freq_pool or "mean"
        if self.freq_pool not in AISFX_FREQ_POOLS:
            raise ConfigError(f"the aisfx backbone's freq_pool must be one of {', '.join(AISFX_FREQ_POOLS)}, "
                             f"not {config.freq_pool!r}")
        self.config = config
        self.grid = self.grid_for(config)
        self.pools = [(t, 2) for t in time_pools(self.grid.time_stride)]
        channels = (1, *AISFX_CHANNELS)
        self.blocks = nn.ModuleList(ConvBlock(a, b) for a, b in zip(channels[:-1], channels[1:]))
        self.out_channels = AISFX_CHANNELS[-1] * (2 if self.freq_pool == "mean+max" else 1)
        if config.pretrained:
            state = load_aisfx_state()
            renamed = {f"blocks.{int(k.split('.')[0][-1]) - 1}.{k.split('.', 1)[1]}": v for k, v in state.items()}
            self.load_state_dict(renamed)

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        x = logmel.unsqueeze(1)  # (B, 1, T, F)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i < len(self.pools):
                x = F.max_pool2d(x, self.pools[i])
        if self.freq_pool == "mean":
            return x.mean(dim=3)  # (B, 512, T // stride)
        if self.freq_pool == "max":
            return x.amax(dim=3)
        return torch.cat([x.mean(dim=3), x.amax(dim=3)], dim=1)

    def freeze(self, blocks: int) -> list[nn.Module]:
        """Freeze the first ``blocks`` blocks (4: the whole backbone); returns the frozen modules."""
        frozen = list(self.blocks[:blocks])
        for module in frozen:
            module.requires_grad_(False)
        return frozen
