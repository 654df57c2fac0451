"""A validation set held out of a training list, as the paper did for balanced AudioSet (10% of
Bal-train): deterministic for a seed, stratified over the labels, and never splitting one recording.

The unit is a *group* of clips that must stay together (the segments of one YouTube video, see
:func:`recording_of`; in balanced AudioSet each YouTube id appears once, so there a group is a clip).
Three greedy steps, after one seeded shuffle of the groups:

1. cover: rarest label first, each part gets one group of every label that two or more groups
   carry, so every such class keeps examples on both sides (with 10% held out, proportional
   shares alone would give a label of fewer than 10 clips no validation example);
2. stratify: iterative stratification for multi-label data (Sechidis, Tsoumakas and Vlahavas,
   ECML PKDD 2011): the label with the fewest unplaced clips goes first, each of its groups to the
   part whose per-label counts it brings closest to proportional (all of the group's labels, each
   weighed by 1 / its clips; with the original rule, which looks at that one label only, one seed
   of balanced AudioSet put 27 of a class's 60 clips in validation); ties go to the part furthest
   below its size;
3. fit size: groups are moved, cheapest first, until the held-out part has ``round(fraction *
   clips)`` clips: exactly that when every group is one clip, as close as the groups allow otherwise
   (on a list too small for both, the size wins over step 1's cover).
"""

from __future__ import annotations

import heapq
import math
import random
import re
from typing import Callable

from ..errors import DataError, UsageError
from .manifest import Clip, Manifest

# {YTID}_{start}_{end}: YouTube ids are 11 characters; DESED and the DCASE 2017 audio prefix a "Y"
_SEGMENT_ID = re.compile(r"^([A-Za-z0-9_-]{11,12})_\d+(?:\.\d+)?_\d+(?:\.\d+)?$")


def youtube_id(clip_id: str) -> str | None:
    """The YouTube id of an AudioSet-style segment id (``{YTID}_{start}_{end}``, optionally ``Y``-prefixed),
    else None."""
    match = _SEGMENT_ID.match(clip_id)
    if match is None:
        return None
    ytid = match.group(1)
    if len(ytid) == 12:
        if not ytid.startswith("Y"):
            return None
        ytid = ytid[1:]
    return ytid


def recording_of(clip: Clip) -> str:
    """The group a clip must not be separated from: its YouTube video when its id is a segment id (two
    segments of one video share the scene, the microphone and often the events), else the clip itself."""
    ytid = youtube_id(clip.clip_id)
    return f"youtube:{ytid}" if ytid is not None else f"clip:{clip.clip_id}"


def hold_out(manifest: Manifest, fraction: float, seed: int = 0,
             group: Callable[[Clip], str] = recording_of) -> tuple[Manifest, Manifest]:
    """Split ``manifest`` into ``(kept, held_out)``, ``round(fraction * len(manifest))`` clips held out.

    Both parts keep the manifest's class list and clip order; clips with the same ``group`` value land
    in the same part. The result depends only on the clips, ``fraction`` and ``seed`` (not on the
    process: no set or hash order is used). UsageError when ``fraction`` is not in (0, 1), DataError when the
    manifest is too small for both parts to get a clip.
    """
    if not 0.0 < fraction < 1.0:
        raise UsageError(f"the fraction to hold out must be above 0 and below 1, got {fraction}")
    n_clips = len(manifest)
    target = math.floor(fraction * n_clips + 0.5)  # round half up, not to even
    if not 0 < target < n_clips:
        raise DataError(f"cannot hold out {fraction} of {n_clips} clip(s): one part would be empty")
    keys = [group(clip) for clip in manifest.clips]
    members: dict[str, list[Clip]] = {}
    for key, clip in zip(keys, manifest.clips):
        members.setdefault(key, []).append(clip)
    if len(members) < 2:
        raise DataError(f"cannot hold out part of {n_clips} clip(s) that form one group (one recording)")
    split = _Split(members, fraction, target, random.Random(seed))
    split.cover()
    split.stratify()
    split.fit_size()
    parts: tuple[list[Clip], list[Clip]] = ([], [])
    for key, clip in zip(keys, manifest.clips):
        parts[split.part_of[key]].append(clip)
    return Manifest(parts[0], list(manifest.classes)), Manifest(parts[1], list(manifest.classes))


class _Split:
    """The state of one hold-out: part 0 is kept, part 1 held out; ``count[p][label]`` clips so far."""

    def __init__(self, members: dict[str, list[Clip]], fraction: float, target: int, rng: random.Random) -> None:
        self.members, self.rng = members, rng
        self.order = list(members)
        rng.shuffle(self.order)
        self.labels = {g: _label_counts(members[g]) for g in self.order}
        self.total: dict[str, int] = {}
        self.carriers: dict[str, list[str]] = {}  # the groups holding each label, in shuffled order
        for g in self.order:
            for label, k in self.labels[g].items():
                self.total[label] = self.total.get(label, 0) + k
                self.carriers.setdefault(label, []).append(g)
        self.share = (1.0 - fraction, fraction)
        self.size = [0, 0]
        self.target = (sum(len(m) for m in members.values()) - target, target)
        self.count: tuple[dict[str, int], dict[str, int]] = ({}, {})
        self.part_of: dict[str, int] = {}

    def assign(self, g: str, p: int) -> None:
        self.part_of[g] = p
        self.size[p] += len(self.members[g])
        for label, k in self.labels[g].items():
            self.count[p][label] = self.count[p].get(label, 0) + k

    def unassign(self, g: str) -> None:
        p = self.part_of.pop(g)
        self.size[p] -= len(self.members[g])
        for label, k in self.labels[g].items():
            self.count[p][label] -= k

    def wanted(self, p: int, label: str) -> float:
        return self.share[p] * self.total[label] - self.count[p].get(label, 0)

    def cover(self) -> None:
        """Rarest label first, give each part one group of every label that two or more groups carry."""
        for label in sorted(self.total, key=lambda name: (self.total[name], name)):
            for p in (1, 0):
                if len(self.carriers[label]) >= 2 and not self.count[p].get(label):
                    free = [g for g in self.carriers[label] if g not in self.part_of]
                    if free:  # the smallest group: a large one could overfill the held-out part
                        self.assign(min(free, key=lambda g: len(self.members[g])), p)

    def stratify(self) -> None:
        """Iterative stratification: the label with the fewest unplaced clips goes first, each of its
        groups to the part whose label counts it brings closest to proportional."""
        remaining = {label: n - self.count[0].get(label, 0) - self.count[1].get(label, 0)
                     for label, n in self.total.items()}
        while True:
            live = [label for label, n in remaining.items() if n > 0]
            if not live:
                break
            label = min(live, key=lambda name: (remaining[name], name))
            for g in self.carriers[label]:
                if g not in self.part_of:
                    self.assign(g, self._choose(g))
                    for other, k in self.labels[g].items():
                        remaining[other] -= k
        for g in self.order:  # clips without labels fill the parts towards their sizes
            if g not in self.part_of:
                self.assign(g, self._choose(g))

    def _choose(self, g: str) -> int:
        """The part where ``g`` brings the label counts closest to proportional; a tie (e.g. no labels)
        goes to the part furthest below its size, then to a coin."""
        def rank(p: int) -> tuple[float, float]:
            return -self._cost(g, p, 1), (self.target[p] - self.size[p]) / self.target[p]

        first, second = rank(0), rank(1)
        if first == second:
            return self.rng.randrange(2)
        return 0 if first > second else 1

    def _cost(self, g: str, p: int, sign: int) -> float:
        """How much adding (``sign`` 1) or removing (-1) ``g``'s clips moves part ``p``'s label counts away
        from proportional, each label weighed by 1 / its clips (a clip of a rare label matters more)."""
        cost = 0.0
        for label, k in self.labels[g].items():
            off = -self.wanted(p, label)
            cost += (abs(off + sign * k) - abs(off)) / self.total[label]
        return cost

    def fit_size(self) -> None:
        """Stratification leaves the held-out part a few clips off its size: move the groups whose move
        disturbs the label balance least (a lazy greedy: a cost is recomputed when its group comes up).
        A part's last clip of a label the other part also has moves only when nothing else can: the
        size asked for wins over covering every class (a tiny list cannot have both)."""
        for protect in (True, False):
            source = 1 if self.size[1] > self.target[1] else 0
            heap = [(self._move_cost(g, source), i, g) for i, g in enumerate(self.order) if self.part_of[g] == source]
            heapq.heapify(heap)
            while self.size[1] != self.target[1] and heap:
                _, i, g = heapq.heappop(heap)
                if len(self.members[g]) > abs(self.size[1] - self.target[1]) or (
                        protect and self._last_of_a_label(g, source)):
                    continue
                cost = self._move_cost(g, source)
                if heap and cost > heap[0][0]:  # earlier moves made it dearer: back in line
                    heapq.heappush(heap, (cost, i, g))
                    continue
                self.unassign(g)
                self.assign(g, 1 - source)

    def _last_of_a_label(self, g: str, p: int) -> bool:
        return any(self.count[p][label] == k and self.count[1 - p].get(label, 0) > 0
                   for label, k in self.labels[g].items())

    def _move_cost(self, g: str, source: int) -> float:
        return self._cost(g, source, -1) + self._cost(g, 1 - source, 1)


def _label_counts(clips: list[Clip]) -> dict[str, int]:
    """Clips per label, keys in sorted order (frozenset iteration order changes between processes)."""
    counts: dict[str, int] = {}
    for clip in clips:
        for label in sorted(clip.labels):
            counts[label] = counts.get(label, 0) + 1
    return counts
