"""What tagging returns: per-recording results (clip tags, segment matrices, events) and failures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..postprocess import DetectedEvent, EventSettings, decode_events, segment_scores

TagSelection = Literal["top-k", "threshold", "union"]


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
    """What the model says about one recording. Matrices are (C, T); segment t spans
    ``[t * segment_seconds, (t + 1) * segment_seconds)`` (0.16 s on VGGish's grid)."""

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
    spectrogram: np.ndarray | None = None  # (mel bands, F) log-mel, time-pooled, when the tagger keeps it
    spectrogram_hop: float = 0.01  # seconds per spectrogram column

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
        """(C, T) detection scores of ``output`` kind (see :func:`weaktag.postprocess.segment_scores`)."""
        return segment_scores(output, self.segment_probs, self.attention, self.clip_probs)

    def detect_events(self, settings: EventSettings) -> list[DetectedEvent]:
        """Events from the segment outputs with ``settings`` (output kind, thresholds, median filter)."""
        return decode_events(self.scores(settings.output), self.classes, settings.thresholds_for(self.classes),
                             self.segment_seconds, settings.filter_segments(self.classes, self.segment_seconds),
                             duration=self.duration)

    def to_dict(self, top_k: int = 5, select: TagSelection = "union") -> dict:
        """JSON-ready: file, duration, selected tags and events (matrices left out); an event's
        ``clip_above_threshold`` says whether its class is also tagged for the clip."""
        tagged = {label for label, _ in self.above()}
        return {
            "filename": self.source,
            "duration": round(self.duration, 6),
            "tags": [{"label": t.label, "probability": round(t.probability, 6), "threshold": round(t.threshold, 6),
                      "above_threshold": t.above_threshold, "rank": t.rank}
                     for t in self.select_tags(top_k, select)],
            "events": [{"onset": e.onset, "offset": e.offset, "event_label": e.label, "score": round(e.score, 6),
                        "clip_above_threshold": e.label in tagged} for e in self.events],
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
