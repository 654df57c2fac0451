"""Reading files for the engine: header probes and whole-file decodes, in this process or in worker processes.

:func:`probe_files` reads every header (length, frames, seconds) and :func:`decode_files` reads,
decodes and resamples short files whole, both in the order given. With a :class:`DecodePool`
(``TaggingConfig.decode_workers > 0``) the work runs in persistent worker processes (a
:class:`torch.utils.data.DataLoader` with ``num_workers``), a bounded number of files ahead
(``prefetch`` tasks of ``files_per_task`` files per worker), while the calling process runs the network.
Both paths run the same functions and yield the same values in the same order, so tags do not
depend on the number of workers, and a bad file comes back as the same reason string.

How audio comes back: on Linux (fork) workers write it into a ring of slots in anonymous shared
memory, made before they start, and send only its length; the engine copies it out. That costs
the main process one copy; a tensor through ``/dev/shm`` (what a DataLoader does by default, and
the fallback here for other start methods or a file longer than its slot) costs a socket
handshake, a mapping and page faults per file, measured about as much as decoding a 16 kHz WAV.
A slot is reused only after its audio was copied out: tasks are handed out in order, at most
``workers * prefetch`` ahead of the one being consumed, and the ring has one task's slots more.

Long files are not decoded here: the engine streams them block by block in its own process
(memory flat in file length), after the short ones.
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing
import sys
import warnings
from typing import Any, Iterable, Iterator, Sequence, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..audio import READ_BLOCK, AudioError, iter_audio_blocks, probe_audio
from ..errors import EnvironmentProblem

#: a header: (length at the model's rate, frames in the file, seconds), or why it cannot be used
Probe = Union[tuple[int, int, float], str]
PROBE_CHUNK = 64  # headers per worker task: one small message instead of 64
FILES_PER_TASK = 4  # decodes per worker task: a DataLoader round trip costs ~0.1-0.2 ms of the main process


def _reason(exc: Exception) -> str:
    """What errors.tsv says about a file (the same words in this process and in a worker)."""
    return exc.reason if isinstance(exc, AudioError) else f"{type(exc).__name__}: {exc}"


def probe_file(path: str, rate: int) -> Probe:
    """The header of ``path`` as :func:`weaktag.audio.probe_audio` reads it, or the reason it is unusable."""
    try:
        return probe_audio(path, rate)
    except Exception as exc:  # anything about this one file: report it, go on
        return _reason(exc)


def decode_file(path: str, rate: int, frames: int, allow_silent: bool) -> tuple[np.ndarray | None, str | None]:
    """``(mono float32 audio at rate, None)`` for a short file read in one go, or ``(None, reason)``."""
    try:
        blocks = list(iter_audio_blocks(path, rate, block_frames=max(READ_BLOCK, frames + 1),
                                        allow_silent=allow_silent))
        return (blocks[0] if len(blocks) == 1 else np.concatenate(blocks)), None
    except Exception as exc:
        return None, _reason(exc)


class _Tasks(Dataset):
    """A map-style dataset whose "index" is the task itself (the sampler hands out tasks)."""

    def __init__(self, ring: np.ndarray | None) -> None:
        self.ring = ring  # (slots, slot samples) in shared memory, or None: send tensors

    def __getitem__(self, task: tuple) -> Any:
        if task[0] == "probe":
            _, paths, rate = task
            return [probe_file(p, rate) for p in paths]
        _, first_slot, files, rate, allow_silent = task
        out = []
        for k, (path, frames) in enumerate(files):
            wave, reason = decode_file(path, rate, frames, allow_silent)
            if wave is not None and self.ring is not None and len(wave) <= self.ring.shape[1]:
                self.ring[first_slot + k, : len(wave)] = wave
                out.append((len(wave), None))
            else:  # no ring, or longer than its header said: a tensor, through /dev/shm
                out.append((None if wave is None else torch.from_numpy(wave), reason))
        return out


def _as_is(item: Any) -> Any:  # module level: a spawned worker unpickles it by name
    return item


class _Plan:
    """The loader's sampler: the tasks of the current run (a new run, a new list)."""

    def __init__(self) -> None:
        self.tasks: list[tuple] = []

    def __iter__(self) -> Iterator[tuple]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)


@contextlib.contextmanager
def _quiet_about_worker_count() -> Iterator[None]:
    # "This DataLoader will create N worker processes ... suggested max is M": the user asked for N
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*worker processes in total.*")
        yield


class DecodePool:
    """``workers`` persistent processes that probe and decode files, in order, ``prefetch`` tasks each ahead.

    Made once per :class:`~weaktag.inference.Tagger` (starting processes takes tens of ms each) and
    reused by every run; :meth:`close` (or the tagger's) ends them. ``slot_samples``: the longest
    audio that goes through the shared ring (the engine's single-pass length).
    """

    def __init__(self, workers: int, slot_samples: int, prefetch: int = 2,
                 files_per_task: int = FILES_PER_TASK) -> None:
        if workers < 1:
            raise ValueError(f"a decode pool needs at least one worker, not {workers}")
        self.workers = workers
        self.files_per_task = files_per_task
        # tasks in flight: at most workers * prefetch beyond the one being consumed
        self.regions = workers * prefetch + 1
        self.ring: np.ndarray | None = None
        context = None
        if sys.platform == "linux":  # fork: workers inherit the ring; anonymous, so no /dev/shm limit
            context = multiprocessing.get_context("fork")
            shared = mmap.mmap(-1, self.regions * files_per_task * slot_samples * 4)  # MAP_SHARED by default
            self.ring = np.frombuffer(shared, dtype=np.float32).reshape(self.regions * files_per_task, slot_samples)
        self._plan = _Plan()
        with _quiet_about_worker_count():
            self._loader: DataLoader | None = DataLoader(
                _Tasks(self.ring), sampler=self._plan, batch_size=None, num_workers=workers, collate_fn=_as_is,
                persistent_workers=True, prefetch_factor=prefetch, multiprocessing_context=context)
        self.busy = False

    def run(self, tasks: Sequence[tuple]) -> Iterator[Any]:
        """The results of ``tasks``, in order; at most ``workers * prefetch`` are worked on ahead of the consumer."""
        if self._loader is None:
            raise RuntimeError("this decode pool is closed")
        if not tasks:
            return
        self.busy = True
        self._plan.tasks = list(tasks)
        try:
            with _quiet_about_worker_count():
                iterator = iter(self._loader)
            for item in iterator:
                yield item
        except RuntimeError as exc:
            if "DataLoader worker" not in str(exc):
                raise
            self.close()  # its workers are gone: a later run would hang on them
            raise EnvironmentProblem(f"a decode worker process died ({' '.join(str(exc).split())}); rerun with "
                               "decode_workers=0 (weaktag tag --workers 0) to decode in this process") from None
        finally:  # also when the consumer stops early: the next run's reset drops what is left
            self._plan.tasks = []
            self.busy = False

    def close(self) -> None:
        """End the worker processes (idempotent)."""
        loader, self._loader = self._loader, None
        if loader is not None and getattr(loader, "_iterator", None) is not None:
            loader._iterator._shutdown_workers()  # what its __del__ would do, now rather than at collection
            loader._iterator = None


def probe_files(paths: Sequence[str], rate: int, pool: DecodePool | None = None) -> Iterator[tuple[int, Probe]]:
    """``(index, probe)`` for every path, in order."""
    if pool is not None and pool.busy:  # another run (an interleaved iter_tag) holds the workers
        pool = None
    if pool is None:
        for i, path in enumerate(paths):
            yield i, probe_file(path, rate)
        return
    chunks = [list(paths[i : i + PROBE_CHUNK]) for i in range(0, len(paths), PROBE_CHUNK)]
    i = 0
    for probes in pool.run([("probe", chunk, rate) for chunk in chunks]):
        for probe in probes:
            yield i, probe
            i += 1


def decode_files(items: Iterable[tuple[int, str, int]], rate: int, allow_silent: bool,
                 pool: DecodePool | None = None) -> Iterator[tuple[int, np.ndarray | None, str | None]]:
    """``(index, audio or None, None or reason)`` for every ``(index, path, frames)`` item, in order."""
    items = list(items)
    if pool is not None and pool.busy:
        pool = None
    if pool is None:
        for i, path, frames in items:
            yield (i, *decode_file(path, rate, frames, allow_silent))
        return
    k = pool.files_per_task
    groups = [items[j : j + k] for j in range(0, len(items), k)]
    # task t writes slots (t mod regions) * k ...: reused only after the consumer copied them out
    tasks = [("decode", (t % pool.regions) * k, [(path, frames) for _, path, frames in group], rate, allow_silent)
             for t, group in enumerate(groups)]
    for task, group, results in zip(tasks, groups, pool.run(tasks)):
        for slot, (i, _, _), (got, reason) in zip(range(task[1], task[1] + k), group, results):
            if isinstance(got, int):
                yield i, pool.ring[slot, :got].copy(), None  # a copy: the slot is reused a few tasks later
            else:
                yield i, None if got is None else got.numpy(), reason
