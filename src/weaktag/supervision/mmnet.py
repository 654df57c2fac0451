"""M&mnet and M&mnet-MS (Chou et al. 2018, eq. 3-11) as training schemes, and weaktag's class-wise
extension; the heads are :class:`weaktag.models.MMNetHead`'s.

    L = L_macro + lambda * sum_levels L_micro@l
    L_macro   = BCE(y-hat, y)                                   (eq. 3)
    L_micro@l = sum_t (a_t / M) * xi(y, d-hat_t)                (eq. 7, normalised by M)

with weaktag's conventions (:mod:`weaktag.supervision.base`): xi is the BCE of segment t's
prediction against the clip labels, averaged over classes (as L_macro is), and every term is averaged
over the batch. The paper writes sum_t a_t xi with sum_t a_t = M: we divide by M so that L_micro is an
a-weighted mean over segments and lambda = 1 weighs the two subnets equally, as the paper's
lambda = 1 does with M = 1 (the paper's sum is lambda = M). The attention a is trained through this
loss too (end to end, as in the paper): nothing else supervises it. M&mnet has one level (the head
input); M&mnet-MS sums its five.

Class weights (eq. 11, beta = 0.3 by default, as the paper): w_c on the positive targets only, as the
released code weighs them (the paper does not say); negative targets weigh 1.

``mmnet-classwise`` (weaktag's extension): one micro attention per class, a_c,t, and
L_micro = sum_t (a_c,t / M) * BCE(d-hat_c,t, y_c), averaged over classes; its settings default to the
ones chosen on the validation split in the review of issue 23 (M = 4, f_det with 256 hidden units, one
linear f_cls, no class weights, mu = 0: EP is the attention-weighted micro prediction alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ..errors import ConfigError
from ..models import ModelOutput
from ..settings import at_least
from .base import Batch, LossTerms, SchemeParameters, TrainingScheme, logit_bce_terms
from .registry import register_scheme


def positive_weights(weak: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor | None:
    """Per-target weights (B, C): ``weight[c]`` where y_c = 1, 1 where y_c = 0 (None: no weights)."""
    if weight is None:
        return None
    return 1.0 + (weight.to(weak.device, torch.float32) - 1.0) * weak.float()


def micro_loss(segment_logits: torch.Tensor, weights: torch.Tensor, weak: torch.Tensor,
               class_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Batch mean of sum_t w_t xi(y, d-hat_t): d-hat logits (B, C, T), w = a / M (B, T), or (B, C, T) for
    class-wise attention (w_c,t weighs class c's term), y (B, C); xi averaged over classes, each target
    weighted by :func:`positive_weights`."""
    target = weak.unsqueeze(-1).expand_as(segment_logits)
    per_target = logit_bce_terms(segment_logits, target)  # (B, C, T)
    targets = positive_weights(weak, class_weight)
    if targets is not None:
        per_target = per_target * targets.unsqueeze(-1)
    w = weights.float() if weights.dim() == 3 else weights.float().unsqueeze(1)
    return (w * per_target).mean(dim=1).sum(dim=-1).mean()


@dataclass
class MMNetParameters(SchemeParameters):
    micro_weight: float = field(default=1.0, metadata=at_least(0.0, finite=True))  # lambda of the micro loss
    # mu of the ensemble prediction (1: M&mnet without EP)
    ensemble_weight: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    micro_heads: int = field(default=0, metadata=at_least(0))  # M; 0: the channels of X (the released code)
    micro_hidden: int = field(default=0, metadata=at_least(0))  # f_det's hidden units; 0: one linear layer
    macro_layers: int = field(default=2, metadata=at_least(0))  # f_cls's hidden layers (1024, BN, ReLU)
    class_weight_beta: float = field(default=0.3, metadata=at_least(0.0))  # eq. 11's beta
    # trials made before the scheme followed the paper and the released code: M 4, f_det with a hidden
    # layer, one linear f_cls, no class weights
    recorded_defaults: ClassVar[dict[str, Any]] = {"micro_heads": 4, "micro_hidden": 256, "macro_layers": 0,
                                                   "class_weight_beta": 0.0}


@dataclass
class ClasswiseParameters(MMNetParameters):
    recorded_defaults: ClassVar[dict[str, Any]] = {}
    ensemble_weight: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})
    micro_heads: int = field(default=4, metadata=at_least(0))
    micro_hidden: int = field(default=256, metadata=at_least(0))
    macro_layers: int = field(default=0, metadata=at_least(0))
    class_weight_beta: float = field(default=0.0, metadata=at_least(0.0))


@register_scheme
class MMNet(TrainingScheme):
    """M&mnet: macro subnet + one attentional micro subnet, ensemble prediction at inference."""

    name = "mmnet"
    description = "M&mnet: BCE(y-hat, y) + lambda * sum_t a_t BCE(d-hat_t, y); EP mu y-hat + (1-mu) sum alpha d-hat"
    head = "mmnet"
    Parameters = MMNetParameters
    params: MMNetParameters

    def model_options(self) -> dict[str, float]:
        # they live in the model: tagging and ONNX apply mu, and the sizes build the head
        p = self.params
        return {"ensemble_weight": float(p.ensemble_weight), "micro_heads": int(p.micro_heads),
                "micro_hidden": int(p.micro_hidden), "macro_layers": int(p.macro_layers)}

    def loss(self, output: ModelOutput, batch: Batch, teacher: ModelOutput | None = None) -> LossTerms:
        if output.macro_logits is None or not output.micro_levels:
            raise ConfigError(f"scheme {self.name!r} needs a model with its M&mnet head (model.head {self.head!r}); "
                             "this model has another head")
        w = self.class_weights
        # y-hat = sigmoid(mean_t macro logits): its BCE from the logits, exact under mixed precision
        macro_terms = logit_bce_terms(output.macro_logits.mean(dim=-1), batch.weak)
        targets = positive_weights(batch.weak, w)
        macro = (macro_terms if targets is None else macro_terms * targets).mean()
        micro = [micro_loss(logits, weights, batch.weak, w) for logits, weights in output.micro_levels]
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


@register_scheme
class MMNetClasswise(MMNet):
    """weaktag's extension of M&mnet: one micro attention per class (see the module doc)."""

    name = "mmnet-classwise"
    description = ("M&mnet, class-wise micro attention (extension): BCE(y-hat, y) + lambda * sum_t a_c,t/M "
                   "BCE(d-hat_c,t, y_c); EP mu y-hat + (1-mu) sum a_c/M d-hat_c")
    head = "mmnet-classwise"
    Parameters = ClasswiseParameters
