"""Networks: backbones (each declares its front end and time grid; VGGish, pretrained aisfx) and heads."""

from .aisfx import AISFX_GRID, AisfxBackbone
from .backbone import TIME_STRIDE, BackboneConfig, VGGishBackbone, num_segments
from .heads import ATTENTION_EPS, AttentionHead, MeanPoolHead, attention_pool
from .mmnet import MICRO_HEADS, MMNetHead, micro_attention, mmnet_pool
from .neck import NeckConfig, TemporalNeck
from .network import HEADS, ModelConfig, WeakTagNet, pool_inputs, pool_recording
from .output import ModelOutput
from .registry import BACKBONES, backbone_class, backbone_grid, build_backbone

__all__ = [
    "AISFX_GRID",
    "ATTENTION_EPS",
    "BACKBONES",
    "HEADS",
    "MICRO_HEADS",
    "MMNetHead",
    "TIME_STRIDE",
    "AisfxBackbone",
    "AttentionHead",
    "BackboneConfig",
    "MeanPoolHead",
    "ModelConfig",
    "ModelOutput",
    "NeckConfig",
    "TemporalNeck",
    "VGGishBackbone",
    "WeakTagNet",
    "attention_pool",
    "micro_attention",
    "mmnet_pool",
    "backbone_class",
    "backbone_grid",
    "build_backbone",
    "num_segments",
    "pool_inputs",
    "pool_recording",
]
