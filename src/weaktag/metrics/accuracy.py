"""Single-label classification (ESC-50, UrbanSound8K): top-1 accuracy and the confusion matrix.

A set is single-label when every clip has exactly one label; a clip's prediction is then its most
probable class. Multi-label sets have neither (mAP is their measure).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class AccuracyMetrics:
    """Top-1 accuracy over N single-label clips, and the (C, C) confusion matrix of counts (row: the true class,
    column: the predicted one)."""

    accuracy: float
    confusion: np.ndarray
    n_clips: int


def is_single_label(y_true: np.ndarray) -> bool:
    """True when every clip (row of the (N, C) binary targets) has exactly one label, and there are clips."""
    y_true = np.asarray(y_true)
    return y_true.ndim == 2 and len(y_true) > 0 and bool((y_true.sum(axis=1) == 1).all())


def accuracy_metrics(y_true: np.ndarray, y_score: np.ndarray) -> AccuracyMetrics | None:
    """Top-1 accuracy and confusion matrix of scores ``y_score`` (N, C) against single-label targets ``y_true``
    (N, C); None when the targets are not single-label (:func:`is_single_label`)."""
    if not is_single_label(y_true):
        return None
    truth = np.asarray(y_true).argmax(axis=1)
    predicted = np.asarray(y_score, dtype=float).argmax(axis=1)
    n_classes = np.asarray(y_true).shape[1]
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(confusion, (truth, predicted), 1)
    return AccuracyMetrics(float(np.trace(confusion) / len(truth)), confusion, len(truth))
