"""Tag recordings with a trained checkpoint: clip tags, events, and segment-level X^a / attention.

``Tagger.from_checkpoint(path).tag(path_or_array)`` returns a :class:`TagResult`;
:meth:`Tagger.iter_tag` tags many files in batches, and :func:`tag_files` is what
``weaktag tag`` runs (discovery of files, outputs, errors, summary).

Long files: memory is flat in file length
-----------------------------------------
The network is fully convolutional in time: output segment ``t`` pools frames
``16t .. 16t+15`` (input samples from ``2560 t``) and its receptive field reaches 43 frames
further on either side (3x3 convolutions and 2x2 pools: 1+1+2+2+4+4+4+8+8+8+16 = 43 with the
(3 x 1) L7), i.e. about 0.45 s of audio beyond the segment. A file longer than
``chunk_seconds + context_seconds`` is read block by block (``soundfile``) and resampled as
a stream (``soxr.ResampleStream``), and the network runs on chunks of ``chunk_seconds`` (a
whole number of segments) plus ``context_seconds`` (rounded up to whole segments, default
0.64 s = 4 segments) of real audio on each side. Chunk boundaries fall on segment
boundaries, so every chunk sees the same frame grid as a whole-file pass, and of each chunk
only the central segments are kept. Because the context covers the receptive field, the
kept X^a and X^b are those of a whole-file pass up to float32 rounding: measured max
difference 6e-8 on a 3-minute file (``tests/test_infer.py`` asserts ``<= 1e-5`` for every
output with 10.24 s and 30.72 s chunks; with only 1 segment of context the edges do show,
about 4e-2). Attention pooling over the whole file is
then recomputed from the stitched X^a and X^b: ``A = X^b / sum_t X^b``, ``y = sum_t A X^a``
(pooling models: ``y = mean_t X^a``), which is exactly what a whole-file pass computes.
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
Clips shorter than 0.175 s (one segment) are zero-padded to 0.175 s and give one segment.
"""

from __future__ import annotations

import csv
import glob
import json
import math
import sys
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Literal, Sequence

import numpy as np
import soundfile as sf
import soxr
import torch

from .audio import AUDIO_SUFFIXES, HOP, SAMPLE_RATE, WINDOW, AudioError, LogMel, check_audio_path, num_frames
from .checkpoint import Checkpoint, EventSettings, load_checkpoint
from .evaluate.events import OUTPUT_KINDS, DetectedEvent, decode_events, segment_scores
from .models import TIME_STRIDE, num_segments, segment_duration

SEGMENT_SAMPLES = TIME_STRIDE * HOP  # 2560 samples (0.16 s): one output segment
MIN_SAMPLES = WINDOW + (TIME_STRIDE - 1) * HOP  # 2800 samples (0.175 s): shortest input with one segment
READ_BLOCK = 1 << 16  # frames per soundfile read
ATTENTION_EPS = 1e-7  # as the attention head: keeps A finite when every X^b underflows
Backend = Literal["torch", "onnxruntime"]
TagSelection = Literal["top-k", "threshold", "union"]


# --------------------------------------------------------------------------- results


@dataclass
class ClipTag:
    """One clip-level tag: class, probability, its threshold, and whether it passes it."""

    label: str
    probability: float
    threshold: float
    above_threshold: bool
    rank: int  # 1 = most probable class of the clip


@dataclass
class TagResult:
    """What the model says about one recording. Matrices are (C, T); segment t spans [0.16 t, 0.16 (t+1)) s."""

    source: str
    duration: float  # seconds
    classes: list[str]
    clip_probs: np.ndarray  # (C,) y-hat
    segment_probs: np.ndarray  # (C, T) X^a
    attention: np.ndarray | None  # (C, T) A, sums to 1 over T; None for pooling models
    segment_seconds: float
    attention_raw: np.ndarray | None = None  # (C, T) X^b before normalisation
    tag_thresholds: np.ndarray | None = None  # (C,) clip thresholds (the checkpoint's unless overridden)
    events: list[DetectedEvent] = field(default_factory=list)
    spectrogram: np.ndarray | None = None  # (64, F) log-mel, time-pooled, when the tagger keeps it
    spectrogram_hop: float = HOP / SAMPLE_RATE  # seconds per spectrogram column

    @property
    def num_segments(self) -> int:
        return self.segment_probs.shape[1]

    def segment_times(self) -> np.ndarray:
        """(T, 2) [start, end) seconds of every segment."""
        starts = np.arange(self.num_segments) * self.segment_seconds
        return np.stack([starts, starts + self.segment_seconds], axis=1)

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        order = np.argsort(-self.clip_probs, kind="stable")[:k]
        return [(self.classes[i], float(self.clip_probs[i])) for i in order]

    def above(self, thresholds: np.ndarray | float | None = None) -> list[tuple[str, float]]:
        """Classes whose probability reaches their threshold (default: ``tag_thresholds``), most probable first."""
        thr = self._thresholds(thresholds)
        idx = np.flatnonzero(self.clip_probs >= thr)
        idx = idx[np.argsort(-self.clip_probs[idx], kind="stable")]
        return [(self.classes[i], float(self.clip_probs[i])) for i in idx]

    def select_tags(self, top_k: int = 5, select: TagSelection = "union",
                    thresholds: np.ndarray | float | None = None) -> list[ClipTag]:
        """Tags to report: the ``top_k`` most probable, those above threshold, or either (``union``)."""
        if select not in ("top-k", "threshold", "union"):
            raise ValueError(f"select must be 'top-k', 'threshold' or 'union', not {select!r}")
        thr = self._thresholds(thresholds)
        probs = self.clip_probs
        order = np.argsort(-probs, kind="stable")
        ranks = np.empty(len(order), dtype=int)
        ranks[order] = np.arange(1, len(order) + 1)
        above = probs >= thr
        in_top = ranks <= top_k
        keep = in_top if select == "top-k" else above if select == "threshold" else (in_top | above)
        return [ClipTag(self.classes[i], float(probs[i]), float(thr[i]), bool(above[i]), int(ranks[i]))
                for i in order[keep[order]]]

    def scores(self, output: str = "segment") -> np.ndarray:
        """(C, T) detection scores of ``output`` kind (see :func:`weaktag.evaluate.events.segment_scores`)."""
        return segment_scores(output, self.segment_probs, self.attention)

    def detect_events(self, settings: EventSettings) -> list[DetectedEvent]:
        """Events from the segment outputs with ``settings`` (output kind, thresholds, median filter)."""
        return _decode(self.scores(settings.output), self.classes, event_thresholds(settings, self.classes),
                       self.segment_seconds, median_filter_segments(settings.median_filter_seconds, self.segment_seconds))

    def to_dict(self, top_k: int = 5, select: TagSelection = "union") -> dict:
        """JSON-ready: file, duration, selected tags and events (matrices left out)."""
        return {
            "filename": self.source,
            "duration": round(self.duration, 6),
            "tags": [{"label": t.label, "probability": round(t.probability, 6), "threshold": round(t.threshold, 6),
                      "above_threshold": t.above_threshold, "rank": t.rank}
                     for t in self.select_tags(top_k, select)],
            "events": [{"onset": e.onset, "offset": e.offset, "event_label": e.label, "score": round(e.score, 6)}
                       for e in self.events],
        }

    def _thresholds(self, thresholds: np.ndarray | float | None) -> np.ndarray:
        if thresholds is None:
            thresholds = 0.5 if self.tag_thresholds is None else self.tag_thresholds
        return np.broadcast_to(np.asarray(thresholds, dtype=float), self.clip_probs.shape)


@dataclass
class TagFailure:
    """A file that could not be tagged, and why."""

    source: str
    reason: str


def _decode(scores: np.ndarray, classes: Sequence[str], thresholds: np.ndarray, segment_seconds: float,
            median: int) -> list[DetectedEvent]:
    """:func:`~weaktag.evaluate.events.decode_events` on the classes that reach their threshold somewhere.

    A class with no segment at or above its threshold has no event whatever the median filter
    (the median of zeros is zero), and the order of events among the remaining classes is
    unchanged, so this returns exactly what ``decode_events`` on all classes returns; it only
    skips the per-class work for the (usually many) silent classes.
    """
    active = np.flatnonzero((scores >= thresholds[:, None]).any(axis=1))
    if len(active) == 0:
        return []
    if len(active) == len(classes):
        return decode_events(scores, classes, thresholds, segment_seconds, median)
    return decode_events(scores[active], [classes[i] for i in active], thresholds[active], segment_seconds, median)


def event_thresholds(settings: EventSettings, classes: Sequence[str]) -> np.ndarray:
    """Per-class event thresholds of ``settings`` (empty list: 0.5 for every class)."""
    if not settings.thresholds:
        return np.full(len(classes), 0.5)
    thr = np.asarray(settings.thresholds, dtype=float)
    if thr.shape == (1,):
        return np.full(len(classes), float(thr[0]))
    if thr.shape != (len(classes),):
        raise ValueError(f"event thresholds: expected {len(classes)} values (one per class), got {len(thr)}")
    return thr


def median_filter_segments(seconds: float, segment_seconds: float | None = None) -> int:
    """Median filter length in segments: ``seconds`` rounded to whole segments, then up to odd (>= 1)."""
    step = segment_duration() if segment_seconds is None else segment_seconds
    if seconds < 0:
        raise ValueError(f"median filter must be >= 0 seconds, got {seconds}")
    n = max(1, int(round(seconds / step)))
    return n if n % 2 else n + 1


# --------------------------------------------------------------------------- audio streaming


def iter_audio_blocks(path: str | Path, block_frames: int = READ_BLOCK) -> Iterator[np.ndarray]:
    """Mono float32 blocks at 16 kHz from any soundfile-readable file, never the whole file at once.

    Channels are averaged and the stream resampled with soxr (HQ), which gives exactly the
    samples :func:`weaktag.audio.load_audio` gives. Raises :class:`AudioError` for a missing,
    unreadable, corrupt or empty file and for NaN / infinite samples (silence is allowed).
    """
    path = check_audio_path(path)
    try:
        handle = sf.SoundFile(str(path))
    except Exception as exc:  # LibsndfileError, RuntimeError, TypeError ...
        raise AudioError(path, f"cannot decode audio ({type(exc).__name__}: {exc})") from None
    with handle:
        rate, channels = handle.samplerate, handle.channels
        # only float sample formats can hold NaN / inf; integer PCM and lossy decoders cannot
        check_finite = handle.subtype in ("FLOAT", "DOUBLE") or handle.format not in ("WAV", "WAVEX", "AIFF", "FLAC")
        stream = None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32",
                                                                     quality="HQ")
        total = 0
        while True:
            try:
                block = handle.read(block_frames, dtype="float32", always_2d=channels > 1)
            except Exception as exc:
                raise AudioError(path, f"cannot decode audio after {total / rate:.2f} s "
                                       f"({type(exc).__name__}: {exc})") from None
            last = len(block) < block_frames
            mono = block.mean(axis=1) if channels > 1 else block
            if check_finite and not np.all(np.isfinite(mono)):
                raise AudioError(path, "audio contains NaN or infinite samples")
            total += len(block)
            if total == 0 and last:
                raise AudioError(path, "file holds no samples (empty audio)")
            out = mono if stream is None else stream.resample_chunk(mono, last=last)
            if len(out):
                yield out if out.dtype == np.float32 and out.flags.c_contiguous else np.ascontiguousarray(out, np.float32)
            if last:
                return


def _array_blocks(audio: np.ndarray, sample_rate: int, name: str) -> Iterator[np.ndarray]:
    wave = np.asarray(audio, dtype=np.float32)
    if wave.ndim == 2:  # (samples, channels)
        wave = wave.mean(axis=1)
    if wave.ndim != 1:
        raise AudioError(name, f"expected a (samples,) or (samples, channels) array, got shape {audio.shape}")
    if len(wave) == 0:
        raise AudioError(name, "array holds no samples (empty audio)")
    if not np.all(np.isfinite(wave)):
        raise AudioError(name, "audio contains NaN or infinite samples")
    if sample_rate != SAMPLE_RATE:
        wave = soxr.resample(wave, sample_rate, SAMPLE_RATE, quality="HQ")
    yield np.ascontiguousarray(wave, dtype=np.float32)


def _probe(path: Path) -> tuple[int, int]:
    """(16 kHz length, frames in the file) from the header; raises AudioError when it is unreadable."""
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise AudioError(path, f"cannot decode audio ({type(exc).__name__}: {exc})") from None
    if info.frames <= 0:
        raise AudioError(path, "file holds no samples (empty audio)")
    return int(math.ceil(info.frames * SAMPLE_RATE / info.samplerate)), int(info.frames)


# --------------------------------------------------------------------------- backends


class _TorchRunner:
    def __init__(self, checkpoint: Checkpoint, device: torch.device) -> None:
        self.model = checkpoint.model.to(device).eval()
        self.device = device
        self.has_attention = bool(self.model.config.attention)

    def __call__(self, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        with torch.inference_mode():
            out = self.model(torch.from_numpy(waveforms).to(self.device))
            xa = out.segment_probs.float().cpu().numpy()
            xb = None if out.attention_raw is None else out.attention_raw.float().cpu().numpy()
        return xa, xb


class _OnnxRunner:
    def __init__(self, path: Path, num_threads: int | None = None) -> None:
        import onnxruntime as ort

        from .export import _metadata_of

        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ValueError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
        self.meta = _metadata_of(self.session, path)
        self.input_name = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        self.has_attention = "attention_raw" in names
        self.outputs = ["segment_probs"] + (["attention_raw"] if self.has_attention else [])
        self.frontend = None if self.meta["frontend"] else LogMel()

    def __call__(self, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        feed = waveforms
        if self.frontend is not None:
            with torch.inference_mode():
                feed = self.frontend(torch.from_numpy(waveforms)).numpy()
        got = self.session.run(self.outputs, {self.input_name: feed})
        return got[0], (got[1] if self.has_attention else None)


# --------------------------------------------------------------------------- the tagger


@dataclass
class _Raw:
    """Stitched outputs of one recording before pooling."""

    samples: int
    xa: np.ndarray  # (C, T)
    xb: np.ndarray | None
    spectrogram: np.ndarray | None = None
    spectrogram_pool: int = 1  # log-mel frames per spectrogram column


class Tagger:
    """``Tagger.from_checkpoint(path).tag(path_or_array)`` -> :class:`TagResult`.

    Options (all keyword): ``backend`` "torch" or "onnxruntime" (the latter runs ``onnx_path``,
    exported on the fly to a temporary file when not given); ``batch_size`` files per forward
    pass; ``max_batch_seconds`` of audio per forward pass (bounds memory for long clips);
    ``chunk_seconds`` / ``context_seconds`` / ``chunk_batch`` for long files (see the module
    doc); ``pad_batches``; event overrides ``event_output``, ``event_thresholds`` (one value or
    one per class), ``median_filter_seconds`` (default: the checkpoint's :class:`EventSettings`);
    ``tag_thresholds`` (default: the checkpoint's); ``detect_events=False`` skips event decoding
    (clip tags and matrices only; ``TagResult.detect_events`` can still decode later); ``keep_spectrogram`` to keep a time-pooled
    log-mel (at most ``spectrogram_columns`` columns) for timelines; ``num_threads``.
    """

    def __init__(self, checkpoint: Checkpoint, device: str | torch.device = "cpu", *, backend: Backend = "torch",
                 onnx_path: str | Path | None = None, batch_size: int = 32, max_batch_seconds: float = 320.0,
                 chunk_seconds: float = 30.72, context_seconds: float = 0.64, chunk_batch: int = 1,
                 pad_batches: bool = False, event_output: str | None = None,
                 event_thresholds: float | Sequence[float] | None = None, median_filter_seconds: float | None = None,
                 tag_thresholds: float | Sequence[float] | None = None, detect_events: bool = True,
                 keep_spectrogram: bool = False, spectrogram_columns: int = 4000,
                 num_threads: int | None = None) -> None:
        self.checkpoint = checkpoint
        self.device = torch.device(device)
        self.backend = backend
        if num_threads:
            torch.set_num_threads(num_threads)
        if backend == "torch":
            self._runner: _TorchRunner | _OnnxRunner = _TorchRunner(checkpoint, self.device)
            self.model = self._runner.model
        elif backend == "onnxruntime":
            if onnx_path is None:
                onnx_path = _export_temporary(checkpoint)
            self._runner = _OnnxRunner(Path(onnx_path), num_threads)
            self.model = checkpoint.model.eval()
            if len(self._runner.meta["classes"]) != len(checkpoint.classes):
                raise ValueError(f"{onnx_path}: exported for {len(self._runner.meta['classes'])} classes, the "
                                 f"checkpoint has {len(checkpoint.classes)}")
        else:
            raise ValueError(f"backend must be 'torch' or 'onnxruntime', not {backend!r}")
        self.onnx_path = None if onnx_path is None else Path(onnx_path)
        if batch_size < 1 or chunk_batch < 1:
            raise ValueError("batch_size and chunk_batch must be >= 1")
        self.batch_size = batch_size
        self.max_batch_samples = max(MIN_SAMPLES, int(max_batch_seconds * SAMPLE_RATE))
        self.chunk_segments = max(1, int(round(chunk_seconds * SAMPLE_RATE / SEGMENT_SAMPLES)))
        self.context_segments = max(1, int(math.ceil(context_seconds * SAMPLE_RATE / SEGMENT_SAMPLES)))
        self.chunk_batch = chunk_batch
        self.pad_batches = pad_batches
        self.detect_events = detect_events
        self.keep_spectrogram = keep_spectrogram
        self.spectrogram_columns = spectrogram_columns
        self._logmel = LogMel() if keep_spectrogram else None
        c = len(checkpoint.classes)
        self.tag_thresholds = (np.asarray(checkpoint.tag_thresholds, dtype=float) if tag_thresholds is None
                               else np.broadcast_to(np.asarray(tag_thresholds, dtype=float), (c,)).copy())
        if self.tag_thresholds.shape != (c,):
            raise ValueError(f"tag thresholds: expected {c} values, got {self.tag_thresholds.shape}")
        self.event_settings = replace(checkpoint.events)
        self.configure_events(event_output, event_thresholds, median_filter_seconds)

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu", **options) -> "Tagger":
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
            return cls(_checkpoint_from_onnx(path), device, backend="onnxruntime", onnx_path=path, **options)
        if options.get("backend") is None:
            options["backend"] = "torch"
        return cls(load_checkpoint(path), device, **options)

    @property
    def classes(self) -> list[str]:
        return self.checkpoint.classes

    @property
    def has_attention(self) -> bool:
        return self._runner.has_attention

    def configure_events(self, output: str | None = None, thresholds: float | Sequence[float] | None = None,
                         median_filter_seconds: float | None = None) -> EventSettings:
        """Override the checkpoint's event settings (None keeps the current value); returns the settings in use."""
        settings = replace(self.event_settings)
        if output is not None:
            settings.output = output
        if thresholds is not None:
            settings.thresholds = [float(t) for t in np.atleast_1d(np.asarray(thresholds, dtype=float))]
        if median_filter_seconds is not None:
            settings.median_filter_seconds = float(median_filter_seconds)
        if settings.output not in OUTPUT_KINDS:
            raise ValueError(f"event output must be one of {OUTPUT_KINDS}, not {settings.output!r}")
        if settings.output != "segment" and not self.has_attention:
            raise ValueError(f"event output {settings.output!r} needs an attention model; this one pools "
                             "(use event output 'segment')")
        self._event_thr = event_thresholds(settings, self.classes)
        self._median = median_filter_segments(settings.median_filter_seconds)
        self.event_settings = settings
        return settings

    # ---------------------------------------------------------------- public tagging

    def tag(self, audio: str | Path | np.ndarray, name: str | None = None,
            sample_rate: int = SAMPLE_RATE) -> TagResult:
        """Tag one file (any format soundfile reads) or a float array at ``sample_rate`` (mono or (N, channels)).

        Raises :class:`~weaktag.audio.AudioError` for an unusable file.
        """
        if isinstance(audio, np.ndarray):
            source = name or "<array>"
            raw = self._tag_blocks(_array_blocks(audio, sample_rate, source))
        else:
            source = name or str(audio)
            raw = self._tag_blocks(iter_audio_blocks(audio))
        return self._finish(source, raw)

    def iter_tag(self, sources: Sequence[str | Path], names: Sequence[str] | None = None,
                 progress: Callable[[float], None] | None = None) -> Iterator[tuple[int, TagResult | TagFailure]]:
        """Tag many files, batching equal-length ones; yields ``(index into sources, result or failure)``.

        Results come in processing order (short files sorted by length first, then long files);
        a bad file yields a :class:`TagFailure` and the others go on. ``progress`` is called
        with the seconds of audio just finished.
        """
        names = [str(s) for s in sources] if names is None else list(names)
        short: list[tuple[int, int, int]] = []  # (16 kHz length, index, frames in the file)
        long: list[int] = []
        single_pass = self._single_pass_samples
        for i, src in enumerate(sources):
            path = Path(src)
            if not path.exists() or path.is_dir():
                reason = "is a directory, not an audio file" if path.is_dir() else "file not found"
                yield i, TagFailure(names[i], reason)
                continue
            try:
                expected, frames = _probe(path)
            except AudioError as exc:
                yield i, TagFailure(names[i], exc.reason)
                continue
            if expected < single_pass:
                short.append((expected, i, frames))
            else:
                long.append(i)
        short.sort()
        pending: dict[int, list[tuple[int, np.ndarray]]] = {}
        for _, i, frames in short:
            try:  # one read for the whole (short) file
                blocks = list(iter_audio_blocks(sources[i], block_frames=max(READ_BLOCK, frames + 1)))
                wave = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
            except AudioError as exc:
                yield i, TagFailure(names[i], exc.reason)
                continue
            except Exception as exc:  # anything else about this file: report it, go on
                yield i, TagFailure(names[i], f"{type(exc).__name__}: {exc}")
                continue
            if len(wave) >= single_pass:  # the header under-stated the length
                yield i, self._guarded(names[i], lambda w=wave: self._tag_blocks(iter([w]), progress))
                continue
            key = self._group_key(len(wave))
            group = pending.setdefault(key, [])
            group.append((i, wave))
            if len(group) >= self._batch_limit(key):
                yield from self._run_group(pending.pop(key), names, progress)
            elif sum(len(w) for g in pending.values() for _, w in g) > 2 * self.max_batch_samples:
                largest = max(pending, key=lambda k: sum(len(w) for _, w in pending[k]))
                yield from self._run_group(pending.pop(largest), names, progress)
        for key in sorted(pending):
            yield from self._run_group(pending[key], names, progress)
        for i in long:
            yield i, self._guarded(names[i], lambda i=i: self._tag_blocks(iter_audio_blocks(sources[i]), progress))

    def tag_many(self, sources: Sequence[str | Path], names: Sequence[str] | None = None) -> list[TagResult | TagFailure]:
        """:meth:`iter_tag` collected in the order of ``sources``."""
        out: list[TagResult | TagFailure | None] = [None] * len(sources)
        for i, r in self.iter_tag(sources, names):
            out[i] = r
        return out  # type: ignore[return-value]

    # ---------------------------------------------------------------- internals

    @property
    def _single_pass_samples(self) -> int:
        return (self.chunk_segments + self.context_segments) * SEGMENT_SAMPLES

    def _batch_limit(self, length: int) -> int:
        return max(1, min(self.batch_size, self.max_batch_samples // max(length, 1)))

    def _group_key(self, length: int) -> int:
        length = max(length, MIN_SAMPLES)
        if self.pad_batches:
            return int(math.ceil(length / SAMPLE_RATE)) * SAMPLE_RATE
        return length

    def _guarded(self, name: str, fn: Callable[[], _Raw]) -> TagResult | TagFailure:
        try:
            return self._finish(name, fn())
        except AudioError as exc:
            return TagFailure(name, exc.reason)
        except Exception as exc:
            return TagFailure(name, f"{type(exc).__name__}: {exc}")

    def _run_group(self, group: list[tuple[int, np.ndarray]], names: Sequence[str],
                   progress: Callable[[float], None] | None) -> Iterator[tuple[int, TagResult | TagFailure]]:
        """One forward pass over short files (equal length, or padded to the longest with ``pad_batches``)."""
        width = max(MIN_SAMPLES, max(len(w) for _, w in group))
        batch = np.zeros((len(group), width), dtype=np.float32)
        for row, (_, wave) in enumerate(group):
            batch[row, : len(wave)] = wave
        try:
            xa, xb = self._runner(batch)
        except Exception as exc:
            for i, _ in group:
                yield i, TagFailure(names[i], f"{type(exc).__name__}: {exc}")
            return
        for row, (i, wave) in enumerate(group):
            t = _segments_of(len(wave))
            raw = _Raw(len(wave), xa[row, :, :t], None if xb is None else xb[row, :, :t])
            if self._logmel is not None:
                raw.spectrogram_pool = self._pool(len(wave))
                raw.spectrogram = self._spectrogram(batch[row : row + 1], 0, t, raw.spectrogram_pool)[0]
            if progress is not None:
                progress(len(wave) / SAMPLE_RATE)
            yield i, self._finish(names[i], raw)

    def _tag_blocks(self, blocks: Iterator[np.ndarray], progress: Callable[[float], None] | None = None) -> _Raw:
        """Stream blocks of 16 kHz audio through the network chunk by chunk (see the module doc)."""
        core = self.chunk_segments
        ctx = self.context_segments
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
            xa, xb = self._runner(batch)
            for row, (_, lo, hi) in enumerate(pending):
                xa_parts.append(xa[row, :, lo:hi])
                if xb is not None:
                    xb_parts.append(xb[row, :, lo:hi])
                if self._logmel is not None:  # one column per segment while streaming
                    spec_parts.append(self._spectrogram(batch[row : row + 1], lo, hi, TIME_STRIDE)[0])
                if progress is not None:
                    progress((hi - lo) * SEGMENT_SAMPLES / SAMPLE_RATE)
            pending.clear()

        def schedule(chunk: np.ndarray, lo: int, hi: int) -> None:
            if pending and (len(pending) >= self.chunk_batch or len(pending[0][0]) != len(chunk)):
                flush()
            pending.append((chunk, lo, hi))

        for block in blocks:
            pieces.append(block)
            buffered += len(block)
            while buf_start + buffered >= (next_seg + core + ctx) * SEGMENT_SAMPLES:
                buffer = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
                start = max(0, next_seg - ctx) * SEGMENT_SAMPLES
                stop = (next_seg + core + ctx) * SEGMENT_SAMPLES
                chunk = buffer[start - buf_start : stop - buf_start].copy()
                lo = next_seg - start // SEGMENT_SAMPLES
                schedule(chunk, lo, lo + core)
                next_seg += core
                keep_from = (next_seg - ctx) * SEGMENT_SAMPLES
                buffer = buffer[keep_from - buf_start :]
                pieces, buffered, buf_start = [buffer], len(buffer), keep_from
        total = buf_start + buffered
        if next_seg == 0:  # short: one pass over the whole recording
            wave = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
            if len(wave) < MIN_SAMPLES:
                wave = np.pad(wave, (0, MIN_SAMPLES - len(wave)))
            xa, xb = self._runner(wave[None, :])
            t = _segments_of(total)
            raw = _Raw(total, xa[0, :, :t], None if xb is None else xb[0, :, :t])
            if self._logmel is not None:
                raw.spectrogram_pool = self._pool(total)
                raw.spectrogram = self._spectrogram(wave[None, :], 0, t, raw.spectrogram_pool)[0]
            if progress is not None:
                progress(total / SAMPLE_RATE)
            return raw
        t_total = _segments_of(total)
        if next_seg < t_total:  # the rest, up to the end of the file
            buffer = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
            start = (next_seg - ctx) * SEGMENT_SAMPLES
            lo = ctx
            schedule(buffer[start - buf_start :].copy(), lo, lo + t_total - next_seg)
        flush()
        xa = np.concatenate(xa_parts, axis=-1)
        xb = np.concatenate(xb_parts, axis=-1) if xb_parts else None
        raw = _Raw(total, xa, xb)
        if spec_parts:  # one column per segment so far; pool further when that is more than wanted
            spec = np.concatenate(spec_parts, axis=-1)
            factor = max(1, self._pool(total) // TIME_STRIDE)
            n = spec.shape[1] - spec.shape[1] % factor
            raw.spectrogram = spec[:, :n].reshape(spec.shape[0], n // factor, factor).mean(axis=2)
            raw.spectrogram_pool = TIME_STRIDE * factor
        return raw

    def _finish(self, source: str, raw: _Raw) -> TagResult:
        xa = raw.xa.astype(np.float32, copy=False)
        if raw.xb is not None:
            xb = raw.xb.astype(np.float64)
            att64 = xb / (xb.sum(axis=-1, keepdims=True) + ATTENTION_EPS)
            clip = (att64 * xa).sum(axis=-1)
            attention = att64.astype(np.float32)
            xb32 = raw.xb.astype(np.float32, copy=False)
        else:
            clip = xa.astype(np.float64).mean(axis=-1)
            attention, xb32 = None, None
        result = TagResult(
            source=source,
            duration=raw.samples / SAMPLE_RATE,
            classes=self.classes,
            clip_probs=clip.astype(np.float32),
            segment_probs=xa,
            attention=attention,
            segment_seconds=segment_duration(),
            attention_raw=xb32,
            tag_thresholds=self.tag_thresholds,
            spectrogram=raw.spectrogram,
            spectrogram_hop=raw.spectrogram_pool * HOP / SAMPLE_RATE,
        )
        if self.detect_events:
            result.events = _decode(result.scores(self.event_settings.output), self.classes, self._event_thr,
                                    result.segment_seconds, self._median)
        return result

    # ---------------------------------------------------------------- spectrogram for timelines

    def _pool(self, samples: int) -> int:
        """Frames per spectrogram column: a power of two, so that a file gives at most ``spectrogram_columns``."""
        frames = max(1, samples // HOP)
        p = 1
        while frames / p > self.spectrogram_columns:
            p *= 2
        return p

    def _spectrogram(self, batch: np.ndarray, lo: int, hi: int, pool: int) -> np.ndarray:
        """(B, 64, columns) log-mel of segments [lo, hi), averaged over ``pool`` frames per column."""
        with torch.inference_mode():
            logmel = self._logmel(torch.from_numpy(np.ascontiguousarray(batch))).numpy()  # (B, F, 64)
        frames = logmel[:, lo * TIME_STRIDE : hi * TIME_STRIDE]
        b, f, m = frames.shape
        f -= f % pool
        pooled = frames[:, :f].reshape(b, f // pool, pool, m).mean(axis=2)
        return np.ascontiguousarray(pooled.transpose(0, 2, 1), dtype=np.float32)


def _segments_of(samples: int) -> int:
    """Output segments for ``samples`` of audio (at least one: short clips are zero-padded)."""
    return max(1, num_segments(max(num_frames(samples), TIME_STRIDE)))


def _export_temporary(checkpoint: Checkpoint) -> Path:
    import tempfile

    from .export import export_onnx

    folder = Path(tempfile.mkdtemp(prefix="weaktag-onnx-"))
    return export_onnx(checkpoint, folder / "model.onnx").path


def _checkpoint_from_onnx(path: Path) -> Checkpoint:
    """A weightless stand-in :class:`Checkpoint` built from an exported file's metadata."""
    from .export import read_metadata
    from .models import ModelConfig, WeakTagNet

    meta = read_metadata(path)
    model = WeakTagNet(ModelConfig(**meta["model_config"]))  # architecture only; never run
    return Checkpoint(model=model, classes=list(meta["classes"]), scheme=meta.get("scheme", ""),
                      experiment={}, tag_thresholds=np.asarray(meta["tag_thresholds"], dtype=float),
                      events=EventSettings(**meta["events"]), path=path)


# --------------------------------------------------------------------------- many files, with outputs


def parse_thresholds(spec: str, classes: Sequence[str], defaults: np.ndarray | Sequence[float] | None = None) -> list[float]:
    """Threshold flag value -> one threshold per class.

    ``"0.3"``: every class; ``"0.3,0.5,..."``: one per class in class order;
    ``"dog=0.3,siren=0.6"``: those classes, the others keep ``defaults`` (else 0.5).
    """
    items = [item.strip() for item in spec.split(",") if item.strip()]
    if not items:
        raise ValueError("empty threshold specification")
    if all("=" in item for item in items):
        out = list(np.broadcast_to(np.asarray(0.5 if defaults is None or len(defaults) == 0 else defaults,
                                              dtype=float), (len(classes),)))
        index = {name: i for i, name in enumerate(classes)}
        for item in items:
            name, _, value = item.rpartition("=")
            if name not in index:
                raise ValueError(f"threshold for unknown class {name!r}; classes: {', '.join(classes)}")
            out[index[name]] = float(value)
        return [float(v) for v in out]
    if any("=" in item for item in items):
        raise ValueError(f"threshold specification {spec!r} mixes label=value items with bare values")
    values = [float(v) for v in items]
    if len(values) == 1:
        return values * len(classes)
    if len(values) != len(classes):
        raise ValueError(f"{len(values)} thresholds given for {len(classes)} classes")
    return values


def discover_inputs(inputs: Sequence[str | Path]) -> tuple[list[tuple[Path, str]], list[TagFailure]]:
    """Files to tag from file paths, folders (searched recursively for audio suffixes) and glob patterns.

    Returns ``(path, name)`` pairs, where the name is what output tables call the file: the
    path relative to the folder for files found in a folder, the path as given otherwise.
    Arguments that match nothing come back as failures. Hidden files and files without an
    audio suffix inside folders are not considered; files named explicitly always are.
    """
    found: list[tuple[Path, str]] = []
    failures: list[TagFailure] = []
    seen: set[Path] = set()
    names: set[str] = set()

    def add(path: Path, name: str) -> None:
        key = path.resolve()
        if key in seen:
            return
        seen.add(key)
        if name in names:
            name = str(path)
        names.add(name)
        found.append((path, name))

    for arg in inputs:
        arg = str(arg)
        path = Path(arg)
        if path.is_dir():
            files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES
                           and not any(part.startswith(".") for part in f.relative_to(path).parts))
            if not files:
                failures.append(TagFailure(arg, f"no audio files ({' '.join(AUDIO_SUFFIXES)}) in this folder"))
            for f in files:
                add(f, f.relative_to(path).as_posix())
        elif path.exists():
            add(path, arg)
        elif glob.has_magic(arg):
            matches = [Path(m) for m in sorted(glob.glob(arg, recursive=True)) if not Path(m).is_dir()]
            if not matches:
                failures.append(TagFailure(arg, "no file matches this pattern"))
            for m in matches:
                add(m, str(m))
        else:
            failures.append(TagFailure(arg, "file not found"))
    return found, failures


@dataclass
class TagRunSummary:
    """What a :func:`tag_files` run did."""

    files: int
    ok: int
    failed: int
    audio_seconds: float
    wall_seconds: float
    events: int
    backend: str
    failures: list[TagFailure] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def speed(self) -> float:
        """Seconds of audio tagged per second of wall time (x real time)."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else float("nan")

    @property
    def real_time_factor(self) -> float:
        """Wall time / audio time (below 1 is faster than real time)."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds > 0 else float("nan")

    def to_dict(self) -> dict:
        return {"files": self.files, "ok": self.ok, "failed": self.failed,
                "audio_seconds": round(self.audio_seconds, 3), "audio_hours": round(self.audio_seconds / 3600, 6),
                "wall_seconds": round(self.wall_seconds, 3), "speed_x_real_time": round(self.speed, 2),
                "real_time_factor": round(self.real_time_factor, 6), "events": self.events, "backend": self.backend,
                "failures": [{"filename": f.source, "reason": f.reason} for f in self.failures],
                "outputs": self.outputs}

    def text(self) -> str:
        lines = [f"tagged {self.ok} of {self.files} file(s), {self.failed} failed; "
                 f"{self.audio_seconds / 3600:.3f} h of audio in {self.wall_seconds:.1f} s "
                 f"({self.speed:.0f}x real time, real-time factor {self.real_time_factor:.4f}); "
                 f"{self.events} event(s); backend {self.backend}"]
        for f in self.failures[:10]:
            lines.append(f"  failed: {f.source}: {f.reason}")
        if len(self.failures) > 10:
            lines.append(f"  ... and {len(self.failures) - 10} more (see errors.tsv)")
        for kind, path in self.outputs.items():
            lines.append(f"  {kind}: {path}")
        return "\n".join(lines)


class _NpzWriter:
    """An .npz written array by array, so segment matrices of many files never sit in memory together."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)

    def add(self, key: str, array: np.ndarray) -> None:
        with self.zip.open(key + ".npy", "w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)

    def close(self) -> None:
        self.zip.close()


def timeline_filename(name: str) -> str:
    """``sub/a.wav`` -> ``sub__a.png`` (flat folder, no collisions between sub-folders)."""
    stem = name.replace("\\", "/").lstrip("./").replace("/", "__")
    return (stem.rsplit(".", 1)[0] if "." in Path(stem).name else stem) + ".png"


def tag_files(tagger: Tagger, inputs: Sequence[str | Path], out_dir: str | Path | None = None, *, top_k: int = 5,
              select: TagSelection = "union", timeline: bool = False, segments: str | Path | bool | None = None,
              json_path: str | Path | None = None, progress: bool = True,
              on_result: Callable[[TagResult], None] | None = None) -> TagRunSummary:
    """What ``weaktag tag`` does: find files, tag them in batches, write the outputs, summarise.

    With ``out_dir``: ``tags.csv`` and ``tags.json`` (selected clip tags), ``events.tsv``
    (DCASE: filename onset offset event_label score, with header; not with a tagger made with
    ``detect_events=False``), ``errors.tsv`` (filename,
    reason), ``summary.json``; ``timelines/<name>.png`` with ``timeline``; ``segments.npz``
    with ``segments=True`` (or at the path ``segments`` names): per file ``<name>/clip_probs``,
    ``<name>/segment_probs`` and, for attention models, ``<name>/attention`` and
    ``<name>/attention_raw``, plus ``classes`` and ``segment_seconds``. Rows follow the order
    of the inputs. Bad files are reported, never fatal.
    """
    started = time.perf_counter()
    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if timeline and out is None:
        raise ValueError("timelines need an output folder (out_dir)")
    if segments is True:
        if out is None:
            raise ValueError("segments=True needs an output folder; give a path instead")
        segments = out / "segments.npz"
    found, failures = discover_inputs(inputs)
    paths = [p for p, _ in found]
    names = [n for _, n in found]
    expected = 0.0
    for p in paths if progress else ():  # the progress bar's total (bad headers count 0)
        try:
            expected += sf.info(str(p)).duration
        except Exception:
            pass
    npz = _NpzWriter(Path(segments)) if segments else None
    if npz is not None:
        npz.add("classes", np.array(tagger.classes))
        npz.add("segment_seconds", np.array(segment_duration()))
    timeline_dir = None
    if timeline:
        from .timeline import plot_timeline

        timeline_dir = out / "timelines"
        timeline_dir.mkdir(parents=True, exist_ok=True)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=round(expected, 1), unit="s", unit_scale=True, desc="tagging", file=sys.stderr,
                   dynamic_ncols=True, bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}{postfix}]")
    rows: dict[int, dict] = {}
    failed_at: dict[int, TagFailure] = {}
    audio_seconds = 0.0
    n_events = 0
    try:
        def advance(seconds: float) -> None:
            if bar is not None:
                bar.update(seconds)

        for i, result in tagger.iter_tag(paths, names, progress=advance):
            if isinstance(result, TagFailure):
                failed_at[i] = result
            else:
                audio_seconds += result.duration
                n_events += len(result.events)
                rows[i] = result.to_dict(top_k, select)
                if npz is not None:
                    npz.add(f"{result.source}/clip_probs", result.clip_probs)
                    npz.add(f"{result.source}/segment_probs", result.segment_probs)
                    if result.attention is not None:
                        npz.add(f"{result.source}/attention", result.attention)
                        npz.add(f"{result.source}/attention_raw", result.attention_raw)
                if timeline_dir is not None:
                    plot_timeline(result, timeline_dir / timeline_filename(result.source), top_k=min(top_k, 8) or 3,
                                  event_settings=tagger.event_settings)
                if on_result is not None:
                    on_result(result)
            if bar is not None:
                bar.set_postfix_str(f"{len(rows)} ok, {len(failed_at) + len(failures)} failed", refresh=False)
    finally:
        if bar is not None:
            bar.close()
        if npz is not None:
            npz.close()
    failures = failures + [failed_at[i] for i in sorted(failed_at)]
    ordered = [rows[i] for i in sorted(rows)]
    summary = TagRunSummary(files=len(rows) + len(failures), ok=len(rows), failed=len(failures),
                            audio_seconds=audio_seconds, wall_seconds=time.perf_counter() - started, events=n_events,
                            backend=tagger.backend, failures=failures)
    if json_path is not None:
        Path(json_path).write_text(_json_lines(ordered))
        summary.outputs["json"] = str(json_path)
    if npz is not None:
        summary.outputs["segments"] = str(segments)
    if out is not None:
        _write_tables(out, ordered, failures, events=tagger.detect_events)
        summary.outputs.update({"tags": str(out / "tags.csv"), "tags_json": str(out / "tags.json")})
        if tagger.detect_events:
            summary.outputs["events"] = str(out / "events.tsv")
        summary.outputs.update({"errors": str(out / "errors.tsv"), "summary": str(out / "summary.json")})
        if timeline_dir is not None:
            summary.outputs["timelines"] = str(timeline_dir)
        summary.wall_seconds = time.perf_counter() - started
        info = summary.to_dict()
        info["settings"] = {"checkpoint": str(tagger.checkpoint.path) if tagger.checkpoint.path else None,
                            "top_k": top_k, "select": select, "events": tagger.event_settings.to_dict(),
                            "median_filter_segments": tagger._median, "chunk_seconds":
                            tagger.chunk_segments * segment_duration(), "context_seconds":
                            tagger.context_segments * segment_duration(), "batch_size": tagger.batch_size}
        (out / "summary.json").write_text(json.dumps(info, indent=2))
    return summary


def _write_tables(out: Path, rows: list[dict], failures: list[TagFailure], events: bool = True) -> None:
    with open(out / "tags.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "rank", "label", "probability", "threshold", "above_threshold"])
        for row in rows:
            for t in row["tags"]:
                w.writerow([row["filename"], t["rank"], t["label"], f"{t['probability']:.6f}", f"{t['threshold']:.6f}",
                            int(t["above_threshold"])])
    (out / "tags.json").write_text(_json_lines([{k: r[k] for k in ("filename", "duration", "tags")} for r in rows]))
    if events:
        _write_events(out / "events.tsv", rows)
    with open(out / "errors.tsv", "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["filename", "reason"])
        for failure in failures:
            w.writerow([failure.source, failure.reason.replace("\t", " ").replace("\n", " ")])


def _write_events(path: Path, rows: list[dict]) -> None:
    """DCASE event table with a score column: filename onset offset event_label score."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["filename", "onset", "offset", "event_label", "score"])
        for row in rows:
            for e in row["events"]:
                w.writerow([row["filename"], f"{e['onset']:.3f}", f"{e['offset']:.3f}", e["event_label"],
                            f"{e['score']:.6f}"])


def _json_lines(rows: list[dict]) -> str:
    """A JSON array with one file per line: readable, and written by the fast (C) encoder."""
    return "[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n" if rows else "[]\n"
