"""Which clips each training step sees, on one process or on many (DDP).

One seeded global order per epoch, cut into global batches of ``batch_size x world_size`` clips;
each rank takes its share of every global batch. So a run on N processes with batch size B sees
the same global batches as a run on one process with batch size N x B, whatever N is, and a
resumed run sees the same batches as an uninterrupted one (the order depends only on the seed and
the epoch). Strongly labelled clips of a global batch are dealt to the ranks first, round robin,
so that a batch mixing weakly and strongly labelled clips gives every rank its share of the strong
ones (a rank without any would drop the strong attention term from its half of the gradient).

Validation is sharded without padding (rank r takes clips r, r + N, ...): no clip is repeated, so the
metrics gathered over the ranks are those of the whole validation set (see ``WeakTagModule``).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


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
    unless given. The last global batch may be short; with fewer clips than ranks it is dropped, since
    every rank must take the same number of steps.
    """

    def __init__(self, has_strong: Sequence[bool], batch_size: int, seed: int = 0, shuffle: bool = True,
                 rank: int | None = None, world_size: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, not {batch_size}")
        self.has_strong = [bool(s) for s in has_strong]
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
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

    def global_batches(self) -> list[list[int]]:
        """This epoch's global batches (the clips of one step over all ranks)."""
        n = len(self.has_strong)
        _, world = self._group()
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(n, generator=generator).tolist()
        else:
            order = list(range(n))
        size = self.batch_size * world
        batches = [order[start : start + size] for start in range(0, n, size)]
        if batches and len(batches[-1]) < world:
            batches.pop()
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        rank, world = self._group()
        for members in self.global_batches():
            strong_first = [i for i in members if self.has_strong[i]] + [i for i in members if not self.has_strong[i]]
            yield strong_first[rank::world]

    def __len__(self) -> int:
        n, (_, world) = len(self.has_strong), self._group()
        size = self.batch_size * world
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
