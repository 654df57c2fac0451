"""The training batch every scheme's loss reads: log-mel features with their weak and strong labels."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Batch:
    """A training batch. ``strong`` rows of clips without strong labels are zeros and
    must be ignored: ``has_strong`` says which rows are real. With unlabelled clips (the mean
    teacher's), ``labeled`` says which clips have labels: the others' label rows are zeros, and a
    scheme's loss is given :meth:`labeled_part` only."""

    features: torch.Tensor  # (B, frames, mel bands) log-mel
    weak: torch.Tensor  # (B, C) in {0, 1}
    strong: torch.Tensor  # (B, C, T) in {0, 1}
    has_strong: torch.Tensor  # (B,) bool
    clip_ids: list[str] = field(default_factory=list)
    teacher: torch.Tensor | None = None  # (B, C) a teacher's clip probabilities (PSL), when the set has them
    labeled: torch.Tensor | None = None  # (B,) bool; None: every clip is labelled
    teacher_segments: torch.Tensor | None = None  # (B, C, T) a teacher's segment probabilities (distillation)

    def __len__(self) -> int:
        return self.features.shape[0]

    @property
    def all_labeled(self) -> bool:
        return self.labeled is None or bool(self.labeled.all())

    def rows(self, index: torch.Tensor) -> "Batch":
        """The clips at ``index`` (a (B,) bool mask or row numbers), as a batch of their own."""
        picked = index.nonzero().flatten().tolist() if index.dtype == torch.bool else index.tolist()
        return Batch(self.features[index], self.weak[index], self.strong[index], self.has_strong[index],
                     [self.clip_ids[i] for i in picked] if self.clip_ids else [],
                     None if self.teacher is None else self.teacher[index],
                     None if self.labeled is None else self.labeled[index],
                     None if self.teacher_segments is None else self.teacher_segments[index])

    def labeled_part(self) -> "Batch":
        """The labelled clips: the batch itself when every clip is."""
        return self if self.all_labeled else self.rows(self.labeled)

    @staticmethod
    def join(first: "Batch", second: "Batch") -> "Batch":
        """``first``'s clips, then ``second``'s (two parts of one batch, e.g. augmented apart)."""
        def cat(a, b):
            return None if a is None else torch.cat([a, b])

        return Batch(torch.cat([first.features, second.features]), torch.cat([first.weak, second.weak]),
                     torch.cat([first.strong, second.strong]), torch.cat([first.has_strong, second.has_strong]),
                     first.clip_ids + second.clip_ids, cat(first.teacher, second.teacher),
                     cat(first.labeled, second.labeled), cat(first.teacher_segments, second.teacher_segments))
