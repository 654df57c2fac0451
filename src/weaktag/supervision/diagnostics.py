"""Self-supervision diagnostics: how the pseudo-strong labels P and the attention A compare with the
true strong labels Y, measured on strongly labelled clips (validation, every epoch).

Over the (clip, class) rows where the class is present in a strongly labelled clip:

* ``pseudo_density``: the share of segments P marks; ``true_density``: the share Y marks;
* ``precision`` = sum(P * Y) / sum(P) and ``recall`` = sum(P * Y) / sum(Y) of P against Y;
* ``attention_in_events``: the attention mass sum_t A * Y inside the true events (1: all of it);
* ``attention_entropy``: the entropy of A over time divided by log T (1: flat, 0: one segment).

Each is reported per class and as the macro mean over classes with rows (``summary``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

DIAGNOSTICS = ("pseudo_density", "true_density", "precision", "recall", "attention_in_events",
               "attention_entropy")
_SUMS = ("rows", "segments", "p", "y", "py", "event_rows", "mass", "entropy")


@dataclass
class SelfSupervisionStats:
    """Per-class sums over batches; :meth:`update` adds a batch, :meth:`per_class` / :meth:`summary` read."""

    num_classes: int
    sums: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.sums = torch.zeros(len(_SUMS), self.num_classes, dtype=torch.float64)

    def update(self, pseudo: torch.Tensor, strong: torch.Tensor, attention: torch.Tensor, weak: torch.Tensor,
               has_strong: torch.Tensor) -> None:
        """Add a batch: P, Y and A are (B, C, T); y (B, C); ``has_strong`` (B,) says which Y are real."""
        with torch.no_grad():
            rows = ((weak >= 0.5) & has_strong.view(-1, 1)).double()  # (B, C)
            if not rows.any():
                return
            p, y, a = pseudo.double(), strong.double(), attention.double()
            t = a.shape[-1]
            r = rows.unsqueeze(-1)
            event_rows = rows * (y.sum(-1) > 0).double()
            entropy = -(a.clamp(min=1e-12).log() * a).sum(-1) / (math.log(t) if t > 1 else 1.0)
            batch_sums = torch.stack([
                rows.sum(0), rows.sum(0) * t, (p * r).sum((0, 2)), (y * r).sum((0, 2)), (p * y * r).sum((0, 2)),
                event_rows.sum(0), ((a * y).sum(-1) * event_rows).sum(0), (entropy * rows).sum(0)])
            self.sums += batch_sums.cpu()

    def merge(self, other_sums: torch.Tensor) -> None:
        """Add sums gathered from other processes (distributed validation)."""
        self.sums += other_sums.to(self.sums)

    @property
    def empty(self) -> bool:
        return bool(self.sums[0].sum() == 0)

    def per_class(self) -> dict[str, np.ndarray]:
        s = dict(zip(_SUMS, self.sums.numpy()))
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "pseudo_density": s["p"] / s["segments"],
                "true_density": s["y"] / s["segments"],
                "precision": s["py"] / s["p"],
                "recall": s["py"] / s["y"],
                "attention_in_events": s["mass"] / s["event_rows"],
                "attention_entropy": s["entropy"] / s["rows"],
            }

    def summary(self) -> dict[str, float]:
        """The macro mean over classes of each diagnostic (NaN where no class has a value)."""
        out = {}
        for name, values in self.per_class().items():
            finite = values[np.isfinite(values)]
            out[name] = float(finite.mean()) if finite.size else float("nan")
        return out
