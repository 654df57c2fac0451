"""A PNG timeline per file: log-mel spectrogram, segment scores and detected events.

Panels, sharing the time axis: (1) the log-mel spectrogram (64 bands, time-pooled for long
files; present when the tagger ran with ``keep_spectrogram=True``), (2) the per-segment
scores used for event detection for the classes shown, with each class's threshold dashed,
(3) one lane per class with its detected events. Classes shown: those with events, then the
most probable clip tags, at most ``max_classes``. The legend sits to the right of the plots, so it
never covers a curve; each class's threshold is a dashed line in its curve's colour, named in
the legend with its value.

Speed: drawing, not tagging, is what a timeline costs (about 0.1 s of CPU a file, against 0.03 s
to tag ten seconds of audio). :func:`plot_timeline` draws once, with no layout pass: the figure
has fixed margins, measured from its texts, with room to spare, and its pixels are cropped to
their content (what ``bbox_inches="tight"`` did, at the cost of a layout draw of its own). Each
process keeps its figures, one per layout (lanes, size), and redraws only what changes between
files; the PNG is written at zlib level 1. :class:`TimelineWriter` draws in worker processes
beside the tagging.
"""

from __future__ import annotations

import functools
import multiprocessing
import signal
import sys
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import AutoLocator
from matplotlib.transforms import ScaledTranslation

from ..files import naming
from ..postprocess import EventSettings
from .results import TagResult


def plot_timeline(result: TagResult, path: str | Path, top_k: int = 3, event_settings: EventSettings | None = None,
                  max_classes: int = 8, dpi: int = 100) -> Path:
    """Write the timeline of ``result`` to ``path`` (PNG)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = _TimelineContent.of(result, top_k, event_settings, max_classes)
    layout = _Layout.of(content, dpi)
    figure = _FIGURES.pop(layout, None) or _TimelineFigure(layout)
    _FIGURES[layout] = figure  # most recent last; the oldest goes beyond the cache's size
    while len(_FIGURES) > _FIGURES_KEPT:
        del _FIGURES[next(iter(_FIGURES))]
    fig = figure.show(content)
    fig.canvas.draw()
    pixels = _crop_to_content(np.asarray(fig.canvas.buffer_rgba()), round(TIGHT_PAD_INCHES * dpi))
    with naming(path):  # a full disk says which PNG
        # level 1: a third faster than PNG's default 6, for a file about a tenth larger
        PIL.Image.fromarray(pixels[:, :, :3]).save(path, format="PNG", compress_level=1, dpi=(dpi, dpi))
    return path


def _crop_to_content(pixels: np.ndarray, pad: int) -> np.ndarray:
    """``pixels`` (RGBA) cropped to what is not background, ``pad`` pixels around: the canvas keeps room to
    spare for the legend and labels, so no layout pass is needed to size it exactly."""
    rgba = np.ascontiguousarray(pixels).view(np.uint32)[:, :, 0]  # one comparison a pixel
    ink = rgba != rgba[0, 0]
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not len(rows):
        return pixels
    h, w = ink.shape
    return pixels[max(0, rows[0] - pad): min(h, rows[-1] + 1 + pad), max(0, cols[0] - pad): min(w, cols[-1] + 1 + pad)]


def _ignore_interrupts() -> None:
    """Drawing workers leave Ctrl-C to the main process, which stops the run and closes them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


TIGHT_PAD_INCHES = 0.1


class TimelineWriter:
    """Writes timelines ``directory/<name>.png`` in ``workers`` processes (0: in this one), in the background.

    :meth:`submit` returns at once while fewer than two drawings per worker are pending, else
    waits for the oldest; :meth:`close` waits for all and raises the first drawing's error (a
    bug in the drawing is not to be lost in a worker).
    """

    def __init__(self, workers: int, top_k: int = 3, event_settings: EventSettings | None = None) -> None:
        self.top_k = top_k
        self.event_settings = event_settings
        self._pending: deque[Future] = deque()
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0:
            # not fork: forking a process that runs torch's and the executor's threads can leave a lock
            # held in the child, which then never starts (seen as a hung `tag --timeline`); the fork
            # server imports this module once and forks each worker from that clean process
            context = multiprocessing.get_context("forkserver") if sys.platform == "linux" else None
            if context is not None:
                context.set_forkserver_preload([__name__])
            self._pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_interrupts)
        self._limit = 2 * max(1, workers)

    def submit(self, result: TagResult, path: str | Path) -> None:
        if self._pool is None:
            plot_timeline(result, path, self.top_k, self.event_settings)
            return
        while len(self._pending) >= self._limit:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(plot_timeline, result, path, self.top_k, self.event_settings))

    def close(self, raise_errors: bool = True) -> None:
        """Wait for the pending drawings (``raise_errors``: raise the first one's error) and end the
        workers; ``raise_errors=False`` after a stop or another error, which is the one to report."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            while self._pending:
                future = self._pending.popleft()
                if raise_errors:
                    future.result()
                else:
                    future.cancel()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "TimelineWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def timeline_figure(result: TagResult, top_k: int = 3, event_settings: EventSettings | None = None,
                    max_classes: int = 8, dpi: int = 100) -> Figure:
    """The figure :func:`plot_timeline` draws (uncropped); axes in order: spectrogram, scores, event lanes."""
    content = _TimelineContent.of(result, top_k, event_settings, max_classes)
    return _TimelineFigure(_Layout.of(content, dpi)).show(content)


def shown_classes(result: TagResult, top_k: int, max_classes: int) -> list[int]:
    """The class indices a timeline (and the HTML report) shows: those with events, then the ``top_k`` most
    probable clip tags, at most ``max_classes``."""
    index = {name: i for i, name in enumerate(result.classes)}
    shown: list[int] = []
    for label in [e.label for e in result.events] + [label for label, _ in result.top(top_k)]:
        if index[label] not in shown:
            shown.append(index[label])
    return shown[:max_classes]


@dataclass(frozen=True)
class _TimelineContent:
    """What one timeline shows."""

    result: TagResult
    shown: list[int]  # class indices: those with events, then the top tags
    scores: np.ndarray  # (classes, segments), the scores events are detected on
    thresholds: np.ndarray  # per class
    output: str  # which scores: "segment", ...
    title: str
    top_k: int

    @classmethod
    def of(cls, result: TagResult, top_k: int, event_settings: EventSettings | None,
           max_classes: int) -> "_TimelineContent":
        settings = event_settings or EventSettings()
        tags = ", ".join(f"{label} {p:.2f}" for label, p in result.top(min(top_k, 3)))
        return cls(result, shown_classes(result, top_k, max_classes), result.scores(settings.output),
                   np.asarray(settings.thresholds_for(result.classes), dtype=float), settings.output,
                   f"{result.source}  ({result.duration:.1f} s)  top: {tags}", top_k)

    @property
    def duration(self) -> float:
        return max(self.result.duration, self.result.num_segments * self.result.segment_seconds)

    @property
    def names(self) -> list[str]:
        return [self.result.classes[c] for c in self.shown]

    def legend_labels(self) -> list[str]:
        return [text for c in self.shown
                for text in (self.result.classes[c], _threshold_label(self.result.classes[c], self.thresholds[c]))]


@dataclass(frozen=True)
class _Layout:
    """The figure's size and margins, in inches (rounded up, so that files alike share one figure):
    a fixed layout with room to spare for the labels, the legend and the title, which
    :func:`plot_timeline` crops away, so no layout pass (``bbox_inches="tight"``) sizes it."""

    lanes: int
    left: float
    plot_width: float
    right: float
    dpi: int

    @classmethod
    def of(cls, content: _TimelineContent, dpi: int) -> "_Layout":
        plot_width = _round_up(0.775 * float(np.clip(4 + content.duration / 4, 8, 20)), 0.25)
        left = max(_text_width(content.names, LABEL_FONT_SIZE), 0.3) + 0.65
        right = 0.01 * plot_width + _text_width(content.legend_labels(), LABEL_FONT_SIZE) + 0.75
        right = max(right, _text_width([content.title], TITLE_FONT_SIZE) - plot_width + 0.2)
        return cls(max(1, len(content.shown)), _round_up(left, 0.25), plot_width, _round_up(right, 0.25), dpi)

    @property
    def width(self) -> float:
        return self.left + self.plot_width + self.right

    @property
    def height(self) -> float:
        return 4.2 + 0.28 * self.lanes


class _TimelineFigure:
    """A figure of one :class:`_Layout`, redrawn for each file shown in it: the axes, their ticks and
    labels are made once (making them is most of what building a figure costs); :meth:`show`
    replaces the curves, bars, image, legend and texts."""

    def __init__(self, layout: _Layout) -> None:
        self.layout = layout
        self.fig = Figure(figsize=(layout.width, layout.height), dpi=layout.dpi)
        FigureCanvasAgg(self.fig)
        w, h = layout.width, layout.height
        grid = self.fig.add_gridspec(3, 1, height_ratios=[2.2, 1.4, 0.25 * layout.lanes + 0.3], hspace=0.08,
                                     left=layout.left / w, right=(layout.left + layout.plot_width) / w,
                                     top=1 - 0.45 / h, bottom=0.55 / h)
        # not sharex: shared axes lay out each other's tick labels at every draw; equal limits suffice
        self.spec, self.score, self.events = (self.fig.add_subplot(grid[i]) for i in range(3))
        self.score.set_ylim(-0.02, 1.02)
        self.score.set_yticks([0.0, 0.5, 1.0], ["0.0", "0.5", "1.0"])
        self.events.set_xlabel("time (s)")
        self.legend = [self._legend_entry(k) for k in range(2 * layout.lanes)]  # a curve and a threshold a class
        # axis labels at fixed offsets from the axes (beyond the widest tick label, "0.5"): else
        # each draw lays out the tick labels once more to place them
        for ax in (self.spec, self.score):
            ax.yaxis.set_label_coords(0, 0.5, ax.transAxes + ScaledTranslation(-0.42, 0, self.fig.dpi_scale_trans))
        self.events.xaxis.set_label_coords(
            0.5, 0, self.events.transAxes + ScaledTranslation(0, -0.25, self.fig.dpi_scale_trans))
        for ax in (self.spec, self.score):
            ax.tick_params(labelbottom=False)

    def _legend_entry(self, k: int) -> tuple[Line2D, Text]:
        """Entry ``k`` of the legend right of the score panel, top down, spaced as matplotlib's legend
        (which lays its boxes out again at every draw): a line sample 2 em long, then its label."""
        em = LABEL_FONT_SIZE / 72  # inches
        # inches from the score panel's top right corner
        corner = self.fig.dpi_scale_trans + ScaledTranslation(1, 1, self.score.transAxes)
        x, y = 0.01 * self.layout.plot_width + 0.4 * em, -em * (1.0 + 1.6 * k)
        handle = Line2D([x, x + 2 * em], [y, y], lw=1.2, transform=corner)
        text = Text(x + 2.8 * em, y, "", fontsize=LABEL_FONT_SIZE, va="center", ha="left", transform=corner)
        self.fig.add_artist(handle)
        self.fig.add_artist(text)
        return handle, text

    def show(self, content: _TimelineContent) -> Figure:
        """The figure, showing ``content`` (and nothing of the file shown before)."""
        for ax in (self.spec, self.score, self.events):
            for artist in [*ax.images, *ax.texts, *ax.lines, *ax.collections]:
                artist.remove()
        result, shown = content.result, content.shown
        colors = [f"C{k % 10}" for k in range(len(shown))]

        spec = result.spectrogram
        if spec is not None and spec.size:
            self.spec.imshow(spec, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                             extent=(0.0, spec.shape[1] * result.spectrogram_hop, 0, spec.shape[0]))
            self.spec.set_ylabel("mel band")
            bands = [0, spec.shape[0] // 2, spec.shape[0]]
            self.spec.set_yticks(bands, [str(b) for b in bands])
        else:
            self.spec.text(0.5, 0.5, "spectrogram not kept (Tagger(keep_spectrogram=True))", ha="center",
                           va="center", transform=self.spec.transAxes)
            self.spec.set_ylabel("")
            self.spec.set_yticks([])
        self.spec.set_ylim(0, 1 if spec is None or not spec.size else spec.shape[0])
        self.spec.set_title(content.title, fontsize=TITLE_FONT_SIZE, loc="left", y=1.0)  # y given: no search

        times = np.arange(result.num_segments + 1) * result.segment_seconds
        scores, thresholds = content.scores, content.thresholds
        for k, c in enumerate(shown):
            curve = np.append(scores[c], scores[c, -1]) if scores.shape[1] else np.zeros(1)
            name = result.classes[c]
            self.score.step(times[: len(curve)], curve, where="post", color=colors[k], lw=1.2, label=name)
            self.score.axhline(thresholds[c], color=colors[k], lw=1.0, ls=(0, (4, 3)), alpha=0.9,
                               label=_threshold_label(name, thresholds[c]))
        self.score.set_ylim(-0.02, 1.02)
        self.score.set_ylabel(f"{content.output} score")
        entries = [(line.get_label(), line.get_color(), line.get_linestyle(), line.get_alpha())
                   for line in self.score.lines]  # the legend: each line's sample and label
        for k, (handle, text) in enumerate(self.legend):
            visible = k < len(entries)
            handle.set_visible(visible)
            text.set_visible(visible)
            if visible:
                label, color, style, alpha = entries[k]
                handle.set_color(color)
                handle.set_linestyle(style)
                handle.set_alpha(alpha)
                text.set_text(label)

        for k, c in enumerate(shown):
            spans = [(e.onset, e.offset - e.onset) for e in result.events if e.label == result.classes[c]]
            if spans:
                self.events.broken_barh(spans, (k - 0.4, 0.8), facecolors=colors[k])
        self.events.set_yticks(range(len(shown)), content.names, fontsize=LABEL_FONT_SIZE)
        self.events.set_ylim(self.layout.lanes - 0.4, -0.6)  # first lane on top
        # fixed ticks and labels: no locator or formatter runs at each draw, for each axes
        ticks = [t for t in AutoLocator().tick_values(0.0, content.duration) if 0.0 <= t <= content.duration]
        for ax in (self.spec, self.score, self.events):
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks] if ax is self.events else [""] * len(ticks))
            ax.set_xlim(0, content.duration)
        return self.fig


def _round_up(x: float, step: float) -> float:
    return float(np.ceil(x / step - 1e-9) * step)


_FIGURES: dict[_Layout, _TimelineFigure] = {}  # this process's figures, least recently used first
_FIGURES_KEPT = 8
_MEASURE = RendererAgg(1, 1, 100)


def _text_width(texts: list[str], size: float) -> float:
    """Width in inches of the widest of ``texts`` at font ``size`` (0 for none), as a figure draws it."""
    return max((_one_text_width(t, size) for t in texts), default=0.0)


@functools.lru_cache(maxsize=4096)  # the same class names come back file after file
def _one_text_width(text: str, size: float) -> float:
    return _MEASURE.get_text_width_height_descent(text, FontProperties(size=size), ismath=False)[0] / _MEASURE.dpi


TITLE_FONT_SIZE = 10
LABEL_FONT_SIZE = 7  # lane names and legend entries


def _threshold_label(name: str, threshold: float) -> str:
    return f"{name} threshold {threshold:.2f}"
