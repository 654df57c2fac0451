"""The baselines of M&mnet's Fig. 3 that weaktag had no scheme for: SLAT and PLAT.

WLAT (Kumar et al. 2018: segment predictions, mean pooled, clip loss) is ``pool-weak`` and ATT
(Xu et al. 2017: attention-weighted pooling, clip loss) is ``attention``; both are reused as they are.
Both schemes here train the mean-pooling head (X^a per segment, y-hat = mean_t X^a at inference).

* SLAT (strong-label assumption, Hershey et al. 2017): every segment carries its clip's labels,
  L = BCE(X^a_t, y) averaged over classes, segments and clips; no clip-level term.
* PLAT (predicted-label assumption, Diba et al. 2016): segment labels extrapolated from class
  activation maps of the macro prediction. For the mean-pooling head the class activation map of
  class c at segment t is X^a_c,t itself (y-hat_c is its mean). The extrapolated label is
  CAM / max_t CAM > ``PLAT_THRESHOLD`` for the classes present in the clip and 0 for absent ones,
  computed without gradient; L = BCE(y-hat, y) + BCE(X^a, extrapolated labels).
"""

from __future__ import annotations

import torch

from ..models import ModelOutput
from .base import Batch, LossTerms, bce, segment_bce
from .pooling import PoolingScheme
from .registry import register_scheme

PLAT_THRESHOLD = 0.5  # of each clip and class's CAM peak: the segments PLAT labels positive


def extrapolated_labels(segment_probs: torch.Tensor, weak: torch.Tensor, threshold: float = PLAT_THRESHOLD
                        ) -> torch.Tensor:
    """PLAT's segment labels (B, C, T): CAM normalised by its maximum over time > ``threshold``, times y."""
    with torch.no_grad():
        cam = segment_probs.float()
        relative = cam / cam.amax(dim=-1, keepdim=True).clamp(min=1e-12)
        return (relative > threshold).float() * (weak.float().unsqueeze(-1) > 0.5).float()


@register_scheme
class StrongLabelAssumption(PoolingScheme):
    """SLAT: the clip labels broadcast to every segment, BCE(X^a, y) before any pooling."""

    name = "slat"
    description = "SLAT (M&mnet Fig. 3b): no attention; BCE(X^a_t, y) for every segment t"

    def loss(self, output: ModelOutput, batch: Batch, teacher: ModelOutput | None = None) -> LossTerms:
        target = batch.weak.unsqueeze(-1).expand_as(output.segment_probs)
        segment = segment_bce(output, target, weight=self.class_weights)
        return LossTerms(segment, {"segment": segment})


@register_scheme
class PredictedLabelAssumption(PoolingScheme):
    """PLAT: BCE(y-hat, y) + BCE(X^a, labels extrapolated from the class activation maps)."""

    name = "plat"
    description = "PLAT (M&mnet Fig. 3c): no attention; BCE(mean_t X^a, y) + BCE(X^a, CAM-extrapolated labels)"

    def loss(self, output: ModelOutput, batch: Batch, teacher: ModelOutput | None = None) -> LossTerms:
        w = self.class_weights
        pred = bce(output.clip_probs, batch.weak, weight=w)
        segment = segment_bce(output, extrapolated_labels(output.segment_probs, batch.weak), weight=w)
        return LossTerms(pred + segment, {"pred": pred, "segment": segment})
