"""Networks: the VGGish-based backbone and the attention / pooling heads."""

from .backbone import TIME_STRIDE, BackboneConfig, VGGishBackbone, num_segments
from .network import ModelConfig, WeakTagNet, segment_duration
from .output import ModelOutput

__all__ = [
    "TIME_STRIDE",
    "BackboneConfig",
    "ModelConfig",
    "ModelOutput",
    "VGGishBackbone",
    "WeakTagNet",
    "num_segments",
    "segment_duration",
]
