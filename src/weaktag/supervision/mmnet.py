"""M&mnet and M&mnet-MS (Chou et al. 2018, eq. 3-10) as training schemes; the heads are
:class:`weaktag.models.MMNetHead`'s.

    L = L_macro + lambda * sum_levels L_micro@l
    L_macro   = BCE(y-hat, y)                                   (eq. 3)
    L_micro@l = sum_t (a_t / M) * xi(y, d-hat_t)                (eq. 7, normalised by M)

with weaktag's conventions (:mod:`weaktag.supervision.base`): xi is the BCE of segment t's
prediction against the clip labels, averaged over classes (as L_macro is), and every term is averaged
over the batch. The paper writes sum_t a_t xi with sum_t a_t = M: we divide by M so that L_micro is an
a-weighted mean over segments and lambda = 1 weighs the two subnets equally, as the paper's
lambda = 1 does with M = 1. The attention a is trained through this loss too (end to end, as in the
paper): nothing else supervises it. M&mnet has one level (the head input); M&mnet-MS sums its five.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import ConfigError
from ..models import MICRO_HEADS, ModelOutput
from ..settings import at_least
from .base import Batch, LossTerms, SchemeParameters, TrainingScheme, logit_bce
from .registry import register_scheme


def micro_loss(segment_logits: torch.Tensor, attention: torch.Tensor, weak: torch.Tensor,
               weight: torch.Tensor | None = None) -> torch.Tensor:
    """Batch mean of sum_t (a_t / M) xi(y, d-hat_t): d-hat logits (B, C, T), a (B, T), y (B, C)."""
    target = weak.unsqueeze(-1).expand_as(segment_logits)
    per_segment = logit_bce(segment_logits, target, reduce_dims=(1,), weight=weight)  # xi: (B, T)
    return ((attention.float() / MICRO_HEADS) * per_segment).sum(dim=-1).mean()


@dataclass
class MMNetParameters(SchemeParameters):
    micro_weight: float = field(default=1.0, metadata=at_least(0.0, finite=True))  # lambda of the micro loss
    # mu of the ensemble prediction (1: M&mnet without EP)
    ensemble_weight: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})


@register_scheme
class MMNet(TrainingScheme):
    """M&mnet: macro subnet + one attentional micro subnet, ensemble prediction at inference."""

    name = "mmnet"
    description = "M&mnet: BCE(y-hat, y) + lambda * sum_t a_t BCE(d-hat_t, y); EP mu y-hat + (1-mu) sum alpha d-hat"
    head = "mmnet"
    Parameters = MMNetParameters
    params: MMNetParameters

    def model_options(self) -> dict[str, float]:
        # mu lives in the model: tagging and ONNX apply it
        return {"ensemble_weight": float(self.params.ensemble_weight)}

    def loss(self, output: ModelOutput, batch: Batch, teacher: ModelOutput | None = None) -> LossTerms:
        if output.macro_logits is None or not output.micro_levels:
            raise ConfigError(f"scheme {self.name!r} needs a model with its M&mnet head (model.head {self.head!r}); "
                             "this model has another head")
        w = self.class_weights
        # y-hat = sigmoid(mean_t macro logits): its BCE from the logits, exact under mixed precision
        macro = logit_bce(output.macro_logits.mean(dim=-1), batch.weak, weight=w)
        micro = [micro_loss(logits, a, batch.weak, w) for logits, a in output.micro_levels]
        total_micro = sum(micro[1:], micro[0])
        parts = {"macro": macro, "micro": total_micro}
        if len(micro) > 1:
            parts.update({f"micro_{level}": value for level, value in enumerate(micro)})
        return LossTerms(macro + self.params.micro_weight * total_micro, parts)


@register_scheme
class MMNetMultiScale(MMNet):
    """M&mnet-MS: micro subnets on a five-level pyramid of the head input (eq. 10; see weaktag.models.mmnet)."""

    name = "mmnet-ms"
    description = "M&mnet-MS: L_macro + lambda * sum over 5 pyramid levels of L_micro@l (eq. 10); EP as mmnet"
    head = "mmnet-ms"
