"""What a training run's labels hold, said before training: clips per class and split, and the
label problems that otherwise pass silently (a typo that became a class, a class that validation
cannot score); and the same counts kept with the model (:func:`training_data`: a
:class:`~weaktag.provenance.TrainingData`, in its checkpoint and model card)."""

from __future__ import annotations

import logging
import warnings
from typing import Callable, Iterable, Mapping, Sequence

from ..provenance import UNLABELLED_SPLIT, SplitData, TrainingData
from .manifest import Clip, Manifest

logger = logging.getLogger(__name__)

#: a longer class list is summarised by its rarest classes (AudioSet has 527)
MAX_TABLE_ROWS = 30


def _clips_per_class(manifest: Iterable[Clip], classes: Sequence[str]) -> dict[str, int]:
    counts = dict.fromkeys(classes, 0)
    for clip in manifest:
        for label in clip.labels:
            if label in counts:
                counts[label] += 1
    return counts


def class_summary(classes: Sequence[str], manifests: Mapping[str, Manifest]) -> list[str]:
    """A compact table: one row per class, one column per split, of the clips that hold the class."""
    counts = {split: _clips_per_class(m, classes) for split, m in manifests.items()}
    totals = ", ".join(f"{split} {len(m)}" for split, m in manifests.items())
    lines = [f"{len(classes)} classes; clips: {totals}"]
    shown = list(classes)
    if len(shown) > MAX_TABLE_ROWS:
        train = counts.get("train", {})
        shown = sorted(shown, key=lambda c: (train.get(c, 0), c))[:MAX_TABLE_ROWS]
    width = max([len("class"), *(len(c) for c in shown)])
    lines.append(f"  {'class':<{width}}" + "".join(f"  {split:>10}" for split in manifests))
    lines += [f"  {c:<{width}}" + "".join(f"  {counts[split][c]:>10}" for split in manifests) for c in shown]
    if len(shown) < len(classes):
        lines.append(f"  ({len(classes) - len(shown)} more classes with more training clips not shown)")
    return lines


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance counting a swap of neighbours as one edit ('dgo' -> 'dog' is 1)."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def _near_name(name: str, counts: Mapping[str, int]) -> str | None:
    """The commoner class within 1-2 edits of ``name`` (a likely typo of it), if any."""
    near = [(_edit_distance(name.lower(), c.lower()), -n, c) for c, n in counts.items() if c != name and n > 1]
    near = [x for x in near if x[0] <= 2 and x[0] < len(name)]
    return min(near)[2] if near else None


def label_warnings(classes: Sequence[str], manifests: Mapping[str, Manifest]) -> list[str]:
    """Classes with at most one training clip (naming its file and line, and a near class name),
    and validation classes without a positive clip."""
    messages = []
    train = _clips_per_class(manifests["train"], classes) if "train" in manifests else {}
    for name, n in train.items():
        if n > 1:
            continue
        where = next((str(c.source) for m in manifests.values() for c in m if name in c.labels and c.source), None)
        message = f"class {name!r} has {'only one training clip' if n else 'no training clip'}"
        message += f" ({where})" if where else ""
        near = _near_name(name, train)
        messages.append(message + (f": did you mean {near!r}?" if near else ""))
    if "validation" in manifests:
        absent = [c for c, n in _clips_per_class(manifests["validation"], classes).items() if n == 0]
        if absent:
            messages.append(
                f"no validation clip of class(es) {', '.join(map(repr, absent))}: their tagging thresholds "
                "fall back to 0.5 and their validation AP is undefined"
            )
    return messages


def report_labels(classes: Sequence[str], manifests: Mapping[str, Manifest],
                  say: Callable[[str], None] | None = None) -> None:
    """Give the class summary to ``say`` (logged at INFO without it) and warn about label problems.

    Nothing without ``manifests`` (prepared data built from feature sets alone)."""
    if not manifests:
        return
    for line in class_summary(classes, manifests):
        (say or logger.info)(line)
    for message in label_warnings(classes, manifests):
        warnings.warn(message, stacklevel=2)


def training_data(classes: Sequence[str], clips: Mapping[str, Sequence[Clip]],
                  skipped: Mapping[str, int] | None = None) -> TrainingData:
    """The counts of :class:`TrainingData` from each split's clips (the ``unlabeled`` split's are unlabelled)."""
    splits = []
    for name, split in clips.items():
        if name == UNLABELLED_SPLIT:  # its readers dropped any labels: nothing to count per class
            splits.append(SplitData(name, len(split), {}, 0, 0, len(split)))
            continue
        strong = sum(clip.has_strong for clip in split)
        splits.append(SplitData(name, len(split), _clips_per_class(split, classes), len(split) - strong, strong, 0))
    return TrainingData(tuple(splits), {k: int(v) for k, v in (skipped or {}).items()})
