"""The time grid, defined once: how samples become log-mel frames and frames become output segments.

A backbone declares its front end (:class:`FrontEndSpec`: sample rate, window, hop, mel bands)
and its time resolution (:class:`TimeGrid`: frames per output segment and the receptive field
beyond a segment). Everything that turns time into indices or back (strong-label matrices,
segment spans, chunked inference, median-filter lengths, ONNX input minimums) asks the grid.

Segment spans
-------------
Output segment ``t`` pools input frames ``stride * t .. stride * (t + 1) - 1``; frames are
``hop`` samples apart, so segment ``t`` *starts* at ``t * segment_seconds``. Its span is
``[t * segment_seconds, (t + 1) * segment_seconds)``: the stride, not the receptive field
(which is wider and overlaps neighbours). A class is active in segment ``t`` of Y when one of
its events overlaps that span by more than zero; a zero-length event marks the segment that
contains its onset. The same spans turn segment outputs back into times, so labels and
detections use one convention.

Coverage
--------
A recording of ``N`` samples gets ``ceil(N / segment_samples)`` segments (at least one), so the
last segment reaches or passes its end (by less than one segment): every second of audio is
scored. The network yields that many when the recording is zero-padded at its end to
:meth:`TimeGrid.padded_samples` (the last segment's frames plus the window's overhang). Training
crops, evaluation and tagging all follow this rule; times derived from the last segment (event
offsets) are clipped to the recording's duration.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Protocol, Sequence

import numpy as np

from .errors import UsageError

#: tagging refuses recordings shorter than this (README's floor); shorter input than one
#: segment is zero-padded up to :attr:`TimeGrid.min_samples`
MIN_AUDIO_SECONDS = 0.1


def median_filter_length(seconds: float, segment_seconds: float) -> int:
    """Median filter length in segments: ``seconds`` rounded to whole segments, then up to odd (>= 1)."""
    if seconds < 0:
        raise UsageError(f"median filter must be >= 0 seconds, got {seconds}")
    n = max(1, int(round(seconds / segment_seconds)))
    return n if n % 2 else n + 1


class _EventLike(Protocol):
    label: str
    onset: float
    offset: float


@dataclass(frozen=True)
class FrontEndSpec:
    """A log-mel front end: what a backbone expects as input. Defaults are VGGish's.

    Frames of ``window`` samples every ``hop`` (periodic Hann, no centring), |rfft| with ``n_fft``
    points raised to ``power``, HTK-mel triangles (``mel_norm`` "none": peak 1, as VGGish;
    "unit_sum": each filter's weights sum to 1), then ``compression``: "log" is
    ``log(mel + log_offset)`` (VGGish), "log10_1p" is ``log10(1 + log_scale * mel)``; finally
    divided by ``scale`` (a fixed min-max range; 1 leaves values as they are).
    """

    sample_rate: int = 16_000
    window: int = 400  # samples (25 ms)
    hop: int = 160  # samples (10 ms)
    n_fft: int = 512
    n_mels: int = 64
    f_min: float = 125.0
    f_max: float = 7500.0
    log_offset: float = 0.01
    power: float = 1.0
    mel_norm: str = "none"
    compression: str = "log"
    log_scale: float = 1.0
    scale: float = 1.0

    @property
    def silence(self) -> float:
        """The feature value of digital silence (what short inputs are padded with)."""
        if self.compression == "log":
            return math.log(self.log_offset) / self.scale
        return 0.0

    @property
    def frame_seconds(self) -> float:
        return self.hop / self.sample_rate

    def num_frames(self, num_samples: int) -> int:
        """Frames for ``num_samples`` (no centring): ``1 + (N - window) // hop``, 0 below one window."""
        if num_samples < self.window:
            return 0
        return 1 + (num_samples - self.window) // self.hop

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TimeGrid:
    """Output segments of a backbone over its front end.

    ``time_stride``: frames per output segment (VGGish's four 2x2 max-pools: 16).
    ``context_frames``: how far the receptive field reaches beyond a segment on each side
    (VGGish + the 3x1 L7: 1+1+2+2+4+4+4+8+8+8+16 = 43 frames), which sets the context a chunked
    pass needs to equal a whole-file pass.
    """

    frontend: FrontEndSpec = FrontEndSpec()
    time_stride: int = 16
    context_frames: int = 43

    @property
    def sample_rate(self) -> int:
        return self.frontend.sample_rate

    @property
    def segment_samples(self) -> int:
        return self.time_stride * self.frontend.hop

    @property
    def segment_seconds(self) -> float:
        return self.segment_samples / self.frontend.sample_rate

    @property
    def min_samples(self) -> int:
        """The shortest input that gives one output segment (shorter audio is zero-padded to it)."""
        return self.frontend.window + (self.time_stride - 1) * self.frontend.hop

    @property
    def context_seconds(self) -> float:
        return self.context_frames * self.frontend.hop / self.frontend.sample_rate

    def num_frames(self, num_samples: int) -> int:
        return self.frontend.num_frames(num_samples)

    def num_segments(self, num_frames: int) -> int:
        """Segments the network yields for ``num_frames`` input frames (floor: a partial segment is dropped)."""
        return num_frames // self.time_stride

    def segments_for_samples(self, num_samples: int) -> int:
        """Segments that cover a recording of ``num_samples`` (ceil, at least one; see Coverage in the module doc)."""
        return max(1, -(-num_samples // self.segment_samples))

    def padded_samples(self, num_samples: int) -> int:
        """The length a recording of ``num_samples`` is zero-padded to, so that the network yields exactly
        :meth:`segments_for_samples` segments: never shorter than the recording."""
        return (self.segments_for_samples(num_samples) - 1) * self.segment_samples + self.min_samples

    def segments_in(self, seconds: float, minimum: int = 1) -> int:
        """``seconds`` rounded to whole segments (at least ``minimum``)."""
        return max(minimum, int(round(seconds * self.sample_rate / self.segment_samples)))

    def segment_times(self, num_segments: int) -> np.ndarray:
        """(T, 2) array of [start, end) seconds of every segment."""
        starts = np.arange(num_segments) * self.segment_seconds
        return np.stack([starts, starts + self.segment_seconds], axis=1)

    def segment_labels(self, events: Iterable[_EventLike], classes: Sequence[str], num_segments: int) -> np.ndarray:
        """Strong events -> Y in {0, 1}^(C, T) for ``num_segments`` segments (see the module doc)."""
        step = self.segment_seconds
        index = {name: i for i, name in enumerate(classes)}
        y = np.zeros((len(classes), num_segments), dtype=np.float32)
        for event in events:
            if event.label not in index:
                raise ValueError(f"event label {event.label!r} is not in the class list")
            first = int(math.floor(event.onset / step))
            last = int(math.ceil(event.offset / step)) - 1 if event.offset > event.onset else first
            first, last = max(first, 0), min(last, num_segments - 1)
            if first <= last:
                y[index[event.label], first : last + 1] = 1.0
        return y

    def median_filter_segments(self, seconds: float) -> int:
        return median_filter_length(seconds, self.segment_seconds)

    def to_dict(self) -> dict[str, Any]:
        return {"frontend": self.frontend.to_dict(), "time_stride": self.time_stride,
                "context_frames": self.context_frames}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TimeGrid":
        return cls(FrontEndSpec(**values["frontend"]), int(values["time_stride"]), int(values["context_frames"]))


#: VGGish's front end and the VGGish backbone's grid: 63 segments of 0.16 s (1008 frames of 161,520 padded
#: samples) cover 10 s
VGGISH_FRONTEND = FrontEndSpec()
VGGISH_GRID = TimeGrid(VGGISH_FRONTEND, time_stride=16, context_frames=43)
