"""A PNG timeline per file: log-mel spectrogram, segment scores and detected events.

Panels, sharing the time axis: (1) the log-mel spectrogram (64 bands, time-pooled for long
files; present when the tagger ran with ``keep_spectrogram=True``), (2) the per-segment
scores used for event detection for the classes shown, with each class's threshold dashed,
(3) one lane per class with its detected events. Classes shown: those with events, then the
most probable clip tags, at most ``max_classes``. The legend sits to the right of the plots, so it
never covers a curve; each class's threshold is a dashed line in its curve's colour, named in
the legend with its value.

Speed: drawing, not tagging, is what a timeline costs (about 0.5 s a file, against 0.03 s to tag
ten seconds of audio). :func:`plot_timeline` crops to the figure's tight box computed once, then
draws once (``bbox_inches="tight"`` lays the figure out in a draw of its own first; the PNG is the
same pixel for pixel), and :class:`TimelineWriter` draws in worker processes beside the tagging.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..files import naming
from ..postprocess import EventSettings
from .results import TagResult


def plot_timeline(result: TagResult, path: str | Path, top_k: int = 3, event_settings: EventSettings | None = None,
                  max_classes: int = 8, dpi: int = 100) -> Path:
    """Write the timeline of ``result`` to ``path`` (PNG)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = timeline_figure(result, top_k, event_settings, max_classes, dpi)
    # what bbox_inches="tight" crops to (savefig's default 0.1 inch pad), without its extra layout draw
    bbox = fig.get_tightbbox(fig.canvas.get_renderer()).padded(TIGHT_PAD_INCHES)
    with naming(path):  # a full disk says which PNG
        fig.savefig(path, bbox_inches=bbox)
    return path


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
            # fork on Linux, as the decode workers: no re-import of matplotlib per worker
            context = multiprocessing.get_context("fork") if sys.platform == "linux" else None
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
    """The figure :func:`plot_timeline` saves; axes in order: spectrogram, scores, event lanes."""
    settings = event_settings or EventSettings()
    scores = result.scores(settings.output)
    thresholds = settings.thresholds_for(result.classes)
    index = {name: i for i, name in enumerate(result.classes)}
    shown: list[int] = []
    for e in result.events:
        if index[e.label] not in shown:
            shown.append(index[e.label])
    for label, _ in result.top(top_k):
        if index[label] not in shown:
            shown.append(index[label])
    shown = shown[:max_classes]

    duration = max(result.duration, result.num_segments * result.segment_seconds)
    width = float(np.clip(4 + duration / 4, 8, 20))
    lanes = max(1, len(shown))
    fig = Figure(figsize=(width, 4.2 + 0.28 * lanes), dpi=dpi)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(3, 1, height_ratios=[2.2, 1.4, 0.25 * lanes + 0.3], hspace=0.08)
    ax_spec = fig.add_subplot(grid[0])
    ax_score = fig.add_subplot(grid[1], sharex=ax_spec)
    ax_events = fig.add_subplot(grid[2], sharex=ax_spec)
    colors = [f"C{k % 10}" for k in range(len(shown))]

    if result.spectrogram is not None and result.spectrogram.size:
        spec = result.spectrogram
        ax_spec.imshow(spec, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                       extent=(0.0, spec.shape[1] * result.spectrogram_hop, 0, spec.shape[0]))
        ax_spec.set_ylabel("mel band")
    else:
        ax_spec.text(0.5, 0.5, "spectrogram not kept (Tagger(keep_spectrogram=True))", ha="center", va="center",
                     transform=ax_spec.transAxes)
        ax_spec.set_yticks([])
    tags = ", ".join(f"{label} {p:.2f}" for label, p in result.top(min(top_k, 3)))
    ax_spec.set_title(f"{result.source}  ({result.duration:.1f} s)  top: {tags}", fontsize=10, loc="left")

    times = np.arange(result.num_segments + 1) * result.segment_seconds
    for k, c in enumerate(shown):
        curve = np.append(scores[c], scores[c, -1]) if scores.shape[1] else np.zeros(1)
        name = result.classes[c]
        ax_score.step(times[: len(curve)], curve, where="post", color=colors[k], lw=1.2, label=name)
        ax_score.axhline(thresholds[c], color=colors[k], lw=1.0, ls=(0, (4, 3)), alpha=0.9,
                         label=f"{name} threshold {thresholds[c]:.2f}")
    ax_score.set_ylim(-0.02, 1.02)
    ax_score.set_ylabel(f"{settings.output} score")
    if shown:  # outside the axes, so it never hides a curve
        ax_score.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, ncol=1, frameon=False,
                        borderaxespad=0.0)

    for k, c in enumerate(shown):
        spans = [(e.onset, e.offset - e.onset) for e in result.events if e.label == result.classes[c]]
        if spans:
            ax_events.broken_barh(spans, (k - 0.4, 0.8), facecolors=colors[k])
    ax_events.set_yticks(range(len(shown)), [result.classes[c] for c in shown], fontsize=7)
    ax_events.set_ylim(-0.6, lanes - 0.4)
    ax_events.invert_yaxis()
    ax_events.set_xlim(0, duration)
    ax_events.set_xlabel("time (s)")
    for ax in (ax_spec, ax_score):
        ax.tick_params(labelbottom=False)
    return fig
