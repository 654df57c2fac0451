"""Networks: backbones (each declares its front end and time grid; VGGish, pretrained aisfx), necks and heads
(each registered by name: :data:`BACKBONES`, :data:`HEADS`)."""

from .aisfx import AISFX_GRID, AisfxBackbone
from .backbone import TIME_STRIDE, BackboneConfig, VGGishBackbone, num_segments
from .heads import ATTENTION_EPS, HEADS, AttentionHead, Head, MeanPoolHead, attention_pool, head_class, register_head
from .mmnet import MICRO_HEADS, MMNetClasswiseHead, MMNetHead, MMNetMultiScaleHead, micro_attention, mmnet_pool
from .neck import NECK_KINDS, NECK_RANGES, GRUNeck, NeckConfig, TemporalNeck, TransformerNeck, build_neck
from .network import ModelConfig, WeakTagNet, pool_inputs, pool_recording
from .output import ModelOutput
from .registry import BACKBONES, backbone_class, backbone_grid, build_backbone

__all__ = [
    "AISFX_GRID",
    "ATTENTION_EPS",
    "BACKBONES",
    "HEADS",
    "MICRO_HEADS",
    "MMNetClasswiseHead",
    "NECK_KINDS",
    "NECK_RANGES",
    "MMNetHead",
    "MMNetMultiScaleHead",
    "Head",
    "TIME_STRIDE",
    "AisfxBackbone",
    "AttentionHead",
    "BackboneConfig",
    "MeanPoolHead",
    "ModelConfig",
    "ModelOutput",
    "NeckConfig",
    "TemporalNeck",
    "TransformerNeck",
    "GRUNeck",
    "VGGishBackbone",
    "WeakTagNet",
    "attention_pool",
    "head_class",
    "register_head",
    "micro_attention",
    "mmnet_pool",
    "backbone_class",
    "backbone_grid",
    "build_backbone",
    "build_neck",
    "num_segments",
    "pool_inputs",
    "pool_recording",
]
