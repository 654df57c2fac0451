"""Long recordings through the network chunk by chunk, stitched into one :class:`Raw` (see :mod:`.engine`),
and the time-pooled log-mel kept beside them for timelines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from ..audio import LogMel, pad_to_segments
from ..geometry import TimeGrid
from .backends import Backend
from .settings import ChunkPlan


@dataclass
class Raw:
    """Stitched outputs of one recording before pooling."""

    samples: int
    xa: np.ndarray  # (C, T)
    xb: np.ndarray | None  # the head's other pooling inputs (weaktag.models.pool_inputs): X^b for attention
    spectrogram: np.ndarray | None = None
    spectrogram_pool: int = 1  # log-mel frames per spectrogram column


class Spectrogram:
    """The log-mel of a tagged recording, averaged over time to at most ``columns`` columns."""

    def __init__(self, grid: TimeGrid, columns: int) -> None:
        self.grid = grid
        self.columns = columns
        self.logmel = LogMel(grid.frontend)

    def pool_frames(self, samples: int) -> int:
        """Frames per spectrogram column: a power of two, so that a file gives at most ``columns``."""
        frames = max(1, samples // self.grid.frontend.hop)
        p = 1
        while frames / p > self.columns:
            p *= 2
        return p

    def __call__(self, batch: np.ndarray, lo: int, hi: int, pool: int) -> np.ndarray:
        """(B, mel bands, columns) log-mel of segments [lo, hi), averaged over ``pool`` frames per column."""
        with torch.inference_mode():
            logmel = self.logmel(torch.from_numpy(np.ascontiguousarray(batch))).numpy()  # (B, F, mel bands)
        stride = self.grid.time_stride
        frames = logmel[:, lo * stride : hi * stride]
        b, f, m = frames.shape
        f -= f % pool
        pooled = frames[:, :f].reshape(b, f // pool, pool, m).mean(axis=2)
        return np.ascontiguousarray(pooled.transpose(0, 2, 1), dtype=np.float32)

    def attach(self, raw: Raw, batch: np.ndarray, segments: int) -> None:
        """``raw``'s spectrogram from its one-pass input ``batch`` (1, samples)."""
        raw.spectrogram_pool = self.pool_frames(raw.samples)
        raw.spectrogram = self(batch, 0, segments, raw.spectrogram_pool)[0]


def stream_chunks(blocks: Iterator[np.ndarray], runner: Backend, grid: TimeGrid, plan: ChunkPlan, chunk_batch: int,
                  spectrogram: Spectrogram | None = None,
                  progress: Callable[[float], None] | None = None) -> Raw:
    """Stream blocks of audio at the model's rate through the network chunk by chunk (see :mod:`.engine`)."""
    core = plan.chunk_segments
    ctx = plan.context_segments
    segment_samples = grid.segment_samples
    stride = grid.time_stride
    rate = grid.sample_rate
    pieces: list[np.ndarray] = []
    buffered = 0  # samples in pieces
    buf_start = 0  # global index of the first buffered sample
    next_seg = 0  # first segment not yet scheduled
    pending: list[tuple[np.ndarray, int, int]] = []  # (chunk input, keep from, keep to) in local segments
    xa_parts: list[np.ndarray] = []
    xb_parts: list[np.ndarray] = []
    spec_parts: list[np.ndarray] = []

    def flush() -> None:
        if not pending:
            return
        batch = np.stack([p[0] for p in pending])
        xa, xb = runner(batch)
        for row, (_, lo, hi) in enumerate(pending):
            xa_parts.append(xa[row, :, lo:hi])
            if xb is not None:
                xb_parts.append(xb[row, :, lo:hi])
            if spectrogram is not None:  # one column per segment while streaming
                spec_parts.append(spectrogram(batch[row : row + 1], lo, hi, stride)[0])
            if progress is not None:
                progress((hi - lo) * segment_samples / rate)
        pending.clear()

    def schedule(chunk: np.ndarray, lo: int, hi: int) -> None:
        if pending and (len(pending) >= chunk_batch or len(pending[0][0]) != len(chunk)):
            flush()
        pending.append((chunk, lo, hi))

    for block in blocks:
        pieces.append(block)
        buffered += len(block)
        while buf_start + buffered >= (next_seg + core + ctx) * segment_samples:
            buffer = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
            start = max(0, next_seg - ctx) * segment_samples
            stop = (next_seg + core + ctx) * segment_samples
            chunk = buffer[start - buf_start : stop - buf_start].copy()
            lo = next_seg - start // segment_samples
            schedule(chunk, lo, lo + core)
            next_seg += core
            # never before the start of the file: with chunks shorter than the context this
            # used to go negative and slice from the END of the buffer, silently dropping audio
            keep_from = max(0, next_seg - ctx) * segment_samples
            buffer = buffer[keep_from - buf_start :]
            pieces, buffered, buf_start = [buffer], len(buffer), keep_from
    total = buf_start + buffered
    if next_seg == 0:  # short: one pass over the whole recording
        wave = pad_to_segments(np.concatenate(pieces) if pieces else np.zeros(0, np.float32), grid)
        xa, xb = runner(wave[None, :])
        t = grid.segments_for_samples(total)
        raw = Raw(total, xa[0, :, :t], None if xb is None else xb[0, :, :t])
        if spectrogram is not None:
            spectrogram.attach(raw, wave[None, :], t)
        if progress is not None:
            progress(total / rate)
        return raw
    t_total = grid.segments_for_samples(total)
    if next_seg < t_total:  # the rest, up to the end of the file, zero-padded to whole segments
        buffer = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        start = max(0, next_seg - ctx) * segment_samples
        lo = next_seg - start // segment_samples
        # start is on the segment grid, so this pads the file's end as a whole-file pass does
        schedule(pad_to_segments(buffer[start - buf_start :], grid), lo, lo + t_total - next_seg)
    flush()
    xa = np.concatenate(xa_parts, axis=-1)
    xb = np.concatenate(xb_parts, axis=-1) if xb_parts else None
    raw = Raw(total, xa, xb)
    if spec_parts:  # one column per segment so far; pool further when that is more than wanted
        spec = np.concatenate(spec_parts, axis=-1)
        factor = max(1, spectrogram.pool_frames(total) // stride) if spectrogram is not None else 1
        n = spec.shape[1] - spec.shape[1] % factor
        raw.spectrogram = spec[:, :n].reshape(spec.shape[0], n // factor, factor).mean(axis=2)
        raw.spectrogram_pool = stride * factor
    return raw
