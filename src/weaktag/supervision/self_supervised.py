"""Pseudo-strong labels for self-supervised attention (Table I row 6, the paper's eq. 1).

They are made in every forward pass from the model's own segment predictions X^a:

    theta = mean of X^a over the classes absent from the clip (all segments)
    P[c, t] = 1  if c is present in the clip and X^a[c, t] >= theta, else 0

P carries no gradient: it is a target, not a path for the loss to move X^a. The schemes that
use P are in :mod:`weaktag.supervision.attention`.
"""

from __future__ import annotations

import torch

# When every class is present there are no absent classes to set theta from; 0.5 is the
# decision threshold of a sigmoid output.
FALLBACK_THRESHOLD = 0.5


def pseudo_strong_labels(segment_probs: torch.Tensor, weak: torch.Tensor) -> torch.Tensor:
    """P in {0, 1}^(B, C, T) from X^a (B, C, T) and weak labels y (B, C), without gradient."""
    with torch.no_grad():
        xa = segment_probs.detach().float()
        absent = (weak < 0.5).float().unsqueeze(-1).expand_as(xa)  # (B, C, T)
        n_absent = absent.sum(dim=(1, 2))
        theta = (xa * absent).sum(dim=(1, 2)) / n_absent.clamp(min=1.0)
        theta = torch.where(n_absent > 0, theta, torch.full_like(theta, FALLBACK_THRESHOLD))
        present = (weak >= 0.5).unsqueeze(-1)
        return ((xa >= theta.view(-1, 1, 1)) & present).to(segment_probs.dtype)
