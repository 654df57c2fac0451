"""Pseudo-strong labels for self-supervised attention: the paper's rule (Table I row 6, eq. 1) and
weaktag's extensions of it.

The paper's rule, made in every forward pass from the model's own segment predictions X^a:

    theta = mean of X^a over the classes absent from the clip (all segments)
    P[c, t] = 1  if c is present in the clip and X^a[c, t] >= theta, else 0

weaktag's extensions (:class:`PseudoLabelRule`; not in the paper) move theta up from the
background level, where the paper's rule marks far more segments than the events cover:

* ``absent-max``: theta = the largest X^a of any absent class in the clip;
* ``absent-quantile``: theta = the ``quantile`` of the absent classes' X^a;
* ``peak-relative``: per class, ``peak_ratio`` of the way from the paper's theta to the class's
  own peak, theta_c = theta + r * (max_t X^a[c, t] - theta), so r = 0 is the paper's rule;

and ``confidence_gate`` keeps only the present classes whose clip prediction y-hat_c reaches it.

P carries no gradient: it is a target, not a path for the loss to move X^a. The schemes that
use P are in :mod:`weaktag.supervision.attention`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# When every class is present there are no absent classes to set theta from; 0.5 is the
# decision threshold of a sigmoid output.
FALLBACK_THRESHOLD = 0.5

THRESHOLD_RULES = ("absent-mean", "absent-max", "absent-quantile", "peak-relative")


def _absent_mean(xa: torch.Tensor, absent: torch.Tensor) -> torch.Tensor:
    n_absent = absent.sum(dim=(1, 2))
    theta = (xa * absent).sum(dim=(1, 2)) / n_absent.clamp(min=1.0)
    return torch.where(n_absent > 0, theta, torch.full_like(theta, FALLBACK_THRESHOLD))


def pseudo_strong_labels(segment_probs: torch.Tensor, weak: torch.Tensor) -> torch.Tensor:
    """The paper's P in {0, 1}^(B, C, T) from X^a (B, C, T) and weak labels y (B, C), without gradient."""
    with torch.no_grad():
        xa = segment_probs.detach().float()
        absent = (weak < 0.5).float().unsqueeze(-1).expand_as(xa)  # (B, C, T)
        theta = _absent_mean(xa, absent)
        present = (weak >= 0.5).unsqueeze(-1)
        return ((xa >= theta.view(-1, 1, 1)) & present).to(segment_probs.dtype)


@dataclass(frozen=True)
class PseudoLabelRule:
    """How P is made (weaktag's extension; the defaults are the paper's rule). The scheme that uses it
    builds it from its checked parameters (``ExtendedParameters``, which declares each one's range)."""

    threshold: str = "absent-mean"  # one of THRESHOLD_RULES
    quantile: float = 0.9  # for absent-quantile
    peak_ratio: float = 0.5  # for peak-relative
    confidence_gate: float = 0.0  # present classes with y-hat_c below it get no pseudo-label row


def class_thresholds(xa: torch.Tensor, weak: torch.Tensor, rule: PseudoLabelRule) -> torch.Tensor:
    """theta per clip and class, (B, C), from X^a (B, C, T) under ``rule`` (no gradient)."""
    absent = (weak < 0.5).float().unsqueeze(-1).expand_as(xa)
    n_absent = absent.sum(dim=(1, 2))
    if rule.threshold == "absent-max":
        theta = torch.where(absent > 0, xa, torch.full_like(xa, -1.0)).amax(dim=(1, 2))
    elif rule.threshold == "absent-quantile":
        flat = torch.where(absent > 0, xa, torch.full_like(xa, float("nan"))).flatten(1)
        theta = torch.nanquantile(flat, rule.quantile, dim=1) if flat.shape[1] else flat.new_zeros(len(flat))
    elif rule.threshold in ("absent-mean", "peak-relative"):  # both start from the paper's theta
        theta = _absent_mean(xa, absent)
    else:
        raise ValueError(f"unknown pseudo-label threshold rule {rule.threshold!r}; choose one of {THRESHOLD_RULES}")
    theta = torch.where(n_absent > 0, theta, torch.full_like(theta, FALLBACK_THRESHOLD))
    theta = theta.view(-1, 1).expand(xa.shape[0], xa.shape[1])
    if rule.threshold == "peak-relative":
        peak = xa.amax(dim=-1)
        theta = theta + rule.peak_ratio * (peak - theta).clamp(min=0.0)
    return theta


def pseudo_labels(segment_probs: torch.Tensor, weak: torch.Tensor, rule: PseudoLabelRule,
                  clip_probs: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """P (B, C, T) in {0, 1} and the (B, C) mask of rows it supervises: present classes that pass the
    confidence gate and have at least one pseudo-positive segment. No gradient."""
    with torch.no_grad():
        xa = segment_probs.detach().float()
        theta = class_thresholds(xa, weak, rule)
        present = weak >= 0.5
        if rule.confidence_gate > 0.0:
            if clip_probs is None:
                raise ValueError("a confidence gate needs the clip predictions")
            present = present & (clip_probs.detach().float() >= rule.confidence_gate)
        p = (xa >= theta.unsqueeze(-1)) & present.unsqueeze(-1)
        rows = present & p.any(dim=-1)
        return p.to(segment_probs.dtype), rows
