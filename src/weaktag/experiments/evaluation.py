"""Evaluate a trained checkpoint on a labelled set: tagging metrics always, event metrics
when the labels have onsets and offsets.

Each clip is scored on its whole recording through the Tagger, the path ``weaktag tag`` runs
(:func:`weaktag.training.predict.predict_recordings`), so a clip of any length gets the outputs
tagging gives it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..audio import warn_skipped
from ..checkpoint import Checkpoint, load_checkpoint
from ..data import no_usable_clip_reason
from ..errors import DataError
from ..labels import Manifest, read_labels
from ..metrics.events import EventMetrics
from ..metrics.score_tables import read_score_tables, score_table_metrics
from ..metrics.tagging import TaggingMetrics, per_class_table, tagging_metrics
from ..training import Predictions, event_metrics_for
from ..training.predict import Recordings, predict_recordings
from .plots import plot_confusion_matrix


@dataclass
class EvaluationReport:
    checkpoint: str  # what was evaluated: a checkpoint, or "the score tables in DIR"
    labels: str
    num_clips: int
    skipped: int
    tagging: TaggingMetrics
    events: EventMetrics | None = None  # when the labels are strong
    note: str | None = None  # how the clip scores were made, when not by the model's clip output

    def to_markdown(self, confusion_figure: str | None = None) -> str:
        """The report; ``confusion_figure``: a link to the confusion matrix's PNG, for single-label labels."""
        t = self.tagging
        lines = [
            f"# Evaluation of {self.checkpoint}",
            "",
            f"labels: {self.labels} ({self.num_clips} clips, {self.skipped} skipped)",
            "",
            *([self.note, ""] if self.note else []),
            "| metric | value |",
            "|---|---|",
            f"| mAP | {t.mAP:.4f} |",
            f"| AUC | {t.AUC:.4f} |",
            f"| d' | {t.d_prime:.3f} |",
        ]
        if t.accuracy is not None:  # single-label labels
            lines.append(f"| accuracy (top-1) | {t.accuracy:.4f} |")
        if t.f1_macro is not None:
            lines += [f"| F1 macro (validation thresholds) | {t.f1_macro:.4f} |", f"| F1 micro | {t.f1_micro:.4f} |"]
        if self.events is not None:
            for name, value in self.events.to_dict().items():
                if isinstance(value, (int, float)):
                    lines.append(f"| {name} | {value:.4f} |")
        lines += ["", per_class_table(t)]
        if confusion_figure:
            lines += ["", f"![confusion matrix]({confusion_figure})"]
        return "\n".join(lines) + "\n"


def evaluate_predictions(checkpoint: Checkpoint, features: Recordings, predictions: Predictions,
                         ground_truth: Manifest, event_output: str | None = None) -> tuple[TaggingMetrics, EventMetrics | None]:
    """Tagging metrics with the checkpoint's thresholds, and event metrics for strong labels."""
    tagging = tagging_metrics(features.weak, predictions.clip_probs, checkpoint.classes,
                              thresholds=checkpoint.tag_thresholds)
    events = None
    if ground_truth.has_strong:
        events = event_metrics_for(checkpoint.events, features, predictions, output=event_output)
    return tagging, events


def evaluate_checkpoint(checkpoint_path: str | Path, labels: str | Path, audio_dir: str | Path | None = None,
                        progress: bool = False, event_output: str | None = None,
                        onnx_path: str | Path | None = None) -> EvaluationReport:
    """``event_output`` picks the matrix that scores time (X^a "segment", "attention", "product", or a
    clip-gated "gated-segment" / "gated-attention");
    None uses the checkpoint's setting (X^a unless changed). ``onnx_path``: an export of the checkpoint (e.g. its
    int8 copy) that scores the audio on onnxruntime instead."""
    checkpoint = load_checkpoint(checkpoint_path)
    kwargs = {"audio_dir": audio_dir} if audio_dir else {}
    manifest = read_labels(labels, classes=checkpoint.classes, classes_from=f"the checkpoint {checkpoint_path}",
                           **kwargs)
    predictions, features = predict_recordings(checkpoint, manifest.clips, progress=progress, onnx_path=onnx_path)
    for skipped in features.skipped:
        warn_skipped(skipped.clip_id, skipped.reason)
    if len(features) == 0:
        raise DataError(f"{labels}: no usable clip to evaluate" + no_usable_clip_reason(features.skipped, "--audio-dir"))
    tagging, events = evaluate_predictions(checkpoint, features, predictions, manifest, event_output)
    return EvaluationReport(str(checkpoint_path), str(labels), len(features), len(features.skipped), tagging, events)


def evaluate_score_tables(scores_dir: str | Path, labels: str | Path,
                          audio_dir: str | Path | None = None) -> EvaluationReport:
    """Score tables another system wrote (sed_scores_eval's layout: ``<audio id>.tsv`` per clip, see
    :mod:`weaktag.metrics.score_tables`) against ``labels``, with weaktag's metrics: PSDS 1 and 2 when the
    labels are strong, and mAP, AUC and d' of each class's highest segment score per clip."""
    tables = read_score_tables(scores_dir)
    kwargs = {"audio_dir": audio_dir} if audio_dir else {}
    manifest = read_labels(labels, classes=tables.classes, classes_from=f"the score tables in {scores_dir}", **kwargs)
    metrics = score_table_metrics(tables, manifest)
    return EvaluationReport(f"the score tables in {scores_dir}", str(labels), metrics.num_clips, 0, metrics.tagging,
                            metrics.events, note="clip scores: each class's highest segment score in its table")


def write_confusion_figure(report: EvaluationReport, path: str | Path) -> Path | None:
    """The confusion matrix of a single-label evaluation as a PNG at ``path``; None (nothing written) otherwise."""
    t = report.tagging
    if t.confusion is None:
        return None
    return plot_confusion_matrix(t.confusion, t.classes, path,
                                 f"{Path(report.labels).name}: top-1 accuracy {t.accuracy:.3f} ({report.num_clips} clips)")
