"""Backbones by name (``model.backbone`` in a config). Each class declares its ``grid`` (front end and
time resolution) and a ``freeze(n)`` method; everything else reads those declarations."""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from ..geometry import TimeGrid

from .aisfx import AisfxBackbone
from .backbone import BackboneConfig, VGGishBackbone
from .mobilenet import MobileNetV2Backbone


#: backbones by name (``model.backbone`` in a config); each class declares its ``grid`` and ``freeze``
BACKBONES: dict[str, type[nn.Module]] = {"vggish": VGGishBackbone, "aisfx": AisfxBackbone,
                                      "mobilenetv2": MobileNetV2Backbone}


def backbone_class(name: str) -> type[nn.Module]:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ConfigError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}") from None


def backbone_grid(config: BackboneConfig) -> TimeGrid:
    """The front end and time grid of the backbone ``config`` describes (without building it): its
    class's ``grid_for(config)`` where options change the grid, else its ``grid``."""
    cls = backbone_class(config.backbone)
    grid_for = getattr(cls, "grid_for", None)
    return grid_for(config) if grid_for is not None else cls.grid


def build_backbone(config: BackboneConfig) -> nn.Module:
    return backbone_class(config.backbone)(config)
