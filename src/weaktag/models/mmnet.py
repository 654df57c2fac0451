"""M&mnet (Chou et al. 2018): a macro subnet and attentional micro subnets on the head input.

The head sits where weaktag's other heads sit: on the neck's output X, (B, K, T) on the backbone's
time grid, so every segment output is at the grid's T.

* Macro subnet (eq. 2): y-hat = sigmoid(f_cls(mean_t X)). The paper gives f_cls as "a stack of fully
  connected layers" without its depth; the released code has two hidden layers of 1024 units with batch
  norm and ReLU, then a linear layer (``macro_layers`` = 2, what ``scheme.macro_layers`` defaults to).
  weaktag computes f_cls per segment and averages its logits over time, so that a long recording tagged
  in chunks re-pools exactly from the stitched per-segment macro logits (:func:`mmnet_pool`). For one
  linear layer (``macro_layers`` = 0, the checkpoints written before) that is exactly the paper's "pool,
  then f_cls"; with hidden layers it is f_cls on each segment, then the mean.
* Micro subnet (eq. 4-6): f_det, per segment (a 1x1 convolution: one linear layer, as the paper's
  footnote 5 counts it, or ``micro_hidden`` hidden ReLU units first) gives d-hat_t; f_att, a 1x1
  convolution to M attention logits v_t,m, gives a_t = sum_m softmax_t(v_t,m) (so sum_t a_t = M). The
  paper does not give M; the released code uses M = K, the channels of X (``heads`` 0).
* Ensemble prediction (eq. 9): y_ens = mu * y-hat + (1 - mu) * sum_t alpha_t d-hat_t, alpha = softmax_t(a).
  ``ensemble_weight`` = mu; mu = 1 is "M&mnet without EP".
* Class-wise micro attention (``mmnet-classwise``, weaktag's extension): f_att gives C * M logits and
  each class its own a_c,t = sum_m softmax_t(v_c,t,m), so that a clip with several classes does not
  train every class at one shared event; EP weighs class c's d-hat by a_c / M.

M&mnet-MS (``multiscale=True``, Sec. 2.5): the paper puts micro subnets on f_cnn's intermediate maps
and on L - 1 transposed-convolution upsamplings of the last one (2L - 1 levels). weaktag trains on
cached outputs of a frozen backbone (``level="backbone"``), which has no intermediate maps, so the
pyramid is built on the head input: X (T), X max-pooled by 2 and by 4 (ceil(T/2), ceil(T/4)), and two
transposed convolutions (kernel 2, stride 2) upsampling the coarsest back to ceil(T/2) and T (cropped
to each level's length): 5 levels, L = 3. Each level has its own micro subnet; the training loss sums
them (eq. 10). Only level 0 (X itself, per segment) gives the d-hat and a of EP and events, so that
chunked tagging stays exact; the other levels are computed in training mode only.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .heads import Head, register_head
from .output import ModelOutput

MICRO_HEADS = 4  # M of checkpoints written before it was a setting (scheme.micro_heads; 0 there: M = K)
MICRO_HIDDEN = 256  # f_det's hidden units in those checkpoints (scheme.micro_hidden; the paper's f_det: 0)
MACRO_HIDDEN = 1024  # units of each hidden layer of f_cls (the released code's)
PYRAMID_LEVELS = 3  # L: the head input and two coarser scales, plus L - 1 upsampled maps


def micro_attention(micro_logits: torch.Tensor, classes: int | None = None) -> torch.Tensor:
    """a_t = sum_m softmax over t of v_t,m (eq. 6): (..., M, T) -> (..., T), sums to M over T. Class-wise
    (weaktag's extension, ``classes`` = C): (..., C * M, T) -> (..., C, T), one such a per class."""
    soft = torch.softmax(micro_logits, dim=-1)
    if classes is None:
        return soft.sum(dim=-2)
    return soft.unflatten(-2, (classes, soft.shape[-2] // classes)).sum(dim=-2)


def mmnet_pool(macro_logits: torch.Tensor, segment_probs: torch.Tensor, micro_logits: torch.Tensor,
               ensemble_weight: float, classwise: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y_ens, y-hat, a, alpha) from per-segment macro logits (..., C, T), d-hat (..., C, T), v (..., M, T)
    (class-wise: (..., C * M, T)); a and alpha are (..., C, T), the same row for every class unless
    ``classwise``.

    The one definition of M&mnet's pooling over time: the head uses it, and chunked inference re-pools
    the stitched per-segment outputs of a whole recording with it (in float64 there). EP's weights are
    alpha = softmax_t(a) (eq. 9); class-wise they are a_c / M, the class's own attention, which sums to 1
    over time already (a softmax of a, which runs from 0 to M, would flatten it).
    """
    macro = torch.sigmoid(macro_logits.mean(dim=-1))
    classes = segment_probs.shape[-2]
    if classwise:
        a = micro_attention(micro_logits, classes)
        alpha = a / (micro_logits.shape[-2] // classes)
    else:
        shared = micro_attention(micro_logits)
        a = shared.unsqueeze(-2).expand_as(segment_probs)
        alpha = torch.softmax(shared, dim=-1).unsqueeze(-2).expand_as(segment_probs)
    ensemble = ensemble_weight * macro + (1.0 - ensemble_weight) * (alpha * segment_probs).sum(dim=-1)
    return ensemble, macro, a, alpha


def _segment_layers(in_channels: int, out_channels: int, hidden: int, layers: int, norm: bool) -> nn.Sequential:
    """``layers`` hidden 1x1 layers of ``hidden`` units (ReLU, batch norm when ``norm``), then a linear one."""
    parts: list[nn.Module] = []
    width = in_channels
    for _ in range(layers):
        parts += [nn.Conv1d(width, hidden, 1), *([nn.BatchNorm1d(hidden)] if norm else []), nn.ReLU(inplace=True)]
        width = hidden
    return nn.Sequential(*parts, nn.Conv1d(width, out_channels, 1))


class MicroSubnet(nn.Module):
    """f_det and f_att on one feature map: (B, K, T) -> (d-hat logits (B, C, T), v (B, M, T)), or v (B, C * M, T)
    for class-wise attention. ``hidden`` 0: f_det is one linear layer (the paper's footnote 5)."""

    def __init__(self, in_channels: int, num_classes: int, heads: int = MICRO_HEADS,
                 hidden: int = MICRO_HIDDEN, classwise: bool = False) -> None:
        super().__init__()
        self.detect = _segment_layers(in_channels, num_classes, hidden, 1 if hidden else 0, norm=False)
        self.attend = nn.Conv1d(in_channels, heads * (num_classes if classwise else 1), 1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.detect(features).float(), self.attend(features).float()


def _halve(x: torch.Tensor) -> torch.Tensor:
    """Max-pool time by 2, ceil(T / 2) outputs: an odd T repeats its last segment first (T = 1 gives 1)."""
    if x.shape[-1] % 2:
        x = torch.cat([x, x[..., -1:]], dim=-1)
    return F.max_pool1d(x, 2)


@register_head("mmnet")
class MMNetHead(Head):
    """M&mnet's macro and micro subnets (module doc); ``multiscale`` adds the pyramid of M&mnet-MS and
    ``classwise`` gives each class its own micro attention (weaktag's extension)."""

    export_outputs = ("macro_logits", "micro_logits")
    multiscale_head: bool = False  # what from_config builds: M&mnet-MS's subclass says True
    classwise_head: bool = False  # and the class-wise subclass this

    def __init__(self, in_channels: int, num_classes: int, ensemble_weight: float = 0.5,
                 multiscale: bool = False, heads: int = MICRO_HEADS, micro_hidden: int = MICRO_HIDDEN,
                 macro_layers: int = 0, classwise: bool = False) -> None:
        super().__init__()
        if not 0.0 <= ensemble_weight <= 1.0:
            raise ConfigError(f"the ensemble weight mu must be in [0, 1], not {ensemble_weight}")
        self.ensemble_weight = float(ensemble_weight)
        self.classwise = classwise
        heads = heads or in_channels  # 0: M = K, as the released code
        self.heads = heads
        # f_cls per segment, its logits averaged over time: for one linear layer exactly the paper's "pool,
        # then f_cls"; with hidden layers it keeps a long recording's chunks re-poolable exactly
        self.macro = _segment_layers(in_channels, num_classes, MACRO_HIDDEN, macro_layers, norm=True)
        self.micro = MicroSubnet(in_channels, num_classes, heads, micro_hidden, classwise)
        self.multiscale = multiscale
        if multiscale:
            # levels 1..2L-2: L-1 pooled maps and L-1 upsampled ones
            self.pyramid = nn.ModuleList(MicroSubnet(in_channels, num_classes, heads, micro_hidden, classwise)
                                         for _ in range(2 * PYRAMID_LEVELS - 2))
            self.upsample = nn.ModuleList(nn.ConvTranspose1d(in_channels, in_channels, kernel_size=2, stride=2)
                                          for _ in range(PYRAMID_LEVELS - 1))

    @classmethod
    def from_config(cls, in_channels: int, config: Any) -> "MMNetHead":
        return cls(in_channels, config.num_classes, config.ensemble_weight, multiscale=cls.multiscale_head,
                   heads=config.micro_heads, micro_hidden=config.micro_hidden, macro_layers=config.macro_layers,
                   classwise=cls.classwise_head)

    @staticmethod
    def pool_inputs(output: ModelOutput) -> torch.Tensor | None:
        """The macro logits and f_att's logits stacked on the row axis, (B, C + M, T) (class-wise: C + C * M)."""
        return torch.cat([output.macro_logits, output.micro_logits], dim=1)

    @classmethod
    def pool_recording(cls, config: Any, segment_probs: torch.Tensor, inputs: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        c = segment_probs.shape[-2]
        clip, _, a, alpha = mmnet_pool(inputs[..., :c, :], segment_probs, inputs[..., c:, :], config.ensemble_weight,
                                       cls.classwise_head)
        return clip, alpha, a

    def pyramid_maps(self, features: torch.Tensor) -> list[torch.Tensor]:
        """The feature maps of levels 1..2L-2: X pooled by 2, 4, ..., then upsampled back (coarse to fine)."""
        pooled = [features]
        for _ in range(PYRAMID_LEVELS - 1):
            pooled.append(_halve(pooled[-1]))
        maps = pooled[1:]
        x = pooled[-1]
        for up, target in zip(self.upsample, reversed(pooled[:-1])):
            x = F.relu(up(x))[..., : target.shape[-1]]  # 2 * ceil(T / 2) >= T: crop to the finer level
            maps.append(x)
        return maps

    def _weights(self, micro_logits: torch.Tensor, classes: int) -> torch.Tensor:
        """The micro loss's weights a / M of one level: (B, T), or (B, C, T) class-wise; each sums to 1 over T."""
        return micro_attention(micro_logits, classes if self.classwise else None) / self.heads

    def forward(self, features: torch.Tensor) -> ModelOutput:
        macro_logits = self.macro(features).float()  # float32 from the logits on, as AttentionHead
        det_logits, micro_logits = self.micro(features)
        d = torch.sigmoid(det_logits)
        classes = d.shape[-2]
        clip, macro, a, alpha = mmnet_pool(macro_logits, d, micro_logits, self.ensemble_weight, self.classwise)
        levels = [(det_logits, self._weights(micro_logits, classes))]
        if self.multiscale and self.training:  # auxiliary supervision only: inference reads level 0
            for subnet, level_map in zip(self.pyramid, self.pyramid_maps(features)):
                level_det, level_v = subnet(level_map)
                levels.append((level_det, self._weights(level_v, classes)))
        return ModelOutput(segment_probs=d, clip_probs=clip, attention=alpha, attention_raw=a,
                           segment_logits=det_logits, macro_probs=macro, macro_logits=macro_logits,
                           micro_logits=micro_logits, micro_levels=levels)


@register_head("mmnet-ms")
class MMNetMultiScaleHead(MMNetHead):
    """M&mnet-MS: :class:`MMNetHead` with its pyramid (``multiscale``)."""

    multiscale_head = True


@register_head("mmnet-classwise")
class MMNetClasswiseHead(MMNetHead):
    """:class:`MMNetHead` with one micro attention per class (``classwise``; weaktag's extension)."""

    classwise_head = True
