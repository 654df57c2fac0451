"""MACs and parameters (weaktag.models.cost) against hand counts."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from weaktag.models import ModelConfig, WeakTagNet
from weaktag.models.backbone import BackboneConfig
from weaktag.models.cost import count_macs, macs_per_audio, parameter_count


def test_macs_of_a_convolution_and_a_linear_layer_by_hand() -> None:
    net = nn.Sequential(nn.Conv1d(2, 3, kernel_size=3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 8, 4))
    conv = 3 * 2 * 3 * 8  # out channels x in channels x kernel x output length
    linear = 24 * 4
    assert count_macs(net, torch.zeros(1, 2, 10)) == conv + linear
    assert count_macs(net, torch.zeros(5, 2, 10)) == 5 * (conv + linear)  # per clip times the batch
    assert net.training  # the mode is restored
    assert parameter_count(net) == (3 * 2 * 3 + 3) + (24 * 4 + 4)


def test_a_models_macs_grow_with_the_audio_and_its_width() -> None:
    narrow = WeakTagNet(ModelConfig(17, backbone=BackboneConfig(width=0.125)))
    wider = WeakTagNet(ModelConfig(17, backbone=BackboneConfig(width=0.25)))
    ten, twenty = macs_per_audio(narrow, 10.0), macs_per_audio(narrow, 20.0)
    assert twenty == pytest.approx(2 * ten, rel=0.05)  # convolutions over time: linear in length
    assert macs_per_audio(wider, 10.0) > 2 * ten  # most layers go as width squared


@pytest.mark.skipif(importlib.util.find_spec("aisfx") is None,
                    reason="the aisfx package is not installed (pip install --no-deps aisfx==0.1.2)")
def test_the_recommended_network_costs_more_than_the_narrow_one() -> None:
    from weaktag.config import load_config

    model = load_config("recommended", []).model
    net = WeakTagNet(ModelConfig(21, True, model.backbone_config(), model.neck_config()))
    narrow = WeakTagNet(ModelConfig(21, backbone=BackboneConfig(width=0.125)))
    assert macs_per_audio(net) > 10 * macs_per_audio(narrow)
