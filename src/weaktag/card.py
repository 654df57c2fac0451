"""A model card: what a checkpoint is, for whoever receives it without its run folder.

Every figure of the card comes from one typed object, :class:`ModelCard`, built by :func:`model_card`
from the checkpoint (classes, the clip counts of its training data, the thresholds and event settings
chosen on validation, validation and test metrics, the recipe, the backbone and its licence, the weaktag
that wrote it) and, when present, the run's ``summary.json`` beside it (best epoch, seed, wall time).
:func:`card_markdown` writes it out; ``weaktag train`` leaves it as ``MODEL_CARD.md`` beside ``model.pt``
(:func:`write_model_card`). :class:`ModelCost` is what ``weaktag info`` adds: the front end, the time
grid, MACs per 10 s and the parameter count.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from .checkpoint import Checkpoint, load_checkpoint
from .files import write_text_atomic
from .geometry import FrontEndSpec, TimeGrid
from .provenance import TrainingData
from .models import WeakTagNet
from .models.cost import macs_per_audio, parameter_count
from .models.registry import backbone_class

logger = logging.getLogger(__name__)

CARD_FILE = "MODEL_CARD.md"
#: the run's summary (best epoch, seed, wall time) that ``weaktag train`` writes beside model.pt
RUN_SUMMARY_FILE = "summary.json"
#: metrics entries that are not figures of merit: the epoch (the run's), per-class operating thresholds
_NOT_METRICS = frozenset({"best_epoch", "thresholds", "scenario"})


@dataclass(frozen=True)
class ClassCard:
    """One class: its clip threshold and the event settings chosen for it on validation."""

    name: str
    tag_threshold: float
    event_threshold: float
    median_filter_seconds: float
    stay_on_fraction: float
    max_gap_seconds: float
    min_duration_seconds: float


@dataclass(frozen=True)
class MetricRow:
    """One figure of the checkpoint's metrics (``events.psds1``: a dotted path into them), per split."""

    name: str
    validation: float | None
    test: float | None


@dataclass(frozen=True)
class BackboneCard:
    """The backbone, where its weights came from, and the licence and attribution they carry."""

    name: str
    weights: str
    licence: str | None
    attribution: str | None


@dataclass(frozen=True)
class RunFacts:
    """From the run's summary.json: None where it does not say."""

    best_epoch: int | None
    seed: int | None
    wall_seconds: float | None


@dataclass(frozen=True)
class ModelCard:
    title: str
    scheme: str
    classes: list[ClassCard]
    event_output: str  # the segment matrix events are decoded from
    data: TrainingData | None  # None: a checkpoint written before weaktag kept these counts
    metrics: list[MetricRow]
    backbone: BackboneCard
    recipe: dict[str, Any]  # the experiment config, as trained
    run: RunFacts | None
    weaktag_version: str | None


def model_card(checkpoint: Checkpoint, run_summary: Mapping[str, Any] | None = None) -> ModelCard:
    """The card of ``checkpoint``; ``run_summary``: its run's summary.json (:func:`read_run_summary`)."""
    names, events = checkpoint.classes, checkpoint.events
    settings = [events.thresholds_for(names), *(_per_class(value, len(names)) for value in (
        events.median_filter_seconds, events.stay_on_fraction, events.max_gap_seconds, events.min_duration_seconds))]
    classes = [ClassCard(name, float(checkpoint.tag_thresholds[i]), *(float(s[i]) for s in settings))
               for i, name in enumerate(names)]
    title = checkpoint.path.parent.name or checkpoint.path.stem if checkpoint.path else "weaktag model"
    run = None
    if run_summary is not None:
        best, seed, wall = (run_summary.get(k) for k in ("best_epoch", "seed", "wall_seconds"))
        run = RunFacts(None if best is None else int(best), None if seed is None else int(seed),
                       None if wall is None else float(wall))
    return ModelCard(title, checkpoint.scheme, classes, checkpoint.events.output, checkpoint.data,
                     _metric_rows(checkpoint.metrics), _backbone_card(checkpoint), dict(checkpoint.experiment), run,
                     checkpoint.weaktag_version)


def _per_class(value: float | list[float], classes: int) -> np.ndarray:
    """An event setting as stored (one value for all classes, or one per class), one per class."""
    return np.broadcast_to(np.atleast_1d(np.asarray(value, dtype=float)), (classes,))


def _metric_rows(metrics: Mapping[str, Any]) -> list[MetricRow]:
    by_split = {split: dict(_figures(metrics.get(split) or {})) for split in ("validation", "test")}
    names = list(dict.fromkeys([*by_split["validation"], *by_split["test"]]))
    return [MetricRow(name, by_split["validation"].get(name), by_split["test"].get(name)) for name in names]


def _figures(values: Mapping[str, Any], prefix: str = ""):
    """(dotted name, number) of every number in nested ``values``, the entries of :data:`_NOT_METRICS` left out."""
    for key, value in values.items():
        if key in _NOT_METRICS or isinstance(value, bool):
            continue
        if isinstance(value, Mapping):
            yield from _figures(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)):
            yield f"{prefix}{key}", float(value)


def _backbone_card(checkpoint: Checkpoint) -> BackboneCard:
    name = checkpoint.model.config.backbone.backbone
    cls = backbone_class(name)
    model = checkpoint.experiment.get("model", {})  # empty for a checkpoint saved outside a training run
    pretrained = bool(model.get("pretrained", True)) and getattr(cls, "packaged_weights", False)
    init = model.get("init")
    if init:
        weights, licence, attribution = f"initialised from {init} (its licence is that file's)", None, None
    elif pretrained:
        weights, licence, attribution = f"the {name} package's pretrained weights", cls.licence, cls.attribution
    else:
        weights, licence, attribution = "random initialisation, trained by weaktag", None, None
    freeze = model.get("freeze")
    if freeze:
        weights += f"; its first {freeze} block(s) frozen"
    return BackboneCard(name, weights, licence, attribution)


def read_run_summary(checkpoint_path: str | Path) -> dict[str, Any] | None:
    """The summary.json ``weaktag train`` wrote beside ``checkpoint_path`` when it names that checkpoint;
    None without one (a checkpoint copied on its own), or with a warning when it cannot be read."""
    path = Path(checkpoint_path).parent / RUN_SUMMARY_FILE
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        logger.warning("%s: not read for the model card (%s)", path, exc)
        return None
    named = summary.get("checkpoint") if isinstance(summary, dict) else None
    return summary if named and Path(named).name == Path(checkpoint_path).name else None


def write_model_card(checkpoint_path: str | Path) -> Path:
    """``MODEL_CARD.md`` beside ``checkpoint_path``, built from the checkpoint as saved and its run's summary."""
    checkpoint_path = Path(checkpoint_path)
    card = model_card(load_checkpoint(checkpoint_path), read_run_summary(checkpoint_path))
    return write_text_atomic(checkpoint_path.parent / CARD_FILE, card_markdown(card))


def _number(value: float | None, digits: int = 4) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table; columns of numbers right-aligned."""
    def cells(row: list[Any]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"

    numeric = [all(isinstance(r[i], (int, float)) or _is_number(r[i]) for r in rows) for i in range(len(header))]
    return [cells(header), "|" + "|".join("---:" if n and i else "---" for i, n in enumerate(numeric)) + "|",
            *(cells(r) for r in rows)]


def _is_number(text: Any) -> bool:
    try:
        float(str(text).replace(",", ""))
    except ValueError:
        return str(text) == "–"
    return True


def card_markdown(card: ModelCard) -> str:
    """The card as Markdown: classes and settings, training data, metrics, backbone and licence, recipe, run."""
    version = card.weaktag_version or "unknown (written before weaktag recorded its version)"
    lines = [f"# Model card: {card.title}", "",
             f"A weaktag model: scheme `{card.scheme}`, {len(card.classes)} classes, backbone `{card.backbone.name}`; "
             f"written by weaktag {version}.", ""]
    lines += _class_section(card) + _data_section(card) + _metrics_section(card) + _backbone_section(card)
    lines += ["## Recipe", "", "The experiment config it was trained with (saved as a YAML file, `weaktag train --config` takes it):", "",
              "```yaml", yaml.safe_dump(card.recipe, sort_keys=False).rstrip(), "```", ""]
    if card.run is not None:
        r = card.run
        wall = "–" if r.wall_seconds is None else f"{r.wall_seconds:.0f} s"
        lines += ["## Run", "", f"Best epoch {r.best_epoch if r.best_epoch is not None else '–'}, seed "
                  f"{r.seed if r.seed is not None else '–'}, {wall} of wall time.", ""]
    return "\n".join(lines)


def _class_section(card: ModelCard) -> list[str]:
    counts = [] if card.data is None else [s for s in card.data.splits if s.per_class]
    header = ["class", *(f"{s.name} clips" for s in counts), "tag threshold", "event threshold", "median filter (s)",
              "stay-on fraction", "max gap (s)", "min duration (s)"]
    rows = [[c.name, *(s.per_class.get(c.name, 0) for s in counts), _number(c.tag_threshold),
             _number(c.event_threshold), _number(c.median_filter_seconds, 2), _number(c.stay_on_fraction, 2),
             _number(c.max_gap_seconds, 2), _number(c.min_duration_seconds, 2)] for c in card.classes]
    return ["## Classes and settings", "",
            f"Clips holding each class, the clip-level tag threshold and the event settings chosen on validation; "
            f"events are decoded from the `{card.event_output}` scores.", "", *_table(header, rows), ""]


def _data_section(card: ModelCard) -> list[str]:
    lines = ["## Training data", ""]
    if card.data is None:
        return lines + ["Not recorded: this checkpoint was written before weaktag kept its training data's counts.", ""]
    files = card.recipe.get("data", {})
    rows = [[s.name, s.clips, s.weak, s.strong, s.unlabelled, card.data.skipped.get(s.name, 0),
             files.get(s.name) or _held_out(card.recipe, s.name)] for s in card.data.splits]
    return lines + ["The clips used, by the labels they have (weak: clip labels only; strong: with onsets and "
                    "offsets, of which a scheme trained on clip labels uses only those); unreadable clips were skipped.",
                    "",
                    *_table(["split", "clips", "weak", "strong", "unlabelled", "unreadable", "labels"], rows), ""]


def _held_out(recipe: Mapping[str, Any], split: str) -> str:
    data = recipe.get("data", {})
    if split == "validation" and data.get("validation_fraction"):
        return f"{data['validation_fraction']:g} of {data.get('train')} held out"
    return "–"


def _metrics_section(card: ModelCard) -> list[str]:
    lines = ["## Metrics", ""]
    if not card.metrics:
        return lines + ["None recorded.", ""]
    rows = [[m.name, _number(m.validation), _number(m.test)] for m in card.metrics]
    return lines + ["Validation: the best epoch's (where thresholds and event settings were chosen); test: with "
                    "those settings.", "", *_table(["metric", "validation", "test"], rows), ""]


def _backbone_section(card: ModelCard) -> list[str]:
    b = card.backbone
    lines = ["## Backbone and licence", "", f"- backbone: `{b.name}`", f"- weights: {b.weights}"]
    if b.licence:
        lines.append(f"- licence of its weights: {b.licence}")
    if b.attribution:
        lines.append(f"- attribution (keep it with this model and anything built on it): {b.attribution}")
    return lines + [""]


@dataclass(frozen=True)
class ModelCost:
    """What running the network takes: its front end, time grid, MACs per 10 s of audio and parameters."""

    frontend: FrontEndSpec
    grid: TimeGrid
    macs_per_10s: int
    parameters: int


def model_cost(model: WeakTagNet) -> ModelCost:
    return ModelCost(model.grid.frontend, model.grid, macs_per_audio(model, 10.0), parameter_count(model))


def cost_markdown(cost: ModelCost) -> str:
    g = cost.grid
    front = ", ".join(f"{k} {v}" for k, v in cost.frontend.to_dict().items())
    return "\n".join([
        "## Front end, time grid and cost", "",
        f"- front end: {front}",
        f"- time grid: one segment per {g.time_stride} frames = {g.segment_seconds:.4f} s; receptive field "
        f"{g.context_frames} frames ({g.context_seconds:.3f} s) beyond a segment on each side; shortest input "
        f"{g.min_samples} samples",
        f"- MACs per 10 s of audio: {cost.macs_per_10s:,} ({cost.macs_per_10s / 1e9:.3f} G)",
        f"- parameters: {cost.parameters:,}", ""])


def describe_checkpoint(path: str | Path) -> str:
    """What ``weaktag info`` prints: the model card, then the front end, time grid and cost."""
    checkpoint = load_checkpoint(path)
    card = model_card(checkpoint, read_run_summary(path))
    return card_markdown(card) + "\n" + cost_markdown(model_cost(checkpoint.model))
