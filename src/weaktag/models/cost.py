"""What a network costs to run: multiply-accumulates (MACs) and parameters, as DCASE Task 4 submissions
report them (MACs per 10 s of audio).

The count is torch's own :class:`torch.utils.flop_counter.FlopCounterMode` over one forward pass:
convolutions, linear layers and matrix products (each multiply-add is 2 FLOPs there, 1 MAC here).
Element-wise work (activations, normalisation, pooling, bias adds) and the front end's FFT are not
counted, as in the MAC counts of the field's papers.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .network import WeakTagNet


@torch.no_grad()
def count_macs(module: nn.Module, *inputs: torch.Tensor) -> int:
    """MACs of ``module(*inputs)`` in eval mode (the mode is restored)."""
    was_training = module.training
    module.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        module(*inputs)
    module.train(was_training)
    return int(counter.get_total_flops()) // 2


def macs_per_audio(model: WeakTagNet, seconds: float = 10.0) -> int:
    """MACs of ``model`` on one clip of ``seconds`` (silence: the count does not depend on the samples)."""
    samples = int(round(seconds * model.grid.sample_rate))
    return count_macs(model, torch.zeros(1, samples))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
