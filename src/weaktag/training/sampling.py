"""Which clips each training step sees, on one process or on many (DDP).

One seeded global order per epoch, cut into global batches of ``batch_size x world_size`` clips;
each rank takes its share of every global batch. So a run on N processes with batch size B sees
the same global batches as a run on one process with batch size N x B, whatever N is, and a
resumed run sees the same batches as an uninterrupted one (the order depends only on the seed and
the epoch). Strongly labelled clips of a global batch are dealt to the ranks first, round robin,
so that a batch mixing weakly and strongly labelled clips gives every rank its share of the strong
ones (a rank without any would drop the strong attention term from its half of the gradient).

With unlabelled clips (the mean teacher's, ``num_unlabeled`` > 0) every global batch holds labelled and
unlabelled clips in a fixed proportion (:func:`weaktag.supervision.mean_teacher.batch_split` of the global
batch), each dealt to the ranks round robin, so every rank has its share of both. An epoch is one pass over
the labelled clips; the unlabelled ones are drawn from an endless stream of seeded permutations of them,
epoch e starting where epoch e - 1 stopped, so that every unlabelled clip is seen as often as the others
and the batches still depend only on the seed and the epoch.

Validation is sharded without padding (rank r takes clips r, r + N, ...): no clip is repeated, so the
metrics gathered over the ranks are those of the whole validation set (see ``WeakTagModule``).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from ..supervision.mean_teacher import batch_split


def process_group() -> tuple[int, int]:
    """(rank, world size) of the running process group; (0, 1) outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _Epoch:
    """Holds the epoch for a batch sampler: Lightning calls ``set_epoch`` on ``batch_sampler.sampler``."""

    def __init__(self) -> None:
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class GlobalBatchSampler(Sampler[list[int]]):
    """Training batches of one rank, cut from one global order per (seed, epoch); see the module doc.

    The rank and world size are read when iterating (after Lightning has started the process group),
    unless given. The last global batch may be short; with fewer labelled clips than ranks it is dropped,
    since every rank must take the same number of steps. ``has_strong`` lists the labelled clips (indices
    0 to n - 1); ``num_unlabeled`` unlabelled ones are indices n, n + 1, ... (``weaktag.data.WithUnlabeled``),
    ``unlabeled_fraction`` of every global batch.
    """

    def __init__(self, has_strong: Sequence[bool], batch_size: int, seed: int = 0, shuffle: bool = True,
                 rank: int | None = None, world_size: int | None = None, num_unlabeled: int = 0,
                 unlabeled_fraction: float = 0.0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, not {batch_size}")
        self.has_strong = [bool(s) for s in has_strong]
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.num_unlabeled = num_unlabeled
        self.unlabeled_fraction = unlabeled_fraction
        self._rank, self._world = rank, world_size
        self.sampler = _Epoch()  # where Lightning sets the epoch before each one

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def _group(self) -> tuple[int, int]:
        if self._rank is not None and self._world is not None:
            return self._rank, self._world
        return process_group()

    def _labeled_per_batch(self, world: int) -> tuple[int, int]:
        """(labelled, unlabelled) clips of a full global batch."""
        size = self.batch_size * world
        if not self.num_unlabeled:
            return size, 0
        labeled, unlabeled = batch_split(size, self.unlabeled_fraction)
        if labeled < world:
            raise ValueError(f"a global batch of {size} clips with a share of {self.unlabeled_fraction} unlabelled "
                             f"ones leaves {labeled} labelled clips for {world} devices: raise train.batch_size "
                             "or lower mean_teacher.unlabeled_fraction")
        return labeled, unlabeled

    def global_batches(self) -> list[list[int]]:
        """This epoch's global batches (the clips of one step over all ranks): labelled clips, then unlabelled."""
        n = len(self.has_strong)
        _, world = self._group()
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(n, generator=generator).tolist()
        else:
            order = list(range(n))
        size, unlabeled = self._labeled_per_batch(world)
        batches = [order[start : start + size] for start in range(0, n, size)]
        if batches and len(batches[-1]) < world:
            batches.pop()
        if not unlabeled:
            return batches
        # a short last batch keeps the proportion
        counts = [unlabeled if len(b) == size else int(len(b) * unlabeled / size + 0.5) for b in batches]
        stream = self._unlabeled_stream(self.epoch * sum(counts), sum(counts))
        out, taken = [], 0
        for members, count in zip(batches, counts):
            out.append(members + stream[taken : taken + count])
            taken += count
        return out

    def _unlabeled_stream(self, start: int, count: int) -> list[int]:
        """Positions ``start`` to ``start + count`` of the endless stream of unlabelled indices: permutation k
        of them (seeded by seed and k) after permutation k - 1."""
        m, n = self.num_unlabeled, len(self.has_strong)
        out: list[int] = []
        for k in range(start // m, (start + count - 1) // m + 1 if count else start // m):
            if self.shuffle:
                generator = torch.Generator().manual_seed((self.seed * 1_000_003 + 7_919 * (k + 1)) % (2**63 - 1))
                cycle = torch.randperm(m, generator=generator).tolist()
            else:
                cycle = list(range(m))
            out.extend(n + i for i in cycle)
        first = start - (start // m) * m
        return out[first : first + count]

    def __iter__(self) -> Iterator[list[int]]:
        rank, world = self._group()
        n = len(self.has_strong)
        for members in self.global_batches():
            labeled = [i for i in members if i < n]
            strong_first = [i for i in labeled if self.has_strong[i]] + [i for i in labeled if not self.has_strong[i]]
            yield strong_first[rank::world] + [i for i in members if i >= n][rank::world]

    def __len__(self) -> int:
        n, (_, world) = len(self.has_strong), self._group()
        size, _ = self._labeled_per_batch(world)
        full, rest = divmod(n, size)
        return full + (1 if rest >= world else 0)


class ShardSampler(Sampler[list[int]]):
    """Evaluation batches of one rank: clips ``rank, rank + world, ...`` in order, none repeated."""

    def __init__(self, num_clips: int, batch_size: int) -> None:
        self.num_clips = num_clips
        self.batch_size = batch_size

    def _mine(self) -> list[int]:
        rank, world = process_group()
        return list(range(rank, self.num_clips, world))

    def __iter__(self) -> Iterator[list[int]]:
        mine = self._mine()
        for start in range(0, len(mine), self.batch_size):
            yield mine[start : start + self.batch_size]

    def __len__(self) -> int:
        return -(-len(self._mine()) // self.batch_size)
