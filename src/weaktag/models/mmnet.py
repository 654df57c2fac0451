"""M&mnet (Chou et al. 2018): a macro subnet and attentional micro subnets on the head input.

The head sits where weaktag's other heads sit: on the neck's output X, (B, K, T) on the backbone's
time grid, so every segment output is at the grid's T.

* Macro subnet (eq. 2): y-hat = sigmoid(f_cls(mean_t X)). f_cls is ONE linear layer, computed per
  segment and averaged over time: mean_t (W x_t + b) = W (mean_t x_t) + b, so y-hat is the paper's
  "pool, then fully connected", and a long recording tagged in chunks re-pools exactly from the
  stitched per-segment macro logits (:func:`mmnet_pool`). The nonlinear layers of f_cls are the
  neck's (``model.neck_channels``), which sits before every head.
* Micro subnet (eq. 4-6): f_det, per segment (1x1 convolutions: one hidden ReLU layer, then C
  sigmoid outputs) gives d-hat_t; f_att, a 1x1 convolution to M attention logits v_t,m, gives
  a_t = sum_m softmax_t(v_t,m) (so sum_t a_t = M).
* Ensemble prediction (eq. 9): y_ens = mu * y-hat + (1 - mu) * sum_t alpha_t d-hat_t, alpha = softmax_t(a).
  ``ensemble_weight`` = mu; mu = 1 is "M&mnet without EP".

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

MICRO_HEADS = 4  # M, attention heads of f_att (the paper does not give M; Shen et al. use several)
MICRO_HIDDEN = 256  # hidden units of f_det: the micro subnet is meant to be thin
PYRAMID_LEVELS = 3  # L: the head input and two coarser scales, plus L - 1 upsampled maps


def micro_attention(micro_logits: torch.Tensor) -> torch.Tensor:
    """a_t = sum_m softmax over t of v_t,m (eq. 6): (..., M, T) -> (..., T), sums to M over T."""
    return torch.softmax(micro_logits, dim=-1).sum(dim=-2)


def mmnet_pool(macro_logits: torch.Tensor, segment_probs: torch.Tensor, micro_logits: torch.Tensor,
               ensemble_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(y_ens, y-hat, a, alpha) from per-segment macro logits (..., C, T), d-hat (..., C, T), v (..., M, T).

    The one definition of M&mnet's pooling over time: the head uses it, and chunked inference re-pools
    the stitched per-segment outputs of a whole recording with it (in float64 there).
    """
    macro = torch.sigmoid(macro_logits.mean(dim=-1))
    a = micro_attention(micro_logits)
    alpha = torch.softmax(a, dim=-1)
    ensemble = ensemble_weight * macro + (1.0 - ensemble_weight) * (alpha.unsqueeze(-2) * segment_probs).sum(dim=-1)
    return ensemble, macro, a, alpha


class MicroSubnet(nn.Module):
    """f_det and f_att on one feature map: (B, K, T) -> (d-hat logits (B, C, T), v (B, M, T))."""

    def __init__(self, in_channels: int, num_classes: int, heads: int = MICRO_HEADS,
                 hidden: int = MICRO_HIDDEN) -> None:
        super().__init__()
        self.detect = nn.Sequential(nn.Conv1d(in_channels, hidden, 1), nn.ReLU(inplace=True),
                                    nn.Conv1d(hidden, num_classes, 1))
        self.attend = nn.Conv1d(in_channels, heads, 1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.detect(features).float(), self.attend(features).float()


def _halve(x: torch.Tensor) -> torch.Tensor:
    """Max-pool time by 2, ceil(T / 2) outputs: an odd T repeats its last segment first (T = 1 gives 1)."""
    if x.shape[-1] % 2:
        x = torch.cat([x, x[..., -1:]], dim=-1)
    return F.max_pool1d(x, 2)


@register_head("mmnet")
class MMNetHead(Head):
    """M&mnet's macro and micro subnets (module doc); ``multiscale`` adds the pyramid of M&mnet-MS."""

    export_outputs = ("macro_logits", "micro_logits")
    multiscale_head: bool = False  # what from_config builds: M&mnet-MS's subclass says True

    def __init__(self, in_channels: int, num_classes: int, ensemble_weight: float = 0.5,
                 multiscale: bool = False) -> None:
        super().__init__()
        if not 0.0 <= ensemble_weight <= 1.0:
            raise ConfigError(f"the ensemble weight mu must be in [0, 1], not {ensemble_weight}")
        self.ensemble_weight = float(ensemble_weight)
        self.macro = nn.Conv1d(in_channels, num_classes, kernel_size=1)  # f_cls, one linear layer per segment
        self.micro = MicroSubnet(in_channels, num_classes)
        self.multiscale = multiscale
        if multiscale:
            # levels 1..2L-2: L-1 pooled maps and L-1 upsampled ones
            self.pyramid = nn.ModuleList(MicroSubnet(in_channels, num_classes)
                                         for _ in range(2 * PYRAMID_LEVELS - 2))
            self.upsample = nn.ModuleList(nn.ConvTranspose1d(in_channels, in_channels, kernel_size=2, stride=2)
                                          for _ in range(PYRAMID_LEVELS - 1))

    @classmethod
    def from_config(cls, in_channels: int, config: Any) -> "MMNetHead":
        return cls(in_channels, config.num_classes, config.ensemble_weight, multiscale=cls.multiscale_head)

    @staticmethod
    def pool_inputs(output: ModelOutput) -> torch.Tensor | None:
        """The macro logits and f_att's logits stacked on the row axis, (B, C + M, T)."""
        return torch.cat([output.macro_logits, output.micro_logits], dim=1)

    @staticmethod
    def pool_recording(config: Any, segment_probs: torch.Tensor, inputs: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        c = segment_probs.shape[-2]
        clip, _, a, alpha = mmnet_pool(inputs[..., :c, :], segment_probs, inputs[..., c:, :], config.ensemble_weight)
        return clip, alpha.unsqueeze(-2).expand_as(segment_probs), a.unsqueeze(-2).expand_as(segment_probs)

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

    def forward(self, features: torch.Tensor) -> ModelOutput:
        macro_logits = self.macro(features).float()  # float32 from the logits on, as AttentionHead
        det_logits, micro_logits = self.micro(features)
        d = torch.sigmoid(det_logits)
        clip, macro, a, alpha = mmnet_pool(macro_logits, d, micro_logits, self.ensemble_weight)
        levels = [(det_logits, a)]
        if self.multiscale and self.training:  # auxiliary supervision only: inference reads level 0
            for subnet, level_map in zip(self.pyramid, self.pyramid_maps(features)):
                level_det, level_v = subnet(level_map)
                levels.append((level_det, micro_attention(level_v)))
        shape = d.shape
        return ModelOutput(segment_probs=d, clip_probs=clip, attention=alpha.unsqueeze(1).expand(shape),
                           attention_raw=a.unsqueeze(1).expand(shape), segment_logits=det_logits,
                           macro_probs=macro, macro_logits=macro_logits, micro_logits=micro_logits,
                           micro_levels=levels)


@register_head("mmnet-ms")
class MMNetMultiScaleHead(MMNetHead):
    """M&mnet-MS: :class:`MMNetHead` with its pyramid (``multiscale``)."""

    multiscale_head = True
