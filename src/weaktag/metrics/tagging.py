"""Clip-level (audio tagging) metrics: mAP, macro AUC, d-prime and thresholded P/R/F1.

mAP over classes is the paper's headline number (Kim & Ghaffarzadegan 2019, Table I/II).
Everything is computed with scikit-learn; this module only decides which classes are
defined, how to average, and how to report.

Undefined classes: AP needs at least one positive clip, AUC needs at least one positive
and one negative. A class for which the metric is undefined on the given ``y_true`` gets
NaN in the per-class table and is left out of the macro mean, rather than counted as 0
(which would punish the model for the data split) or as 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy.stats import norm
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_auc_score,
)

from .accuracy import accuracy_metrics

#: threshold given to a class that has no positive validation clip (nothing to tune on).
DEFAULT_THRESHOLD = 0.5


@dataclass
class TaggingMetrics:
    """Clip-level metrics for C classes over N clips.

    ``mAP`` and ``AUC`` are macro means over the classes where they are defined (see module
    docstring); ``d_prime`` is derived from the macro AUC. Per-class arrays have shape (C,)
    and hold NaN where a metric is undefined. ``support`` is the number of positive clips per
    class. The thresholded fields are None unless thresholds were given; a clip is predicted
    positive for a class when ``score >= threshold``. ``f1_micro`` pools all (clip, class)
    decisions; ``f1_macro`` (and precision/recall macro) average over classes with at least one
    positive clip, like mAP.
    """

    classes: list[str]
    mAP: float
    AUC: float
    d_prime: float
    per_class_ap: np.ndarray
    per_class_auc: np.ndarray
    support: np.ndarray
    n_clips: int
    thresholds: np.ndarray | None = None
    precision_micro: float | None = None
    recall_micro: float | None = None
    f1_micro: float | None = None
    precision_macro: float | None = None
    recall_macro: float | None = None
    f1_macro: float | None = None
    per_class_precision: np.ndarray | None = None
    per_class_recall: np.ndarray | None = None
    per_class_f1: np.ndarray | None = None
    # single-label sets (one label per clip): top-1 accuracy and the (C, C) confusion counts (row: true class)
    accuracy: float | None = None
    confusion: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: arrays become lists and NaN becomes None (JSON has no NaN)."""
        out: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            if isinstance(value, np.ndarray) and value.ndim > 1:  # the confusion matrix: counts
                out[name] = value.tolist()
            elif isinstance(value, np.ndarray):
                out[name] = [_json_number(v) for v in value.tolist()]
            elif isinstance(value, (float, np.floating)):
                out[name] = _json_number(float(value))
            elif isinstance(value, (np.integer,)):
                out[name] = int(value)
            else:
                out[name] = value
        return out


def d_prime_from_auc(auc: float) -> float:
    """d' = sqrt(2) * Phi^-1(AUC), the AudioSet convention (Gemmeke et al. 2017, Hershey et al. 2017)."""
    if not np.isfinite(auc):
        return float("nan")
    return float(math.sqrt(2.0) * norm.ppf(auc))


def tagging_metrics(
    y_true: np.ndarray,
    y_score: np.ndarray,
    classes: Sequence[str],
    thresholds: np.ndarray | float | None = None,
) -> TaggingMetrics:
    """Clip-level metrics of scores ``y_score`` (N, C) against binary targets ``y_true`` (N, C).

    Classes with no positive clip get NaN AP (and NaN AUC; AUC is also NaN for a class with no
    negative clip) and are excluded from the macro means mAP / AUC / F1-macro. If no class is
    defined the macro mean is NaN. ``thresholds`` (scalar or (C,)) turns on the P/R/F1 fields.
    When every clip has exactly one label, ``accuracy`` (top-1) and ``confusion`` are filled in too.
    """
    y_true, y_score = _check_inputs(y_true, y_score, classes)
    n_clips, n_classes = y_true.shape
    support = y_true.sum(axis=0).astype(int)
    has_pos = support > 0
    has_neg = support < n_clips

    per_class_ap = np.full(n_classes, np.nan)
    per_class_auc = np.full(n_classes, np.nan)
    for c in range(n_classes):
        if has_pos[c]:
            per_class_ap[c] = average_precision_score(y_true[:, c], y_score[:, c])
        if has_pos[c] and has_neg[c]:
            per_class_auc[c] = roc_auc_score(y_true[:, c], y_score[:, c])

    macro_auc = _nanmean_or_nan(per_class_auc)
    metrics = TaggingMetrics(
        classes=list(classes),
        mAP=_nanmean_or_nan(per_class_ap),
        AUC=macro_auc,
        d_prime=d_prime_from_auc(macro_auc),
        per_class_ap=per_class_ap,
        per_class_auc=per_class_auc,
        support=support,
        n_clips=n_clips,
    )
    single = accuracy_metrics(y_true, y_score)
    if single is not None:
        metrics.accuracy, metrics.confusion = single.accuracy, single.confusion
    if thresholds is None:
        return metrics

    thresholds_c = np.broadcast_to(np.asarray(thresholds, dtype=float), (n_classes,)).copy()
    y_pred = (y_score >= thresholds_c[None, :]).astype(int)
    p_micro, r_micro, f_micro, _ = precision_recall_fscore_support(
        y_true, y_pred, average="micro", zero_division=0.0
    )
    p_c, r_c, f_c, _ = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0.0)
    p_c, r_c, f_c = (np.asarray(a, dtype=float) for a in (p_c, r_c, f_c))
    for per_class in (p_c, r_c, f_c):
        per_class[~has_pos] = np.nan  # undefined without positives, as for AP
    metrics.thresholds = thresholds_c
    metrics.precision_micro = float(p_micro)
    metrics.recall_micro = float(r_micro)
    metrics.f1_micro = float(f_micro)
    metrics.precision_macro = _nanmean_or_nan(p_c)
    metrics.recall_macro = _nanmean_or_nan(r_c)
    metrics.f1_macro = _nanmean_or_nan(f_c)
    metrics.per_class_precision = p_c
    metrics.per_class_recall = r_c
    metrics.per_class_f1 = f_c
    return metrics


def choose_thresholds(y_true: np.ndarray, y_score: np.ndarray, rule: str = "f1") -> np.ndarray:
    """Per-class decision thresholds tuned on validation data, shape (C,).

    ``rule="f1"``: the score threshold (predict positive when ``score >= threshold``) that
    maximises that class's F1 on (y_true, y_score); among ties the lowest such threshold.
    Classes without a positive clip get ``DEFAULT_THRESHOLD`` (0.5): there is nothing to tune.
    """
    if rule != "f1":
        raise ValueError(f"unknown threshold rule {rule!r}; supported: 'f1'")
    y_true, y_score = _check_inputs(y_true, y_score, None)
    n_classes = y_true.shape[1]
    thresholds = np.full(n_classes, DEFAULT_THRESHOLD)
    for c in range(n_classes):
        if not y_true[:, c].any():
            continue
        precision, recall, candidate = precision_recall_curve(y_true[:, c], y_score[:, c])
        # the last (precision=1, recall=0) point has no threshold
        precision, recall = precision[:-1], recall[:-1]
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
        thresholds[c] = candidate[int(np.argmax(f1))]
    return thresholds


def per_class_table(metrics: TaggingMetrics) -> str:
    """Markdown table of AP / AUC / support per class (plus F1 when thresholds were given)."""
    with_f1 = metrics.per_class_f1 is not None
    header = "| class | AP | AUC | support |" + (" F1 | threshold |" if with_f1 else "")
    rule = "|---|---:|---:|---:|" + ("---:|---:|" if with_f1 else "")
    lines = [header, rule]
    for c, name in enumerate(metrics.classes):
        row = f"| {name} | {_fmt(metrics.per_class_ap[c])} | {_fmt(metrics.per_class_auc[c])} | {int(metrics.support[c])} |"
        if with_f1:
            row += f" {_fmt(metrics.per_class_f1[c])} | {_fmt(metrics.thresholds[c])} |"
        lines.append(row)
    summary = f"| **macro** | {_fmt(metrics.mAP)} | {_fmt(metrics.AUC)} | {int(metrics.support.sum())} |"
    if with_f1:
        summary += f" {_fmt(metrics.f1_macro)} | |"
    lines.append(summary)
    return "\n".join(lines)


# --- helpers ---


def _check_inputs(y_true: np.ndarray, y_score: np.ndarray, classes: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=float)
    if y_true.ndim != 2 or y_true.shape != y_score.shape:
        raise ValueError(f"y_true and y_score must both be (N, C); got {y_true.shape} and {y_score.shape}")
    if classes is not None and len(classes) != y_true.shape[1]:
        raise ValueError(f"{len(classes)} class names for {y_true.shape[1]} score columns")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must contain only 0 and 1")
    return y_true.astype(int), y_score


def _nanmean_or_nan(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:.4f}"
