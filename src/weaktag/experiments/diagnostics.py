"""Self-supervision diagnostics in a comparison: per arm, the mean over trials of each diagnostic
(:mod:`weaktag.supervision.diagnostics`) at the first and the best epoch, a table, and a figure of
them against epochs.

Trials record their diagnostics per validation epoch (``diagnostics`` in ``trial.json``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..supervision.diagnostics import DIAGNOSTICS

LABELS = {
    "pseudo_density": "P density", "true_density": "Y density", "precision": "P precision", "recall": "P recall",
    "attention_in_events": "A mass in events", "attention_entropy": "A entropy / log T",
}


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def summarize_diagnostics(per_arm: Mapping[str, list[tuple[list[dict], int]]]) -> dict[str, dict]:
    """``per_arm[arm]``: (epochs, best epoch) of each trial that has diagnostics; returns per arm the
    number of trials, the means at the first and best epoch, and the mean per epoch."""
    out: dict[str, dict] = {}
    for arm, runs in per_arm.items():
        runs = [(epochs, best) for epochs, best in runs if epochs]
        if not runs:
            continue
        first = [epochs[0] for epochs, _ in runs]
        best_rows = [next((e for e in epochs if e["epoch"] == best), epochs[-1]) for epochs, best in runs]
        by_epoch: dict[int, list[dict]] = {}
        for epochs, _ in runs:
            for e in epochs:
                by_epoch.setdefault(int(e["epoch"]), []).append(e)
        out[arm] = {
            "trials": len(runs),
            "first": {k: _mean([r.get(k) for r in first]) for k in DIAGNOSTICS},
            "best": {k: _mean([r.get(k) for r in best_rows]) for k in DIAGNOSTICS},
            "by_epoch": [{"epoch": ep, "trials": len(rows), **{k: _mean([r.get(k) for r in rows]) for k in DIAGNOSTICS}}
                         for ep, rows in sorted(by_epoch.items())],
        }
    return out


def diagnostics_markdown(summary: Mapping[str, dict]) -> str:
    """One row per arm: each diagnostic at the best epoch (first epoch in brackets)."""
    head = "| arm | trials | " + " | ".join(LABELS[k] for k in DIAGNOSTICS) + " |"
    lines = [head, "|---|---:|" + "---:|" * len(DIAGNOSTICS)]
    def cell(value: float | None) -> str:  # None: a mean of nothing, as results.json writes NaN
        return "-" if value is None or not math.isfinite(value) else f"{value:.3f}"

    for arm, s in summary.items():
        cells = [f"{cell(s['best'][k])} ({cell(s['first'][k])})" if cell(s["best"][k]) != "-" else "-"
                 for k in DIAGNOSTICS]
        lines.append(f"| `{arm}` | {s['trials']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_diagnostics(summary: Mapping[str, dict], path: Path) -> Path:
    """One panel per diagnostic, one line per arm (mean over trials), against the epoch."""
    fig = Figure(figsize=(12, 6.5))
    axes = fig.subplots(2, 3).ravel()
    for ax, key in zip(axes, DIAGNOSTICS):
        for arm, s in summary.items():
            epochs = [r["epoch"] for r in s["by_epoch"]]
            line, = ax.plot(epochs, [r[key] for r in s["by_epoch"]], label=arm, linewidth=1.2)
            if key == "pseudo_density":  # the density P should have: Y's, dashed in the arm's colour
                ax.plot(epochs, [r["true_density"] for r in s["by_epoch"]], linestyle="--", linewidth=0.8,
                        color=line.get_color())
        ax.set_title(LABELS[key] + (" (dashed: Y density)" if key == "pseudo_density" else ""), fontsize=10)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle("Self-supervision diagnostics on strongly labelled validation clips (mean over trials)",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def diagnostics_finding(summary: Mapping[str, dict]) -> str:
    """The mechanism in numbers: how dense P is against Y, and how much attention falls inside events."""
    parts = []
    for arm, s in summary.items():
        b = {k: float("nan") if v is None else v for k, v in s["best"].items()}  # results.json: NaN as None
        if not all(math.isfinite(b[k]) for k in DIAGNOSTICS):
            continue
        ratio = b["pseudo_density"] / b["true_density"] if b["true_density"] > 0 else float("nan")
        parts.append(f"`{arm}`: P marks {b['pseudo_density']:.0%} of segments where Y marks {b['true_density']:.0%}"
                     f" ({ratio:.1f}x), precision {b['precision']:.2f}, recall {b['recall']:.2f}; "
                     f"{b['attention_in_events']:.0%} of A inside events")
    return "At the best epoch: " + "; ".join(parts) + "." if parts else ""
