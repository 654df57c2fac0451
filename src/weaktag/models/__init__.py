"""Networks: backbones (each declares its front end and time grid) and the attention / pooling heads."""

from .backbone import BACKBONES, TIME_STRIDE, BackboneConfig, VGGishBackbone, backbone_class, build_backbone, num_segments
from .heads import ATTENTION_EPS, AttentionHead, MeanPoolHead, attention_pool
from .network import ModelConfig, WeakTagNet
from .output import ModelOutput

__all__ = [
    "ATTENTION_EPS",
    "BACKBONES",
    "TIME_STRIDE",
    "AttentionHead",
    "BackboneConfig",
    "MeanPoolHead",
    "ModelConfig",
    "ModelOutput",
    "VGGishBackbone",
    "WeakTagNet",
    "attention_pool",
    "backbone_class",
    "build_backbone",
    "num_segments",
]
