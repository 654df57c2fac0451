"""The tagging engine: a checkpoint over recordings of any length -> clip tags, events, X^a and attention.

``Tagger.from_checkpoint(path).tag(path_or_array)`` returns a :class:`TagResult`;
:meth:`Tagger.iter_tag` tags many files in batches. Settings come from one typed object,
:class:`weaktag.inference.settings.TaggingConfig`, shared with the CLI. Times and sample counts below are
those of VGGish's grid; the engine reads them from the model's :class:`~weaktag.geometry.TimeGrid`.

Long files: memory is flat in file length
-----------------------------------------
The network is fully convolutional in time: output segment ``t`` pools frames
``16t .. 16t+15`` (input samples from ``2560 t``) and its receptive field reaches 43 frames
further on either side (3x3 convolutions and 2x2 pools: 1+1+2+2+4+4+4+8+8+8+16 = 43 with the
(3 x 1) L7), i.e. about 0.45 s of audio beyond the segment. A file longer than
``chunk_seconds + context_seconds`` is read block by block (``soundfile``) and resampled as
a stream (``soxr.ResampleStream``), and the network runs on chunks of ``chunk_seconds`` (a
whole number of segments, at least one) plus ``context_seconds`` of real audio on each side
(rounded up to whole segments; by default the backbone's declared receptive field in whole
segments plus one: 0.64 s = 4 segments for VGGish). Chunk boundaries fall on segment
boundaries, so every chunk sees the same frame grid as a whole-file pass, and of each chunk
only the central segments are kept. Because the context covers the receptive field, the
kept X^a and X^b are those of a whole-file pass up to float32 rounding: measured max
difference 6e-8 on a 3-minute file (``tests/unit/inference/test_inference.py`` asserts ``<= 1e-5`` for every
output with 10.24 s and 30.72 s chunks; with only 1 segment of context the edges do show,
about 4e-2). Attention pooling over the whole file is
then recomputed from the stitched X^a and X^b: ``A = X^b / sum_t X^b``, ``y = sum_t A X^a``
(pooling models: ``y = mean_t X^a``; M&mnet: the ensemble of the mean macro logit and the
attention-weighted d-hat, from the stitched per-segment macro and attention logits,
:func:`weaktag.models.pool_recording`), which is exactly what a whole-file pass computes.
Peak memory depends on ``chunk_seconds`` and ``chunk_batch``, not on the file's length;
the stitched outputs are small (C x T per matrix, T = 22,500 per hour).

Short files and batches
-----------------------
Files up to ``chunk_seconds + context_seconds`` are tagged in one pass and batched with
other files of exactly the same length (after resampling to 16 kHz), so a batch result is
the result of tagging the file alone (up to float32 rounding). Files are sorted by length
first, so a folder of equal-length clips runs in full batches. ``pad_batches=True`` also
batches files of different lengths (zero-padded to the longest of a group, with group
lengths within one second; outputs cropped to each file's own segments, pooling recomputed);
that changes the last few segments of the shorter files slightly, so it is off by default.
Every recording is zero-padded at its end to whole segments, so the last segment reaches or passes its
end (:meth:`~weaktag.geometry.TimeGrid.segments_for_samples`: a 10 s file gets 63 segments, 10.08 s;
event offsets are clipped to the duration); a clip shorter than one segment gives one segment. Recordings
under ``MIN_AUDIO_SECONDS`` (0.1 s) and, unless ``skip_silent=False``, all-zero ones are refused.

Decoding beside the network
---------------------------
With ``decode_workers > 0`` headers are read and short files decoded and resampled in worker
processes (:mod:`.decoding`), in the same order as in-process, so batches and results are the
same; long files stream in this process as above. Forward passes are queued one batch ahead
(:meth:`Backend.launch`): on CUDA the GPU runs batch k+1 from pinned memory while this process
pools, decodes events and reports batch k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from ..audio import SILENT, AudioError, LogMel, array_blocks, iter_audio_blocks, pad_to_segments
from ..checkpoint import Checkpoint, load_checkpoint
from ..settings import check_setting
from .settings import TaggingConfig, tagging_config
from ..geometry import MIN_AUDIO_SECONDS
from ..models import pool_recording
from ..postprocess import ATTENTION_KINDS, OUTPUT_KINDS, EventSettings, decode_events
from .backends import (BACKENDS, Backend, BackendName, OnnxBackend, Outputs, TorchBackend, checkpoint_from_onnx,
                       resolve_device)
from .decoding import DecodePool, decode_files, probe_files
from .export import temporary_export
from .results import TagFailure, TagResult


def too_short(seconds: float) -> str:
    return f"too short: {seconds:.3f} s of audio, the minimum is {MIN_AUDIO_SECONDS} s"


@dataclass
class _Raw:
    """Stitched outputs of one recording before pooling."""

    samples: int
    xa: np.ndarray  # (C, T)
    xb: np.ndarray | None  # the head's other pooling inputs (weaktag.models.pool_inputs): X^b for attention
    spectrogram: np.ndarray | None = None
    spectrogram_pool: int = 1  # log-mel frames per spectrogram column


@dataclass
class _InFlight:
    """A batch of short files whose forward pass was launched and not yet collected."""

    group: list[tuple[int, np.ndarray]]  # (index into sources, audio)
    batch: np.ndarray
    collect: Callable[[], Outputs] | None
    error: str | None = None


class Tagger:
    """``Tagger.from_checkpoint(path).tag(path_or_array)`` -> :class:`TagResult`.

    ``settings`` (a :class:`~weaktag.inference.settings.TaggingConfig`) holds every option: batching,
    chunking of long files (see the module doc), silent-file handling, event overrides
    (``event_output``, ``event_thresholds``, ``median_filter_seconds``; None keeps the
    checkpoint's :class:`~weaktag.postprocess.EventSettings`), clip ``tag_thresholds`` (None:
    the checkpoint's), ``detect_events``, ``keep_spectrogram`` for timelines, ``num_threads``.
    Keyword ``options`` are the same fields, for short calls: ``Tagger(ckpt, chunk_seconds=10.24)``.
    ``backend`` "torch" or "onnxruntime" (which runs ``onnx_path``, exported on the fly to a
    temporary file, removed once loaded, when not given). ``device`` (default: ``settings.device``, "cpu") is cpu, cuda
    or cuda:N; a device this machine lacks is a ValueError. ``decode_workers`` processes decode
    files for :meth:`iter_tag` (see the module doc); :meth:`close` ends them.
    """

    def __init__(self, checkpoint: Checkpoint, device: str | torch.device | None = None, *,
                 settings: TaggingConfig | None = None, backend: BackendName = "torch",
                 onnx_path: str | Path | None = None, **options: Any) -> None:
        if device is not None:  # the argument wins over settings.device
            options["device"] = str(device)
        if settings is None:
            settings = tagging_config(**options)
        elif options:
            settings = tagging_config(**{**vars(settings), **options})
        self.settings = settings
        self.checkpoint = checkpoint
        self.grid = checkpoint.model.grid
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        # before anything slow (an ONNX export): a device this machine lacks is one line, at once
        self.device = resolve_device(settings.device, backend)
        self.backend = backend
        self._pool: DecodePool | None = None
        if settings.num_threads:
            torch.set_num_threads(settings.num_threads)
        if backend == "torch":
            self.runner: Backend = TorchBackend(checkpoint, self.device)
            self.model = self.runner.model
        else:  # onnxruntime (the name was checked above)
            if onnx_path is None:  # onnxruntime holds the graph in memory: the temporary file goes at once
                with temporary_export(checkpoint) as exported:
                    self.runner = OnnxBackend(exported, settings.num_threads, self.device)
            else:
                self.runner = OnnxBackend(Path(onnx_path), settings.num_threads, self.device)
            self.model = checkpoint.model.eval()
            if len(self.runner.meta["classes"]) != len(checkpoint.classes):
                raise ValueError(f"{onnx_path}: exported for {len(self.runner.meta['classes'])} classes, the "
                                 f"checkpoint has {len(checkpoint.classes)}")
        self.onnx_path = None if onnx_path is None else Path(onnx_path)
        grid = self.grid
        self.batch_size = settings.batch_size
        self.max_batch_samples = max(grid.min_samples, int(settings.max_batch_seconds * grid.sample_rate))
        # the config's range check lets NaN through (every comparison with NaN is false) and inf
        # overflows the rounding below: refuse both here with the setting's name
        for key in ("chunk_seconds", "context_seconds"):
            value = getattr(settings, key)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{key} must be a finite number of seconds, not {value}")
        # any chunk length works: it is rounded to whole segments (at least one), so chunk boundaries
        # fall on the network's frame grid
        self.chunk_segments = grid.segments_in(settings.chunk_seconds)
        context = settings.context_seconds
        if context is None:  # the receptive field in whole segments, plus one for the window's overhang
            self.context_segments = int(math.ceil(grid.context_frames / grid.time_stride)) + 1
        else:
            self.context_segments = max(1, int(math.ceil(context * grid.sample_rate / grid.segment_samples)))
        self.chunk_batch = settings.chunk_batch
        self.pad_batches = settings.pad_batches
        self.detect_events = settings.detect_events
        self.skip_silent = settings.skip_silent
        self.keep_spectrogram = settings.keep_spectrogram
        self.spectrogram_columns = settings.spectrogram_columns
        self._logmel = LogMel(grid.frontend) if settings.keep_spectrogram else None
        self.events_for = settings.events_for
        thresholds = settings.tag_thresholds
        self.set_tag_thresholds(checkpoint.tag_thresholds if thresholds is None else thresholds)
        self.event_settings = replace(checkpoint.events)
        self.configure_events(settings.event_output, settings.event_thresholds, settings.median_filter_seconds)

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device | None = None, **options: Any) -> "Tagger":
        """A tagger for a ``.pt`` checkpoint, or for an ONNX file written by ``weaktag export``.

        An ONNX file runs on onnxruntime; its metadata holds the classes, thresholds and event
        settings (the PyTorch weights are not needed).
        """
        path = Path(path)
        if path.suffix.lower() == ".onnx":
            backend = options.pop("backend", None)
            if backend not in (None, "onnxruntime"):
                raise ValueError(f"{path}: an exported ONNX file runs on the onnxruntime backend, not {backend!r}")
            options.pop("onnx_path", None)
            return cls(checkpoint_from_onnx(path), device, backend="onnxruntime", onnx_path=path, **options)
        if options.get("backend") is None:
            options["backend"] = "torch"
        return cls(load_checkpoint(path), device, **options)

    def close(self) -> None:
        """End the decode worker processes, if any were started (the tagger stays usable)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __enter__(self) -> "Tagger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def classes(self) -> list[str]:
        return self.checkpoint.classes

    @property
    def has_attention(self) -> bool:
        return self.runner.has_attention

    def set_tag_thresholds(self, thresholds: float | Sequence[float]) -> np.ndarray:
        """Clip thresholds: one value, or one per class (each in [0, 1]); returns them, one per class."""
        c = len(self.classes)
        check_setting(TaggingConfig, "tag_thresholds", thresholds, labels=self.classes)
        values = np.asarray(thresholds, dtype=float)
        if values.ndim > 1 or values.size not in (1, c):
            raise ValueError(f"tag thresholds: expected {c} values, got {values.shape}")
        self.tag_thresholds = np.broadcast_to(values, (c,)).copy()
        return self.tag_thresholds

    def configure_events(self, output: str | None = None, thresholds: float | Sequence[float] | None = None,
                         median_filter_seconds: float | Sequence[float] | None = None) -> EventSettings:
        """Override the checkpoint's event settings (None keeps the current value); returns the settings in use."""
        settings = replace(self.event_settings)
        if output is not None:
            settings.output = output
        if thresholds is not None:
            check_setting(TaggingConfig, "event_thresholds", thresholds, labels=self.classes)
            settings.thresholds = [float(t) for t in np.atleast_1d(np.asarray(thresholds, dtype=float))]
        if median_filter_seconds is not None:
            check_setting(TaggingConfig, "median_filter_seconds", median_filter_seconds, labels=self.classes)
            settings.median_filter_seconds = (float(median_filter_seconds) if np.isscalar(median_filter_seconds)
                                              else [float(x) for x in median_filter_seconds])
        if settings.output not in OUTPUT_KINDS:
            raise ValueError(f"event output must be one of {OUTPUT_KINDS}, not {settings.output!r}")
        if settings.output in ATTENTION_KINDS and not self.has_attention:
            raise ValueError(f"event output {settings.output!r} needs an attention model; this one pools "
                             "(use event output 'segment')")
        self._event_thr = settings.thresholds_for(self.classes)
        self.median_filter_segments = settings.filter_segments(self.classes, self.grid.segment_seconds)
        self.event_settings = settings
        return settings

    # ---------------------------------------------------------------- public tagging

    def tag(self, audio: str | Path | np.ndarray, name: str | None = None,
            sample_rate: int | None = None) -> TagResult:
        """Tag one file (any format soundfile reads) or a float array at ``sample_rate`` (mono or (N, channels);
        default: the model's rate).

        Raises :class:`~weaktag.audio.AudioError` for an unusable file: unreadable, empty, shorter
        than ``MIN_AUDIO_SECONDS``, or silent (unless ``skip_silent=False``).
        """
        rate = self.grid.sample_rate
        if isinstance(audio, np.ndarray):
            source = name or "<array>"
            blocks = array_blocks(audio, sample_rate or rate, rate, source, allow_silent=not self.skip_silent)
        else:
            source = name or str(audio)
            blocks = iter_audio_blocks(audio, rate, allow_silent=not self.skip_silent)
        raw = self._tag_blocks(blocks)
        if raw.samples < MIN_AUDIO_SECONDS * rate:
            raise AudioError(source, too_short(raw.samples / rate))
        return self._finish(source, raw)

    def iter_tag(self, sources: Sequence[str | Path], names: Sequence[str] | None = None,
                 progress: Callable[[float], None] | None = None,
                 on_total: Callable[[float], None] | None = None) -> Iterator[tuple[int, TagResult | TagFailure]]:
        """Tag many files, batching equal-length ones; yields ``(index into sources, result or failure)``.

        Results come in processing order (short files sorted by length first, then long files);
        a bad file yields a :class:`TagFailure` and the others go on. ``progress`` is called
        with the seconds of audio just finished; ``on_total`` once, before any tagging, with the
        seconds the readable headers announce. With ``decode_workers`` > 0 headers and short files
        are read in worker processes; batches, results and failures are the same.
        """
        names = [str(s) for s in sources] if names is None else list(names)
        short: list[tuple[int, int, int]] = []  # (16 kHz length, index, frames in the file)
        long: list[int] = []
        single_pass = self._single_pass_samples
        rate = self.grid.sample_rate
        allow_silent = not self.skip_silent
        pool = self._decode_pool(len(sources))
        announced = 0.0
        for i, probe in probe_files(sources, rate, pool):
            if isinstance(probe, str):
                yield i, TagFailure(names[i], probe)
                continue
            expected, frames, seconds = probe
            announced += seconds
            if seconds < MIN_AUDIO_SECONDS:
                yield i, TagFailure(names[i], too_short(seconds))
                continue
            if expected < single_pass:
                short.append((expected, i, frames))
            else:
                long.append(i)
        if on_total is not None:
            on_total(announced)
        short.sort()
        yield from self._tag_decoded(decode_files([(i, sources[i], frames) for _, i, frames in short], rate,
                                                  allow_silent, pool if len(short) > 1 else None), names, progress)
        for i in long:
            yield i, self._guarded(names[i], lambda i=i: self._tag_blocks(
                iter_audio_blocks(sources[i], rate, allow_silent=allow_silent), progress))

    def iter_tag_arrays(self, loaders: Sequence[Callable[[], np.ndarray]], names: Sequence[str],
                        ) -> Iterator[tuple[int, TagResult | TagFailure]]:
        """Tag recordings already in memory, batched as :meth:`iter_tag` batches files: ``loaders[i]()``
        returns recording i (mono float32 at the model's rate) or raises :class:`~weaktag.audio.AudioError`,
        which becomes its :class:`TagFailure`. Yields ``(index, result or failure)`` in processing order;
        recordings are loaded one by one, and only those waiting for a batch are held."""
        rate = self.grid.sample_rate

        def decoded() -> Iterator[tuple[int, np.ndarray | None, str | None]]:
            for i, load in enumerate(loaders):
                try:
                    wave = np.ascontiguousarray(load(), dtype=np.float32)
                except AudioError as exc:
                    yield i, None, str(exc)  # names the file
                    continue
                if len(wave) < MIN_AUDIO_SECONDS * rate:
                    yield i, None, too_short(len(wave) / rate)
                elif self.skip_silent and not np.any(wave):
                    yield i, None, SILENT
                else:
                    yield i, wave, None

        yield from self._tag_decoded(decoded(), list(names), None)

    def _tag_decoded(self, decoded: Iterator[tuple[int, np.ndarray | None, str | None]], names: Sequence[str],
                     progress: Callable[[float], None] | None) -> Iterator[tuple[int, TagResult | TagFailure]]:
        """Tag decoded recordings ``(index, audio or None, why not)``: equal-length ones (or, with
        ``pad_batches``, similar ones) in batches, one launched while the previous one is finished;
        a recording longer than one pass is streamed through chunks."""
        single_pass = self._single_pass_samples
        pending: dict[int, list[tuple[int, np.ndarray]]] = {}
        inflight: list[_InFlight] = []  # at most one: the batch the backend is working on

        def run(group: list[tuple[int, np.ndarray]]) -> Iterator[tuple[int, TagResult | TagFailure]]:
            # launch this batch, then finish the previous one while the backend works on it
            inflight.append(self._launch_group(group))
            if len(inflight) > 1:
                yield from self._collect_group(inflight.pop(0), names, progress)

        for i, wave, reason in decoded:
            if wave is None:
                yield i, TagFailure(names[i], reason or "cannot decode audio")
                continue
            if len(wave) >= single_pass:  # longer than one pass (a file: its header under-stated its length)
                yield i, self._guarded(names[i], lambda w=wave: self._tag_blocks(iter([w]), progress))
                continue
            key = self._group_key(len(wave))
            group = pending.setdefault(key, [])
            group.append((i, wave))
            if len(group) >= self._batch_limit(key):
                yield from run(pending.pop(key))
            elif sum(len(w) for g in pending.values() for _, w in g) > 2 * self.max_batch_samples:
                largest = max(pending, key=lambda k: sum(len(w) for _, w in pending[k]))
                yield from run(pending.pop(largest))
        for key in sorted(pending):
            yield from run(pending[key])
        for flight in inflight:
            yield from self._collect_group(flight, names, progress)

    def tag_many(self, sources: Sequence[str | Path], names: Sequence[str] | None = None) -> list[TagResult | TagFailure]:
        """:meth:`iter_tag` collected in the order of ``sources``."""
        out: list[TagResult | TagFailure | None] = [None] * len(sources)
        for i, r in self.iter_tag(sources, names):
            out[i] = r
        return out  # type: ignore[return-value]

    # ---------------------------------------------------------------- internals

    @property
    def _single_pass_samples(self) -> int:
        return (self.chunk_segments + self.context_segments) * self.grid.segment_samples

    def _batch_limit(self, length: int) -> int:
        return max(1, min(self.batch_size, self.max_batch_samples // max(length, 1)))

    def _group_key(self, length: int) -> int:
        length = max(length, self.grid.min_samples)
        if self.pad_batches:
            rate = self.grid.sample_rate
            return int(math.ceil(length / rate)) * rate
        return length

    def _guarded(self, name: str, fn: Callable[[], _Raw]) -> TagResult | TagFailure:
        try:
            return self._finish(name, fn())
        except AudioError as exc:
            return TagFailure(name, exc.reason)
        except Exception as exc:
            return TagFailure(name, f"{type(exc).__name__}: {exc}")

    def _decode_pool(self, files: int) -> DecodePool | None:
        """The tagger's worker pool, started on first use; None: decode in this process."""
        workers = self.settings.decode_workers
        if workers < 1 or files < 2:  # one file has nothing to overlap with
            return None
        if self._pool is None:
            self._pool = DecodePool(workers, self._single_pass_samples)
        return self._pool

    def _launch_group(self, group: list[tuple[int, np.ndarray]]) -> _InFlight:
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

    def _collect_group(self, flight: _InFlight, names: Sequence[str],
                       progress: Callable[[float], None] | None) -> Iterator[tuple[int, TagResult | TagFailure]]:
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
            raw = _Raw(len(wave), xa[row, :, :t], None if xb is None else xb[row, :, :t])
            if self._logmel is not None:
                raw.spectrogram_pool = self._pool_frames(len(wave))
                raw.spectrogram = self._spectrogram(batch[row : row + 1], 0, t, raw.spectrogram_pool)[0]
            if progress is not None:
                progress(len(wave) / self.grid.sample_rate)
            yield i, self._finish(names[i], raw)

    def _tag_blocks(self, blocks: Iterator[np.ndarray], progress: Callable[[float], None] | None = None) -> _Raw:
        """Stream blocks of audio at the model's rate through the network chunk by chunk (see the module doc)."""
        core = self.chunk_segments
        ctx = self.context_segments
        segment_samples = self.grid.segment_samples
        stride = self.grid.time_stride
        rate = self.grid.sample_rate
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
            xa, xb = self.runner(batch)
            for row, (_, lo, hi) in enumerate(pending):
                xa_parts.append(xa[row, :, lo:hi])
                if xb is not None:
                    xb_parts.append(xb[row, :, lo:hi])
                if self._logmel is not None:  # one column per segment while streaming
                    spec_parts.append(self._spectrogram(batch[row : row + 1], lo, hi, stride)[0])
                if progress is not None:
                    progress((hi - lo) * segment_samples / rate)
            pending.clear()

        def schedule(chunk: np.ndarray, lo: int, hi: int) -> None:
            if pending and (len(pending) >= self.chunk_batch or len(pending[0][0]) != len(chunk)):
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
            wave = pad_to_segments(np.concatenate(pieces) if pieces else np.zeros(0, np.float32), self.grid)
            xa, xb = self.runner(wave[None, :])
            t = self.grid.segments_for_samples(total)
            raw = _Raw(total, xa[0, :, :t], None if xb is None else xb[0, :, :t])
            if self._logmel is not None:
                raw.spectrogram_pool = self._pool_frames(total)
                raw.spectrogram = self._spectrogram(wave[None, :], 0, t, raw.spectrogram_pool)[0]
            if progress is not None:
                progress(total / rate)
            return raw
        t_total = self.grid.segments_for_samples(total)
        if next_seg < t_total:  # the rest, up to the end of the file, zero-padded to whole segments
            buffer = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
            start = max(0, next_seg - ctx) * segment_samples
            lo = next_seg - start // segment_samples
            # start is on the segment grid, so this pads the file's end as a whole-file pass does
            schedule(pad_to_segments(buffer[start - buf_start :], self.grid), lo, lo + t_total - next_seg)
        flush()
        xa = np.concatenate(xa_parts, axis=-1)
        xb = np.concatenate(xb_parts, axis=-1) if xb_parts else None
        raw = _Raw(total, xa, xb)
        if spec_parts:  # one column per segment so far; pool further when that is more than wanted
            spec = np.concatenate(spec_parts, axis=-1)
            factor = max(1, self._pool_frames(total) // stride)
            n = spec.shape[1] - spec.shape[1] % factor
            raw.spectrogram = spec[:, :n].reshape(spec.shape[0], n // factor, factor).mean(axis=2)
            raw.spectrogram_pool = stride * factor
        return raw

    def _finish(self, source: str, raw: _Raw) -> TagResult:
        xa = raw.xa.astype(np.float32, copy=False)
        # the head's pooling (weaktag.models.pool_recording), over the whole recording, in float64
        pooled = None if raw.xb is None else torch.from_numpy(raw.xb.astype(np.float64))
        clip64, att64, raw64 = pool_recording(self.checkpoint.model.config, torch.from_numpy(xa.astype(np.float64)),
                                              pooled)
        clip = clip64.numpy()
        attention = None if att64 is None else att64.numpy().astype(np.float32)
        xb32 = None if raw64 is None else raw64.numpy().astype(np.float32)
        result = TagResult(
            source=source,
            duration=raw.samples / self.grid.sample_rate,
            classes=self.classes,
            clip_probs=clip.astype(np.float32),
            segment_probs=xa,
            attention=attention,
            segment_seconds=self.grid.segment_seconds,
            attention_raw=xb32,
            tag_thresholds=self.tag_thresholds,
            spectrogram=raw.spectrogram,
            spectrogram_hop=raw.spectrogram_pool * self.grid.frontend.frame_seconds,
        )
        if self.detect_events:
            result.events = decode_events(result.scores(self.event_settings.output), self.classes, self._event_thr,
                                          result.segment_seconds, self.median_filter_segments,
                                          duration=result.duration)
            if self.events_for == "tagged":
                tagged = {label for label, _ in result.above()}
                result.events = [e for e in result.events if e.label in tagged]
        return result

    # ---------------------------------------------------------------- spectrogram for timelines

    def _pool_frames(self, samples: int) -> int:
        """Frames per spectrogram column: a power of two, so that a file gives at most ``spectrogram_columns``."""
        frames = max(1, samples // self.grid.frontend.hop)
        p = 1
        while frames / p > self.spectrogram_columns:
            p *= 2
        return p

    def _spectrogram(self, batch: np.ndarray, lo: int, hi: int, pool: int) -> np.ndarray:
        """(B, mel bands, columns) log-mel of segments [lo, hi), averaged over ``pool`` frames per column."""
        with torch.inference_mode():
            logmel = self._logmel(torch.from_numpy(np.ascontiguousarray(batch))).numpy()  # (B, F, mel bands)
        stride = self.grid.time_stride
        frames = logmel[:, lo * stride : hi * stride]
        b, f, m = frames.shape
        f -= f % pool
        pooled = frames[:, :f].reshape(b, f // pool, pool, m).mean(axis=2)
        return np.ascontiguousarray(pooled.transpose(0, 2, 1), dtype=np.float32)
