"""The training batch every scheme's loss reads: log-mel features with their weak and strong labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Batch:
    """A training batch. ``strong`` rows of clips without strong labels are zeros and
    must be ignored: ``has_strong`` says which rows are real."""

    features: torch.Tensor  # (B, frames, mel bands) log-mel
    weak: torch.Tensor  # (B, C) in {0, 1}
    strong: torch.Tensor  # (B, C, T) in {0, 1}
    has_strong: torch.Tensor  # (B,) bool
    clip_ids: list[str] = field(default_factory=list)
    teacher: torch.Tensor | None = None  # (B, C) a teacher's clip probabilities (PSL), when the set has them

    def __len__(self) -> int:
        return self.features.shape[0]
