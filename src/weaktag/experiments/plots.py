"""Figures of the paper: per-class gain vs. event duration (Fig. 4) and attention matrices (Fig. 5).

Figures are drawn on ``matplotlib.figure.Figure`` objects and written with the Agg renderer,
never through pyplot, so nothing depends on a display or on global pyplot state. Sizes are
fixed (inches x ``DPI``) and saved without tight bounding boxes, so the PNG's pixel size is
known in advance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter
from scipy.stats import spearmanr

from ..labels import Manifest

DPI = 100
GAIN_FIGURE_SIZE = (8.0, 6.0)
ATTENTION_FIGURE_WIDTH = 12.0


# --------------------------------------------------------------------------- Fig. 4


def median_event_durations(manifest: Manifest, classes: Sequence[str]) -> np.ndarray:
    """Median strong-label event duration (seconds) per class, (C,); NaN for a class with no event."""
    durations: dict[str, list[float]] = {name: [] for name in classes}
    for clip in manifest:
        for event in clip.events or ():
            if event.label in durations:
                durations[event.label].append(event.duration)
    return np.array([np.median(durations[name]) if durations[name] else np.nan for name in classes])


@dataclass(frozen=True)
class GainRow:
    """One class: its median event duration, both systems' AP and the gain AP_b - AP_a."""

    class_name: str
    median_duration: float
    ap_a: float
    ap_b: float
    gain: float


@dataclass
class GainVsDuration:
    """Per-class gains sorted by duration, and Spearman's rank correlation of duration vs. gain.

    A negative ``spearman_rho`` (with small ``spearman_p``) means the gain is larger for
    shorter events, the paper's claim for self-supervised attention. The correlation uses the
    ``n`` classes whose duration and both APs are finite.
    """

    label_a: str
    label_b: str
    rows: list[GainRow]
    spearman_rho: float
    spearman_p: float
    n: int

    def to_markdown(self) -> str:
        lines = [
            f"| class | median duration (s) | AP {self.label_a} | AP {self.label_b} | gain |",
            "|---|---:|---:|---:|---:|",
        ]
        for row in self.rows:
            lines.append(
                f"| {row.class_name} | {row.median_duration:.2f} | {row.ap_a:.4f} | {row.ap_b:.4f} | {row.gain:+.4f} |"
            )
        lines.append(f"\nSpearman rho(duration, gain) = {self.spearman_rho:.3f} (p = {self.spearman_p:.3g}, n = {self.n})")
        return "\n".join(lines)


def gain_vs_duration_table(
    ap_a: np.ndarray,
    ap_b: np.ndarray,
    classes: Sequence[str],
    median_durations: np.ndarray,
    label_a: str = "a",
    label_b: str = "b",
) -> GainVsDuration:
    """Per-class AP gain (b - a) against median event duration, with Spearman's rho.

    Answers "is the gain larger for short events?" (paper, Fig. 4) with a number.
    Rows lacking a finite duration or AP are reported but left out of the correlation.
    """
    ap_a, ap_b, durations = _check_per_class(ap_a, ap_b, median_durations, classes)
    gain = ap_b - ap_a
    rows = [
        GainRow(class_name=name, median_duration=float(durations[c]), ap_a=float(ap_a[c]), ap_b=float(ap_b[c]), gain=float(gain[c]))
        for c, name in enumerate(classes)
    ]
    rows.sort(key=lambda r: (np.isnan(r.median_duration), r.median_duration))
    usable = np.isfinite(durations) & np.isfinite(gain)
    n = int(usable.sum())
    if n >= 3:
        result = spearmanr(durations[usable], gain[usable])
        rho, p_value = float(result.statistic), float(result.pvalue)
    else:
        rho, p_value = float("nan"), float("nan")
    return GainVsDuration(label_a=label_a, label_b=label_b, rows=rows, spearman_rho=rho, spearman_p=p_value, n=n)


def plot_gain_vs_duration(
    ap_a: np.ndarray,
    ap_b: np.ndarray,
    classes: Sequence[str],
    median_durations: np.ndarray,
    label_a: str,
    label_b: str,
    path: str | Path,
    log_x: bool = True,
) -> None:
    """Scatter of per-class AP gain (b - a) vs. median event duration, classes annotated (paper Fig. 4).

    Saved as a GAIN_FIGURE_SIZE-inch figure at DPI; classes without a finite duration or AP are
    not drawn. The title carries Spearman's rho from :func:`gain_vs_duration_table`.
    """
    table = gain_vs_duration_table(ap_a, ap_b, classes, median_durations, label_a, label_b)
    drawn = [r for r in table.rows if np.isfinite(r.median_duration) and np.isfinite(r.gain)]
    if log_x:
        drawn = [r for r in drawn if r.median_duration > 0]

    fig = Figure(figsize=GAIN_FIGURE_SIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    x = np.array([r.median_duration for r in drawn])
    y = np.array([r.gain for r in drawn])
    colors = np.where(y >= 0, "tab:green", "tab:red") if len(drawn) else "tab:blue"
    ax.scatter(x, y, c=colors, s=30, zorder=3)
    for row in drawn:
        ax.annotate(row.class_name, (row.median_duration, row.gain), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.axhline(0.0, color="black", linewidth=0.8)
    if log_x:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("median event duration (s)")
    ax.set_ylabel(f"AP({label_b}) - AP({label_a})")
    ax.set_title(
        f"Per-class AP gain vs. event duration (Spearman rho = {table.spearman_rho:.2f}, "
        f"p = {table.spearman_p:.2g}, n = {table.n})"
    )
    ax.grid(True, which="both", alpha=0.3)
    _save(fig, path)


def _check_per_class(
    ap_a: np.ndarray, ap_b: np.ndarray, durations: np.ndarray, classes: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays = tuple(np.asarray(v, dtype=float) for v in (ap_a, ap_b, durations))
    for array in arrays:
        if array.shape != (len(classes),):
            raise ValueError(f"per-class arrays must have shape ({len(classes)},); got {array.shape}")
    return arrays


# --------------------------------------------------------------------------- Fig. 5


def attention_figure_size(num_panels: int) -> tuple[float, float]:
    """Inches of :func:`plot_attention`'s figure: 2 for the spectrogram, 2 for ground truth, 2 per panel."""
    return ATTENTION_FIGURE_WIDTH, 4.0 + 2.0 * num_panels


@dataclass(frozen=True)
class AttentionPanel:
    """One (C, T) matrix of :func:`plot_attention`, on the time grid of the model that computed it.

    Segment ``t`` is drawn over ``[t, t + 1) * segment_seconds``: each model keeps its own
    segment length (aisfx's 0.186 s beside VGGish's 0.16 s), so every panel spans the recording.
    """

    title: str
    matrix: np.ndarray
    segment_seconds: float

    @property
    def seconds(self) -> float:
        return self.matrix.shape[1] * self.segment_seconds


def plot_attention(
    logmel: np.ndarray,
    ground_truth: Sequence[Any],
    classes: Sequence[str],
    panels: Sequence[AttentionPanel],
    path: str | Path,
    hop_seconds: float = 0.01,
    max_classes: int = 30,
    spectrogram_title: str = "log-mel spectrogram",
) -> Figure:
    """Log-mel spectrogram, ground-truth events and (C, T) matrices on one time axis (paper Fig. 5).

    Rows, top to bottom: ``logmel`` (frames, mel bins) with frame hop ``hop_seconds``; a raster
    of ``ground_truth`` events (objects with label/onset/offset, any label, target or not); one
    image per :class:`AttentionPanel`, e.g. the attention A of two models, each on its own
    segment length. With more than ``max_classes`` classes only the classes in the ground truth
    plus those with the highest peak over the panels are shown (AudioSet's 527 rows would not be
    readable). Size: :func:`attention_figure_size` at DPI. Returns the figure it saved.
    """
    logmel = np.asarray(logmel, dtype=float)
    if logmel.ndim != 2:
        raise ValueError(f"logmel must be (frames, mel bins); got {logmel.shape}")
    matrices = [np.asarray(panel.matrix, dtype=float) for panel in panels]
    for panel, matrix in zip(panels, matrices):
        if matrix.ndim != 2 or matrix.shape[0] != len(classes):
            raise ValueError(f"panel {panel.title!r} must be (C={len(classes)}, T); got {matrix.shape}")
    events = [(e.label, float(e.onset), float(e.offset)) for e in ground_truth]
    shown = _classes_to_show(classes, matrices, {label for label, _, _ in events}, max_classes)

    width, height = attention_figure_size(len(panels))
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    grid = fig.add_gridspec(2 + len(panels), 2, width_ratios=[60, 1])
    time_end = max([logmel.shape[0] * hop_seconds] + [panel.seconds for panel in panels])

    ax_spec = fig.add_subplot(grid[0, 0])
    image = ax_spec.imshow(
        logmel.T, origin="lower", aspect="auto", cmap="magma",
        extent=(0.0, logmel.shape[0] * hop_seconds, 0, logmel.shape[1]),
    )
    ax_spec.set_ylabel("mel bin")
    ax_spec.set_title(spectrogram_title)
    fig.colorbar(image, cax=fig.add_subplot(grid[0, 1]))

    ax_truth = fig.add_subplot(grid[1, 0], sharex=ax_spec)
    truth_labels = [c for c in classes if c in {e[0] for e in events}]
    truth_labels += sorted({e[0] for e in events} - set(truth_labels))  # non-target classes last
    for row, label in enumerate(truth_labels):
        spans = [(onset, offset - onset) for name, onset, offset in events if name == label]
        ax_truth.broken_barh(spans, (row - 0.4, 0.8), facecolors="tab:orange")
    ax_truth.set_yticks(range(len(truth_labels)), truth_labels, fontsize=7)
    ax_truth.set_ylim(max(len(truth_labels), 1) - 0.5, -0.5)
    ax_truth.set_title("ground truth")
    fig.add_subplot(grid[1, 1]).axis("off")

    for row, (panel, matrix) in enumerate(zip(panels, matrices), start=2):
        ax = fig.add_subplot(grid[row, 0], sharex=ax_spec)
        image = ax.imshow(
            matrix[shown], aspect="auto", cmap="viridis", interpolation="nearest",
            extent=(0.0, panel.seconds, len(shown) - 0.5, -0.5),
        )
        ax.set_yticks(range(len(shown)), [classes[c] for c in shown], fontsize=6)
        ax.set_title(panel.title)
        fig.colorbar(image, cax=fig.add_subplot(grid[row, 1]))
        last = ax
    (last if panels else ax_truth).set_xlabel("time (s)")
    ax_spec.set_xlim(0.0, time_end)
    _save(fig, path)
    return fig


def _classes_to_show(
    classes: Sequence[str], matrices: list[np.ndarray], truth_labels: set[str], max_classes: int
) -> list[int]:
    """Row indices to draw: all classes, or ground-truth classes plus the highest-peaking ones."""
    if len(classes) <= max_classes:
        return list(range(len(classes)))
    chosen = [c for c, name in enumerate(classes) if name in truth_labels][:max_classes]
    if matrices:
        peak = np.max([m.max(axis=1) for m in matrices], axis=0)
        for c in np.argsort(-peak, kind="stable"):
            if len(chosen) >= max_classes:
                break
            if int(c) not in chosen:
                chosen.append(int(c))
    return sorted(chosen)


def _save(fig: Figure, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)


# --------------------------------------------------------------------------- single-label sets


def confusion_figure_size(num_classes: int) -> tuple[float, float]:
    """Inches: wide enough for a class name per row and column (at least 5 x 4.5, at most 20 x 19)."""
    side = min(20.0, max(5.0, 2.0 + 0.3 * num_classes))
    return side, side - 0.5


def plot_confusion_matrix(confusion: np.ndarray, classes: Sequence[str], path: str | Path, title: str) -> Path:
    """The (C, C) counts (row: true class, column: predicted) as a PNG, each row shaded by its share of the row's
    clips (so classes of different sizes read alike), counts written in the cells up to 30 classes."""
    confusion = np.asarray(confusion)
    if confusion.shape != (len(classes), len(classes)):
        raise ValueError(f"confusion matrix {confusion.shape} for {len(classes)} classes")
    rows = confusion.sum(axis=1, keepdims=True)
    shares = np.divide(confusion, rows, out=np.zeros(confusion.shape, dtype=float), where=rows > 0)
    fig = Figure(figsize=confusion_figure_size(len(classes)), dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, labels=list(classes), rotation=90, fontsize=8)
    ax.set_yticks(ticks, labels=list(classes), fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    if len(classes) <= 30:
        for (i, j), count in np.ndenumerate(confusion):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                        color="white" if shares[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class's clips")
    fig.tight_layout()
    _save(fig, path)
    return Path(path)
