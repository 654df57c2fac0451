"""The tagging engine: a checkpoint over recordings of any length -> clip tags, events, X^a and attention.

``Tagger.from_checkpoint(path).tag(path_or_array)`` returns a :class:`TagResult`;
:meth:`Tagger.iter_tag` tags many files in batches. Settings come from one typed object,
:class:`weaktag.inference.settings.TaggingConfig`, shared with the CLI. Times and sample counts below are
those of VGGish's grid; the engine reads them from the model's :class:`~weaktag.geometry.TimeGrid`.
The steps live beside it: :func:`~.settings.chunk_plan` and :func:`~.settings.resolve_decisions` (what the
settings mean on this checkpoint), :mod:`.chunking` (long recordings), :mod:`.batching` (short ones), :mod:`.decoding`.

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

from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from ..audio import SILENT, AudioError, array_blocks, iter_audio_blocks
from ..checkpoint import Checkpoint, load_checkpoint
from ..errors import CheckpointError, UsageError
from ..geometry import MIN_AUDIO_SECONDS
from ..models import pool_recording
from ..postprocess import EventSettings, decode_events
from .backends import BACKENDS, Backend, BackendName, OnnxBackend, TorchBackend, checkpoint_from_onnx, resolve_device
from .batching import Batching, Decoded, Progress
from .chunking import Raw, Spectrogram, stream_chunks
from .decoding import DecodePool, decode_files, probe_files
from .export import temporary_export
from .results import TagFailure, TagResult
from .settings import ChunkPlan, Decisions, TaggingConfig, chunk_plan, resolve_decisions, tagging_config


def too_short(seconds: float) -> str:
    return f"too short: {seconds:.3f} s of audio, the minimum is {MIN_AUDIO_SECONDS} s"


def open_model(path: str | Path) -> Checkpoint:
    """A ``.pt`` checkpoint, or the classes, thresholds and event settings of an ONNX file from ``weaktag export``."""
    path = Path(path)
    return checkpoint_from_onnx(path) if path.suffix.lower() == ".onnx" else load_checkpoint(path)


class Tagger:
    """``Tagger.from_checkpoint(path).tag(path_or_array)`` -> :class:`TagResult`.

    ``settings`` (a :class:`~weaktag.inference.settings.TaggingConfig`) holds every option: batching,
    chunking of long files (see the module doc), silent-file handling, event overrides
    (``event_output``, ``event_thresholds``, ``median_filter_seconds``, ``stay_on_fraction``,
    ``max_gap_seconds``, ``min_duration_seconds``; None keeps the
    checkpoint's :class:`~weaktag.postprocess.EventSettings`), clip ``tag_thresholds`` (None:
    the checkpoint's), ``detect_events``, ``keep_spectrogram`` for timelines, ``num_threads``.
    Keyword ``options`` are the same fields, for short calls: ``Tagger(ckpt, chunk_seconds=10.24)``.
    ``backend`` "torch" or "onnxruntime" (which runs ``onnx_path``, exported on the fly to a
    temporary file, removed once loaded, when not given). ``device`` (default: ``settings.device``, "cpu") is cpu, cuda
    or cuda:N; a device this machine lacks is a ValueError. ``feature_cache``: a folder that keeps the backbone's
    outputs between taggers of one frozen backbone (torch backend on the CPU; see
    :class:`~weaktag.inference.backends.TorchBackend`). ``decode_workers`` processes decode
    files for :meth:`iter_tag` (see the module doc); :meth:`close` ends them.

    Derived from the settings: ``plan`` (:class:`~weaktag.inference.settings.ChunkPlan`, on the model's grid) and
    ``decisions`` (:class:`~weaktag.inference.settings.Decisions`: the thresholds and event settings in use).

    >>> import weaktag
    >>> tagger = weaktag.Tagger.from_checkpoint(checkpoint)
    >>> result = tagger.tag(recording)  # a path, or a float array (sample_rate=...)
    >>> [label for label, _ in result.top(3)] == [t.label for t in result.select_tags(3, "top-k")]
    True
    >>> result.segment_probs.shape == (len(tagger.classes), len(result.segment_times()))
    True
    """

    def __init__(self, checkpoint: Checkpoint, device: str | torch.device | None = None, *,
                 settings: TaggingConfig | None = None, backend: BackendName = "torch",
                 onnx_path: str | Path | None = None, feature_cache: str | Path | None = None,
                 **options: Any) -> None:
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
            raise UsageError(f"backend must be one of {BACKENDS}, not {backend!r}")
        # before anything slow (an ONNX export): a device this machine lacks is one line, at once
        self.device = resolve_device(settings.device, backend)
        self.backend = backend
        self.onnx_path = None if onnx_path is None else Path(onnx_path)
        self._pool: DecodePool | None = None
        if settings.num_threads:
            torch.set_num_threads(settings.num_threads)
        self.runner = self._start_backend(checkpoint, backend, self.onnx_path, settings.num_threads, feature_cache)
        self.model = self.runner.model if isinstance(self.runner, TorchBackend) else checkpoint.model.eval()
        self.plan: ChunkPlan = chunk_plan(settings, self.grid)
        self._spectrogram = Spectrogram(self.grid, settings.spectrogram_columns) if settings.keep_spectrogram else None
        self.decisions: Decisions = resolve_decisions(settings, self.classes, checkpoint.tag_thresholds,
                                                      checkpoint.events, self.has_attention, self.grid.segment_seconds)
        self._batching = Batching(self.runner, self.grid, self.plan, settings.batch_size, settings.pad_batches,
                                  self._spectrogram, self._finish, self._stream_wave)

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device | None = None, *,
                        checkpoint: Checkpoint | None = None, **options: Any) -> "Tagger":
        """A tagger for a ``.pt`` checkpoint, or for an ONNX file written by ``weaktag export``.

        An ONNX file runs on onnxruntime; its metadata holds the classes, thresholds and event
        settings (the PyTorch weights are not needed). ``checkpoint``: ``path`` already read by
        :func:`open_model` (the CLI reads it first, for its classes).
        """
        path = Path(path)
        if path.suffix.lower() == ".onnx":
            backend = options.pop("backend", None)
            if backend not in (None, "onnxruntime"):
                raise UsageError(f"{path}: an exported ONNX file runs on the onnxruntime backend, not {backend!r}")
            options.pop("onnx_path", None)
            return cls(checkpoint or checkpoint_from_onnx(path), device, backend="onnxruntime", onnx_path=path,
                       **options)
        if options.get("backend") is None:
            options["backend"] = "torch"
        return cls(checkpoint or load_checkpoint(path), device, **options)

    def _start_backend(self, checkpoint: Checkpoint, backend: BackendName, onnx_path: Path | None,
                       num_threads: int | None, feature_cache: str | Path | None = None) -> Backend:
        if backend == "torch":
            return TorchBackend(checkpoint, self.device, feature_cache)
        # onnxruntime (the name was checked above)
        if onnx_path is None:  # onnxruntime holds the graph in memory: the temporary file goes at once
            with temporary_export(checkpoint) as exported:
                runner = OnnxBackend(exported, num_threads, self.device)
        else:
            runner = OnnxBackend(onnx_path, num_threads, self.device)
        if len(runner.meta["classes"]) != len(checkpoint.classes):
            raise CheckpointError(f"{onnx_path}: exported for {len(runner.meta['classes'])} classes, the "
                             f"checkpoint has {len(checkpoint.classes)}")
        return runner

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

    @property
    def tag_thresholds(self) -> np.ndarray:
        """(C,) clip thresholds in use."""
        return self.decisions.tag_thresholds

    @property
    def event_settings(self) -> EventSettings:
        """The event settings in use: the checkpoint's, with the settings' overrides."""
        return self.decisions.events

    # ---------------------------------------------------------------- public tagging

    def tag(self, audio: str | Path | np.ndarray, name: str | None = None,
            sample_rate: int | None = None) -> TagResult:
        """Tag one file (any format soundfile reads) or a float array at ``sample_rate`` (mono or (N, channels);
        default: the model's rate).

        Raises :class:`~weaktag.audio.AudioError` for an unusable file: unreadable, empty, shorter
        than ``MIN_AUDIO_SECONDS``, or silent (unless ``skip_silent=False``).
        """
        rate = self.grid.sample_rate
        allow_silent = not self.settings.skip_silent
        if isinstance(audio, np.ndarray):
            source = name or "<array>"
            blocks = array_blocks(audio, sample_rate or rate, rate, source, allow_silent=allow_silent)
        else:
            source = name or str(audio)
            blocks = iter_audio_blocks(audio, rate, allow_silent=allow_silent)
        raw = self._stream(blocks)
        if raw.samples < MIN_AUDIO_SECONDS * rate:
            raise AudioError(source, too_short(raw.samples / rate))
        return self._finish(source, raw)

    def iter_tag(self, sources: Sequence[str | Path], names: Sequence[str] | None = None,
                 progress: Progress | None = None,
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
        single_pass = self.plan.single_pass_samples
        rate = self.grid.sample_rate
        allow_silent = not self.settings.skip_silent
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
        decoded = decode_files([(i, sources[i], frames) for _, i, frames in short], rate, allow_silent,
                               pool if len(short) > 1 else None)
        yield from self._batching.tag_decoded(decoded, names, progress)
        for i in long:
            yield i, self._guarded(names[i], lambda i=i: self._stream(
                iter_audio_blocks(sources[i], rate, allow_silent=allow_silent), progress))

    def iter_tag_arrays(self, loaders: Sequence[Callable[[], np.ndarray]], names: Sequence[str],
                        ) -> Iterator[tuple[int, TagResult | TagFailure]]:
        """Tag recordings already in memory, batched as :meth:`iter_tag` batches files: ``loaders[i]()``
        returns recording i (mono float32 at the model's rate) or raises :class:`~weaktag.audio.AudioError`,
        which becomes its :class:`TagFailure`. Yields ``(index, result or failure)`` in processing order;
        recordings are loaded one by one, and only those waiting for a batch are held."""
        rate = self.grid.sample_rate

        def decoded() -> Iterator[Decoded]:
            for i, load in enumerate(loaders):
                try:
                    wave = np.ascontiguousarray(load(), dtype=np.float32)
                except AudioError as exc:
                    yield i, None, str(exc)  # names the file
                    continue
                if len(wave) < MIN_AUDIO_SECONDS * rate:
                    yield i, None, too_short(len(wave) / rate)
                elif self.settings.skip_silent and not np.any(wave):
                    yield i, None, SILENT
                else:
                    yield i, wave, None

        yield from self._batching.tag_decoded(decoded(), list(names), None)

    def tag_many(self, sources: Sequence[str | Path], names: Sequence[str] | None = None) -> list[TagResult | TagFailure]:
        """:meth:`iter_tag` collected in the order of ``sources``."""
        out: list[TagResult | TagFailure | None] = [None] * len(sources)
        for i, r in self.iter_tag(sources, names):
            out[i] = r
        return out  # type: ignore[return-value]

    # ---------------------------------------------------------------- internals

    def _stream(self, blocks: Iterator[np.ndarray], progress: Progress | None = None) -> Raw:
        return stream_chunks(blocks, self.runner, self.grid, self.plan, self.settings.chunk_batch,
                             self._spectrogram, progress)

    def _stream_wave(self, name: str, wave: np.ndarray,
                     progress: Progress | None = None) -> TagResult | TagFailure:
        return self._guarded(name, lambda: self._stream(iter([wave]), progress))

    def _guarded(self, name: str, fn: Callable[[], Raw]) -> TagResult | TagFailure:
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
            self._pool = DecodePool(workers, self.plan.single_pass_samples)
        return self._pool

    def _finish(self, source: str, raw: Raw) -> TagResult:
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
        if self.settings.detect_events:
            decisions = self.decisions
            decoding = decisions.decoding
            result.events = decode_events(result.scores(decisions.events.output), self.classes,
                                          decoding.thresholds, result.segment_seconds,
                                          decoding.median_filter_segments, duration=result.duration,
                                          stay_on_fractions=decoding.stay_on_fractions,
                                          max_gap_segments=decoding.max_gap_segments,
                                          min_duration_segments=decoding.min_duration_segments)
            if self.settings.events_for == "tagged":
                tagged = {label for label, _ in result.above()}
                result.events = [e for e in result.events if e.label in tagged]
        return result
