"""The full network of Kim & Ghaffarzadegan (2019), Fig. 1: front end, backbone (L1-L7), L8 head."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
from torch import nn

from ..audio import LogMel
from ..geometry import TimeGrid
from .backbone import BackboneConfig
from .registry import backbone_grid, build_backbone
from .heads import HEADS, head_class
from . import mmnet  # noqa: F401  (registers the M&mnet heads)
from .neck import NeckConfig, build_neck
from .output import ModelOutput


@dataclass(frozen=True)
class ModelConfig:
    """What a network is: its classes, its head (attention or mean pooling), its backbone and neck."""

    num_classes: int
    attention: bool = True  # the head has an attention output (HEADS: attention, mmnet, mmnet-ms) or pools
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    neck: NeckConfig = field(default_factory=NeckConfig)
    # the head, one of HEADS; None: "attention" or "mean" from ``attention`` (configs and checkpoints
    # written before M&mnet store only ``attention``)
    head: str | None = None
    ensemble_weight: float = 0.5  # M&mnet heads: mu of the ensemble prediction (1: no EP)
    # M&mnet heads' sizes; the defaults are those of checkpoints written before they were settings
    micro_heads: int = 4  # M, f_att's attention maps (0: the channels of the head input)
    micro_hidden: int = 256  # hidden units of f_det (0: one linear layer)
    macro_layers: int = 0  # hidden layers of f_cls (1024 units, batch norm, ReLU)

    def __post_init__(self) -> None:
        head = self.head or ("attention" if self.attention else "mean")
        cls = head_class(head)
        object.__setattr__(self, "head", head)  # frozen: normalised once, here
        object.__setattr__(self, "attention", cls.has_attention)

    @property
    def grid(self) -> TimeGrid:
        """The network's front end, time resolution and receptive field (backbone and neck), known
        without building it."""
        grid = backbone_grid(self.backbone)
        extra = self.neck.context_segments * grid.time_stride
        return replace(grid, context_frames=grid.context_frames + extra) if extra else grid

    def to_dict(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "attention": self.attention, "backbone": self.backbone.to_dict(),
                "neck": self.neck.to_dict(), "head": self.head, "ensemble_weight": self.ensemble_weight,
                "micro_heads": self.micro_heads, "micro_hidden": self.micro_hidden, "macro_layers": self.macro_layers}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ModelConfig":
        """Also reads checkpoints written before backbones were pluggable (flat width, l7_channels, ...)."""
        values = dict(values)
        backbone = values.pop("backbone", None)
        if not isinstance(backbone, dict):  # the flat layout: backbone fields beside num_classes
            names = {f.name for f in fields(BackboneConfig)}
            backbone = {k: values.pop(k) for k in list(values) if k in names}
        neck = NeckConfig(**values.pop("neck", {}))
        return cls(values.pop("num_classes"), values.pop("attention", True), BackboneConfig(**backbone), neck,
                   **values)


def pool_inputs(config: ModelConfig, output: ModelOutput) -> torch.Tensor | None:
    """The per-segment outputs besides X^a that ``config``'s head pools over time, (B, rows, T): X^b
    (attention), the macro logits and f_att's logits stacked on the row axis (C + M rows; M&mnet), or
    None (mean pooling); each head's :meth:`~weaktag.models.heads.Head.pool_inputs`. Chunked tagging
    stitches these and re-pools them with :func:`pool_recording`."""
    return HEADS[config.head].pool_inputs(output)


def pool_recording(config: ModelConfig, segment_probs: torch.Tensor, inputs: torch.Tensor | None
                   ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(clip probabilities, attention, attention_raw) over the last axis from X^a and :func:`pool_inputs`:
    the same pooling as the head's, for outputs stitched from chunks of one recording."""
    if inputs is None:
        return segment_probs.mean(dim=-1), None, None
    return HEADS[config.head].pool_recording(config, segment_probs, inputs)


class WeakTagNet(nn.Module):
    """Waveform or log-mel in, :class:`ModelOutput` out. Any length in time (a sequence neck too)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone)
        self.grid: TimeGrid = config.grid
        self.frontend = LogMel(self.grid.frontend)
        self.neck = build_neck(self.backbone.out_channels, config.neck)
        self.head = HEADS[config.head].from_config(self.neck.out_channels, config)

    @property
    def has_attention(self) -> bool:
        return self.config.attention

    def train(self, mode: bool = True) -> "WeakTagNet":
        """Also keeps frozen batch-norm layers in eval mode: a frozen layer keeps its running statistics."""
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                    p.requires_grad for p in module.parameters()):
                module.eval()
        return self

    def embed(self, logmel: torch.Tensor) -> torch.Tensor:
        """The backbone's outputs for logmel (B, frames, mel bands); inputs shorter than one segment are
        padded with silence."""
        stride = self.grid.time_stride
        if logmel.shape[1] < stride:
            pad = logmel.new_full((logmel.shape[0], stride - logmel.shape[1], logmel.shape[2]),
                                  self.grid.frontend.silence)
            logmel = torch.cat([logmel, pad], dim=1)
        return self.backbone(logmel)

    def forward_features(self, logmel: torch.Tensor) -> ModelOutput:
        """logmel: (B, frames, mel bands). Inputs shorter than one segment are padded with silence."""
        return self.head(self.neck(self.embed(logmel)))

    def forward_level(self, features: torch.Tensor, level: str) -> ModelOutput:
        """Outputs from log-mel (``level="logmel"``) or from precomputed backbone outputs (``"backbone"``)."""
        return self.head(self.neck(features)) if level == "backbone" else self.forward_features(features)

    def forward(self, waveform: torch.Tensor) -> ModelOutput:
        """waveform: (B, N) mono float32 at the front end's sample rate."""
        return self.forward_features(self.frontend(waveform))
