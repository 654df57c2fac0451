"""Decoded short recordings into batched forward passes, one launched while the previous one is finished
(see :mod:`.engine`: "Short files and batches")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from ..geometry import TimeGrid
from .backends import Backend, Outputs
from .chunking import Raw, Spectrogram
from .results import TagFailure, TagResult
from .settings import ChunkPlan

#: (index, audio or None, why not) for each decoded recording
Decoded = tuple[int, "np.ndarray | None", "str | None"]
Progress = Callable[[float], None]


@dataclass
class _InFlight:
    """A batch of short files whose forward pass was launched and not yet collected."""

    group: list[tuple[int, np.ndarray]]  # (index into sources, audio)
    batch: np.ndarray
    collect: Callable[[], Outputs] | None
    error: str | None = None


@dataclass(frozen=True)
class Batching:
    """What batching needs of a tagger: its backend, grid and plan, and how a recording's outputs end."""

    runner: Backend
    grid: TimeGrid
    plan: ChunkPlan
    batch_size: int
    pad_batches: bool
    spectrogram: Spectrogram | None
    finish: Callable[[str, Raw], TagResult]  # stitched outputs -> result
    # a recording longer than one pass, streamed through chunks
    stream: Callable[[str, np.ndarray, Progress | None], TagResult | TagFailure]

    def batch_limit(self, length: int) -> int:
        return max(1, min(self.batch_size, self.plan.max_batch_samples // max(length, 1)))

    def group_key(self, length: int) -> int:
        length = max(length, self.grid.min_samples)
        if self.pad_batches:
            rate = self.grid.sample_rate
            return int(math.ceil(length / rate)) * rate
        return length

    def tag_decoded(self, decoded: Iterator[Decoded], names: Sequence[str],
                    progress: Progress | None) -> Iterator[tuple[int, TagResult | TagFailure]]:
        """Tag decoded recordings ``(index, audio or None, why not)``: equal-length ones (or, with
        ``pad_batches``, similar ones) in batches, one launched while the previous one is finished;
        a recording longer than one pass is streamed through chunks."""
        single_pass = self.plan.single_pass_samples
        pending: dict[int, list[tuple[int, np.ndarray]]] = {}
        inflight: list[_InFlight] = []  # at most one: the batch the backend is working on

        def run(group: list[tuple[int, np.ndarray]]) -> Iterator[tuple[int, TagResult | TagFailure]]:
            # launch this batch, then finish the previous one while the backend works on it
            inflight.append(self._launch(group))
            if len(inflight) > 1:
                yield from self._collect(inflight.pop(0), names, progress)

        for i, wave, reason in decoded:
            if wave is None:
                yield i, TagFailure(names[i], reason or "cannot decode audio")
                continue
            if len(wave) >= single_pass:  # longer than one pass (a file: its header under-stated its length)
                yield i, self.stream(names[i], wave, progress)
                continue
            key = self.group_key(len(wave))
            group = pending.setdefault(key, [])
            group.append((i, wave))
            if len(group) >= self.batch_limit(key):
                yield from run(pending.pop(key))
            elif sum(len(w) for g in pending.values() for _, w in g) > 2 * self.plan.max_batch_samples:
                largest = max(pending, key=lambda k: sum(len(w) for _, w in pending[k]))
                yield from run(pending.pop(largest))
        for key in sorted(pending):
            yield from run(pending[key])
        for flight in inflight:
            yield from self._collect(flight, names, progress)

    def _launch(self, group: list[tuple[int, np.ndarray]]) -> _InFlight:
        """Start one forward pass over short files (equal length, or padded to the longest with ``pad_batches``)."""
        width = self.grid.padded_samples(max(len(w) for _, w in group))  # zeros up to whole segments
        batch = self.runner.host_batch(len(group), width)  # pinned on CUDA: the copy to the GPU does not wait
        for row, (_, wave) in enumerate(group):
            batch[row, : len(wave)] = wave
            batch[row, len(wave) :] = 0.0
        try:
            return _InFlight(group, batch, self.runner.launch(batch))
        except Exception as exc:
            return _InFlight(group, batch, None, f"{type(exc).__name__}: {exc}")

    def _collect(self, flight: _InFlight, names: Sequence[str],
                 progress: Progress | None) -> Iterator[tuple[int, TagResult | TagFailure]]:
        """Wait for a launched batch and turn its rows into results (or every file's failure)."""
        error = flight.error
        if flight.collect is not None:
            try:
                xa, xb = flight.collect()
            except Exception as exc:  # e.g. a CUDA error, reported when the queued work ran
                error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            for i, _ in flight.group:
                yield i, TagFailure(names[i], error)
            return
        batch = flight.batch
        for row, (i, wave) in enumerate(flight.group):
            t = self.grid.segments_for_samples(len(wave))
            raw = Raw(len(wave), xa[row, :, :t], None if xb is None else xb[row, :, :t])
            if self.spectrogram is not None:
                self.spectrogram.attach(raw, batch[row : row + 1], t)
            if progress is not None:
                progress(len(wave) / self.grid.sample_rate)
            yield i, self.finish(names[i], raw)
