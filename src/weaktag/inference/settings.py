"""How ``weaktag tag`` and :class:`~weaktag.inference.Tagger` run: :class:`TaggingConfig`, checked as configs are."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import UsageError
from ..geometry import TimeGrid
from ..postprocess import ATTENTION_KINDS, OUTPUT_KINDS, Decoding, EventSettings
from ..settings import at_least, build, check_fields, check_setting, choices


@dataclass
class TaggingConfig:
    """How ``weaktag tag`` and :class:`~weaktag.inference.Tagger` run; the CLI's defaults come from here.

    None for the event settings and thresholds means "the checkpoint's" (chosen on validation).
    """

    batch_size: int = field(default=32, metadata=at_least(1))  # files per forward pass
    max_batch_seconds: float = field(default=320.0, metadata={"min_exclusive": 0.0})  # audio per forward pass
    chunk_seconds: float = field(default=30.72, metadata={"min_exclusive": 0.0, "finite": True})  # rounded to whole segments
    # real audio on each side of a chunk; None: the backbone's receptive field rounded up to whole
    # segments, plus one (0.64 s for VGGish), so chunked outputs equal a whole-file pass
    context_seconds: Optional[float] = field(default=None, metadata=at_least(0.0, finite=True))
    chunk_batch: int = field(default=1, metadata=at_least(1))  # chunks of one file per forward pass
    pad_batches: bool = False  # also batch files of different lengths (zero-padded)
    skip_silent: bool = True  # report all-zero files as failures instead of tagging them
    detect_events: bool = True
    event_output: Optional[str] = field(default=None, metadata=choices(*OUTPUT_KINDS))
    # one value, or a list with one per class
    event_thresholds: Any = field(default=None, metadata={"min": 0.0, "max": 1.0})
    median_filter_seconds: Optional[float] = field(default=None, metadata=at_least(0.0))
    # hysteresis (events last while the score is at or above this fraction of the threshold), gap
    # merging and minimum event duration (seconds): one value, or one per class
    stay_on_fraction: Any = field(default=None, metadata={"min_exclusive": 0.0, "max": 1.0})
    max_gap_seconds: Any = field(default=None, metadata=at_least(0.0, finite=True))
    min_duration_seconds: Any = field(default=None, metadata=at_least(0.0, finite=True))
    tag_thresholds: Any = field(default=None, metadata={"min": 0.0, "max": 1.0})  # one value, or one per class
    # which events to report: of every class, or only of the classes tagged for the clip (clip
    # probability at or above its tag threshold)
    events_for: str = field(default="all", metadata=choices("all", "tagged"))
    # clip tags: the K most probable classes, those above their threshold, or either (union)
    top_k: int = field(default=5, metadata=at_least(1))
    select: str = field(default="union", metadata=choices("top-k", "threshold", "union"))
    keep_spectrogram: bool = False  # keep a time-pooled log-mel (for timelines)
    spectrogram_columns: int = field(default=4000, metadata=at_least(1))
    num_threads: Optional[int] = field(default=None, metadata=at_least(1))
    device: str = "cpu"  # where the network runs: cpu, cuda, cuda:1, ... (checked when a Tagger is made)
    # processes that read, decode and resample files while the network runs; 0: the calling process
    # (no start-up cost, nothing to fork: right for small runs, and on a CPU the forward pass is the bottleneck)
    decode_workers: int = field(default=0, metadata=at_least(0))


def tagging_config(**values: Any) -> TaggingConfig:
    """A validated :class:`TaggingConfig` with ``values`` (None keeps the default) over the defaults."""
    config = build(TaggingConfig, [({k: v for k, v in values.items() if v is not None}, "tagging settings")])
    check_fields(config, "tagging settings")
    return config


@dataclass(frozen=True)
class ChunkPlan:
    """How a tagger cuts recordings on the model's grid (see :mod:`weaktag.inference.engine`)."""

    chunk_segments: int  # kept segments per chunk of a long recording (at least one)
    context_segments: int  # real audio on each side of a chunk, in segments
    segment_samples: int
    max_batch_samples: int  # audio per forward pass of short files

    @property
    def single_pass_samples(self) -> int:
        """Recordings shorter than this run in one pass (and batch with others); longer ones are chunked."""
        return (self.chunk_segments + self.context_segments) * self.segment_samples


def chunk_plan(settings: TaggingConfig, grid: TimeGrid) -> ChunkPlan:
    """``settings``' chunk, context and batch lengths in whole segments and samples of ``grid``."""
    # NaN and inf would break the rounding below; checked again here for settings made without tagging_config
    for key in ("chunk_seconds", "context_seconds"):
        check_setting(TaggingConfig, key, getattr(settings, key))
    context = settings.context_seconds
    if context is None:  # the receptive field in whole segments, plus one for the window's overhang
        context_segments = int(math.ceil(grid.context_frames / grid.time_stride)) + 1
    else:
        context_segments = max(1, int(math.ceil(context * grid.sample_rate / grid.segment_samples)))
    # any chunk length works: it is rounded to whole segments (at least one), so chunk boundaries
    # fall on the network's frame grid
    return ChunkPlan(grid.segments_in(settings.chunk_seconds), context_segments, grid.segment_samples,
                     max(grid.min_samples, int(settings.max_batch_seconds * grid.sample_rate)))


@dataclass(frozen=True)
class Decisions:
    """Clip tag thresholds and event settings in use: ``settings``' overrides over the checkpoint's."""

    tag_thresholds: np.ndarray  # (C,)
    events: EventSettings
    decoding: Decoding  # ``events`` per class on the model's grid


def resolve_decisions(settings: TaggingConfig, classes: Sequence[str], tag_thresholds: np.ndarray,
                      events: EventSettings, has_attention: bool, segment_seconds: float) -> Decisions:
    """``settings``' thresholds and event options (None keeps the checkpoint's ``tag_thresholds``, ``events``),
    checked as loading checks them, items named by class."""
    labels = list(classes)
    thresholds = tag_thresholds if settings.tag_thresholds is None else settings.tag_thresholds
    check_setting(TaggingConfig, "tag_thresholds", thresholds, labels=labels)
    values = np.asarray(thresholds, dtype=float)
    if values.ndim > 1 or values.size not in (1, len(labels)):
        raise UsageError(f"tag thresholds: expected {len(labels)} values, got {values.shape}")
    events = replace(events)
    if settings.event_output is not None:
        events.output = settings.event_output
    if settings.event_thresholds is not None:
        check_setting(TaggingConfig, "event_thresholds", settings.event_thresholds, labels=labels)
        events.thresholds = [float(t) for t in np.atleast_1d(np.asarray(settings.event_thresholds, dtype=float))]
    median = settings.median_filter_seconds
    if median is not None:
        check_setting(TaggingConfig, "median_filter_seconds", median, labels=labels)
        events.median_filter_seconds = float(median) if np.isscalar(median) else [float(x) for x in median]
    for key in ("stay_on_fraction", "max_gap_seconds", "min_duration_seconds"):
        value = getattr(settings, key)
        if value is not None:
            check_setting(TaggingConfig, key, value, labels=labels)
            setattr(events, key, float(value) if np.isscalar(value) else [float(x) for x in value])
    if events.output not in OUTPUT_KINDS:
        raise UsageError(f"event output must be one of {OUTPUT_KINDS}, not {events.output!r}")
    if events.output in ATTENTION_KINDS and not has_attention:
        raise UsageError(f"event output {events.output!r} needs an attention model; this one pools "
                         "(use event output 'segment')")
    return Decisions(np.broadcast_to(values, (len(labels),)).copy(), events, events.decoding(labels, segment_seconds))
