"""How ``weaktag tag`` and :class:`~weaktag.inference.Tagger` run: :class:`TaggingConfig`, checked as configs are."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..postprocess import OUTPUT_KINDS
from ..settings import at_least, build, check_fields, choices


@dataclass
class TaggingConfig:
    """How ``weaktag tag`` and :class:`~weaktag.inference.Tagger` run; the CLI's defaults come from here.

    None for the event settings and thresholds means "the checkpoint's" (chosen on validation).
    """

    batch_size: int = field(default=32, metadata=at_least(1))  # files per forward pass
    max_batch_seconds: float = field(default=320.0, metadata={"min_exclusive": 0.0})  # audio per forward pass
    chunk_seconds: float = field(default=30.72, metadata={"min_exclusive": 0.0})  # rounded to whole segments
    # real audio on each side of a chunk; None: the backbone's receptive field rounded up to whole
    # segments, plus one (0.64 s for VGGish), so chunked outputs equal a whole-file pass
    context_seconds: Optional[float] = field(default=None, metadata=at_least(0.0))
    chunk_batch: int = field(default=1, metadata=at_least(1))  # chunks of one file per forward pass
    pad_batches: bool = False  # also batch files of different lengths (zero-padded)
    skip_silent: bool = True  # report all-zero files as failures instead of tagging them
    detect_events: bool = True
    event_output: Optional[str] = field(default=None, metadata=choices(*OUTPUT_KINDS))
    # one value, or a list with one per class
    event_thresholds: Any = field(default=None, metadata={"min": 0.0, "max": 1.0})
    median_filter_seconds: Optional[float] = field(default=None, metadata=at_least(0.0))
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
