"""What a model was trained on, kept in its checkpoint for its model card: the clips of each split, per
class and by kind of label. Counted by :func:`weaktag.labels.summary.training_data`; plain values here, so
that the checkpoint (and the tagger, which loads it) reads them without the label readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

#: the split whose clips carry no labels (data.unlabeled's, the mean teacher's)
UNLABELLED_SPLIT = "unlabeled"


@dataclass(frozen=True)
class SplitData:
    """One split's clips: how many, how many of them hold each class, and their kinds of label."""

    name: str
    clips: int
    per_class: dict[str, int]  # clips holding the class (a clip with two classes counts in both)
    weak: int  # clips with clip labels only
    strong: int  # clips with onsets and offsets
    unlabelled: int  # clips without labels

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "clips": self.clips, "per_class": dict(self.per_class), "weak": self.weak,
                "strong": self.strong, "unlabelled": self.unlabelled}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "SplitData":
        return cls(str(values["name"]), int(values["clips"]), {str(k): int(v) for k, v in values["per_class"].items()},
                   int(values["weak"]), int(values["strong"]), int(values["unlabelled"]))


@dataclass(frozen=True)
class TrainingData:
    """The clips a model was trained, validated and tested on, split by split (the usable clips: those
    that could be read), and the clips that could not be read, per split."""

    splits: tuple[SplitData, ...]
    skipped: dict[str, int]

    def split(self, name: str) -> SplitData | None:
        return next((s for s in self.splits if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"splits": [s.to_dict() for s in self.splits], "skipped": dict(self.skipped)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainingData":
        return cls(tuple(SplitData.from_dict(s) for s in values["splits"]),
                   {str(k): int(v) for k, v in values.get("skipped", {}).items()})
