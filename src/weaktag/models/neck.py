"""An optional trainable neck between a backbone and the head: convolutions, a BiGRU or a local transformer over time.

The paper trains L7 (a 3x1 convolution with 1024 filters) on top of the transferred VGGish layers;
the neck is that layer for a backbone without one (aisfx), and it is what a frozen backbone's
features need to become class evidence: a 1x1 head on frozen features is only a linear probe.
Every kind maps (B, in_channels, T) to (B, channels, T) on the backbone's segments, at any T.

* ``conv`` (default): each layer is a convolution over ``kernel`` segments, batch norm and ReLU,
  then dropout; it reaches ``kernel // 2`` segments further on each side per layer.
* ``gru``: a 1x1 projection to ``channels`` with batch norm and ReLU, then a bidirectional GRU of
  ``layers`` layers, ``channels // 2`` hidden units per direction (so ``channels`` must be even),
  dropout after the projection, between layers and before the head: the DCASE CRNN baseline's
  recurrent part (2 BiGRU layers), which there sits on a CNN's normalised outputs. The projection is
  there because a GRU straight on frozen 1024-d aisfx embeddings (mean 1.1, peaks near 11, not
  normalised) barely learned: 0.22 validation mAP after 10 epochs where the conv neck had 0.69.
* ``transformer``: a 1x1 projection to ``channels``, a depthwise convolution over
  :data:`POSITION_KERNEL` segments added to it as position information (as wav2vec 2.0's
  convolutional position embedding), then ``layers`` pre-norm encoder layers (``heads`` heads, a
  feed-forward of 2x ``channels``, dropout) whose self-attention is **local**: a segment attends
  only to segments at most ``window`` away. We chose relative (convolutional) positions and a window
  over absolute positions and global attention because both hold at any length: a model trained on
  10 s clips meets the same neighbourhoods in a 60 s file or an hour, and its reach stays bounded.

Reach and chunked tagging
-------------------------
:attr:`NeckConfig.context_segments` is what the neck adds to the backbone's receptive field
(:attr:`weaktag.geometry.TimeGrid.context_frames`), hence the context each chunk of a long file
gets (:func:`weaktag.inference.settings.chunk_plan`). For ``conv`` it is exact, ``layers * (kernel // 2)``;
for ``transformer`` too, ``POSITION_KERNEL // 2 + layers * window``: chunked outputs equal a
whole-file pass up to float32 rounding (measured 1.2e-7 with a trained transformer neck on a 278 s
file, 2.5 to 30.72 s chunks). A GRU's reach is the whole recording, so its context is declared:
``gru_context`` segments (default 64, about one 10 s training clip, so every kept segment sees at
least as much audio on each side as in training); what the GRU state keeps from further away is
lost at chunk edges. That is not small for a trained GRU: with the recommended recipe's 2-layer,
256-channel GRU neck (trained on the soundscapes v2 10 s clips, seed 0), 30.72 s chunks of 300 s of
joined validation clips differed from a whole-file pass by up to 0.077 in X^a and 0.007 in clip
probabilities with the declared context (13 s), 0.013 / 0.002 with 36 s and 0.005 / 0.001 with 72 s
(``TaggingConfig.context_seconds``, ``weaktag tag --context-seconds``;
``benchmarks/chunk_tolerance.py``, ``benchmarks/results/chunk_tolerance-recommended-gru.md``).
A whole-file pass is no truer: the model never saw more than a clip. Chunked tagging of a GRU neck
is therefore approximate; a random GRU forgets fast and meets 1e-3 (``tests/unit/models/test_necks.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..settings import at_least, check_fields, choices

NECK_KINDS = ("conv", "gru", "transformer")
POSITION_KERNEL = 7  # segments of the transformer's depthwise position convolution (odd: centred)
FEED_FORWARD_FACTOR = 2  # the transformer's feed-forward width, times its channels (small data: 2x, not 4x)


@dataclass(frozen=True)
class NeckConfig:
    """The neck's settings, each range declared once here (field metadata; a config's ``model.neck_*``
    fields take these ranges: :data:`NECK_RANGES`)."""

    channels: int = field(default=0, metadata=at_least(0))  # 0: no neck, the head sits on the backbone's outputs
    layers: int = field(default=1, metadata=at_least(1))
    # conv: segments; odd, so that output segment t is centred on input segment t
    kernel: int = field(default=3, metadata=at_least(1))
    # conv: before every neck layer's output and before the head; gru: between layers and before the
    # head; transformer: on attention, feed-forward and before the head
    dropout: float = field(default=0.0, metadata={"min": 0.0, "max_exclusive": 1.0})
    # last, so that configs and checkpoints written before sequence necks (positional or without it) are conv
    kind: str = field(default="conv", metadata=choices(*NECK_KINDS))
    heads: int = field(default=4, metadata=at_least(1))  # transformer: attention heads (channels divisible by them)
    window: int = field(default=16, metadata=at_least(1))  # transformer: segments a segment attends to on each side
    gru_context: int = field(default=64, metadata=at_least(1))  # gru: chunk context on each side, in segments

    def __post_init__(self) -> None:
        check_fields(self, "neck")
        if self.kind == "conv" and self.kernel % 2 == 0:
            self._fail("kernel", f"a neck needs an odd kernel; got {self.kernel}")
        if self.kind != "conv" and not self.channels:
            self._fail("channels", f"a {self.kind} neck needs channels (above 0)")
        if self.kind == "gru" and self.channels % 2:
            self._fail("channels", f"a gru neck needs an even number of channels (half per direction); got "
                                   f"{self.channels}")
        if self.kind == "transformer" and self.channels % self.heads:
            self._fail("heads", f"a transformer neck's channels ({self.channels}) must be a multiple of its "
                                f"heads ({self.heads})")

    @staticmethod
    def _fail(name: str, problem: str) -> None:
        raise ConfigError(f"neck.{name}: {problem}", key=name, problem=problem)

    @property
    def context_segments(self) -> int:
        """Segments the neck looks beyond a segment on each side (declared for a GRU: see the module doc)."""
        if not self.channels:
            return 0
        if self.kind == "gru":
            return self.gru_context
        if self.kind == "transformer":
            return POSITION_KERNEL // 2 + self.layers * self.window
        return self.layers * (self.kernel // 2)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: each NeckConfig field's metadata (its range), by name
NECK_RANGES = {f.name: f.metadata for f in fields(NeckConfig)}


class TemporalNeck(nn.Module):
    """The conv neck: (B, in_channels, T) -> (B, out_channels, T); the identity (with dropout) when
    ``channels`` is 0."""

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


class GRUNeck(nn.Module):
    """The gru neck: a bidirectional GRU over segments, (B, in_channels, T) -> (B, channels, T)."""

    def __init__(self, in_channels: int, config: NeckConfig) -> None:
        super().__init__()
        # per segment, so that chunking stays as exact as the GRU itself allows
        self.project = nn.Sequential(nn.Conv1d(in_channels, config.channels, 1, bias=False),
                                     nn.BatchNorm1d(config.channels), nn.ReLU(inplace=True),
                                     nn.Dropout(config.dropout))
        self.gru = nn.GRU(config.channels, config.channels // 2, num_layers=config.layers, batch_first=True,
                          bidirectional=True, dropout=config.dropout if config.layers > 1 else 0.0)
        self.dropout = nn.Dropout(config.dropout)
        self.out_channels = config.channels

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.project(features).transpose(1, 2))  # (B, T, channels)
        return self.dropout(out).transpose(1, 2)


def local_attention_mask(length: int | torch.Tensor, window: int, device: torch.device) -> torch.Tensor:
    """(T, T) additive mask: 0 where two segments are at most ``window`` apart, -inf elsewhere."""
    index = torch.arange(length, device=device)
    far = (index[None, :] - index[:, None]).abs() > window
    return torch.zeros(far.shape, device=device).masked_fill(far, float("-inf"))


class LocalEncoderLayer(nn.Module):
    """A pre-norm transformer encoder layer on (B, T, channels) with an additive attention mask."""

    def __init__(self, channels: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm_attention = nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out = nn.Linear(channels, channels)
        self.norm_feed_forward = nn.LayerNorm(channels)
        self.feed_forward = nn.Sequential(nn.Linear(channels, FEED_FORWARD_FACTOR * channels), nn.GELU(),
                                          nn.Dropout(dropout), nn.Linear(FEED_FORWARD_FACTOR * channels, channels))
        self.dropout = nn.Dropout(dropout)

    def attend(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # written out (not nn.MultiheadAttention) so that the exported graph is the same computation
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / math.sqrt(c // self.heads) + mask  # (B, heads, T, T)
        weights = self.dropout(scores.softmax(dim=-1))
        return self.out((weights @ v).transpose(1, 2).reshape(b, t, c))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attend(self.norm_attention(x), mask))
        return x + self.dropout(self.feed_forward(self.norm_feed_forward(x)))


class TransformerNeck(nn.Module):
    """The transformer neck: projection, convolutional positions, local self-attention layers (module doc)."""

    def __init__(self, in_channels: int, config: NeckConfig) -> None:
        super().__init__()
        channels = config.channels
        self.window = config.window
        self.project = nn.Conv1d(in_channels, channels, 1)
        self.position = nn.Conv1d(channels, channels, POSITION_KERNEL, padding=POSITION_KERNEL // 2, groups=channels)
        self.encoder = nn.ModuleList(LocalEncoderLayer(channels, config.heads, config.dropout)
                                     for _ in range(config.layers))
        self.norm = nn.LayerNorm(channels)
        self.dropout = nn.Dropout(config.dropout)
        self.out_channels = channels

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.project(features)
        x = (x + nn.functional.gelu(self.position(x))).transpose(1, 2)  # (B, T, channels)
        mask = local_attention_mask(x.shape[1], self.window, x.device)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.dropout(self.norm(x)).transpose(1, 2)


NECKS: dict[str, type[nn.Module]] = {"conv": TemporalNeck, "gru": GRUNeck, "transformer": TransformerNeck}


def build_neck(in_channels: int, config: NeckConfig) -> nn.Module:
    """The neck ``config`` describes on ``in_channels`` backbone channels; its ``out_channels`` feed the head."""
    return NECKS[config.kind](in_channels, config)
