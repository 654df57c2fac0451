"""After the epochs: the best epoch's network, what its validation predictions choose (tag
thresholds, event settings), and its test-set evaluation with those choices."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import Checkpoint
from ..config import ExperimentConfig
from ..data import FeatureSet
from ..metrics.events import OperatingPoint
from ..metrics.tagging import TaggingMetrics, choose_thresholds, tagging_metrics
from ..models import WeakTagNet
from ..models.transfer import load_weights_file
from ..postprocess import EventSettings
from .calibration import choose_event_output, choose_event_settings, choose_operating_point, event_metrics_for
from .module import WeakTagModule
from .predict import Predictions, predict_features, predict_recordings


@dataclass(frozen=True)
class BestEpoch:
    model: WeakTagNet  # on the prediction device, in eval mode
    epoch: int  # 1-based, as the epoch lines count ("epoch 3/12")


@dataclass
class Calibration:
    """The best epoch on validation: its tagging metrics and the settings chosen there."""

    tagging: TaggingMetrics
    tag_thresholds: np.ndarray
    event_settings: EventSettings
    operating_point: OperatingPoint | None
    metrics: dict  # the checkpoint's "validation" metrics


@dataclass
class TestEvaluation:
    """The best epoch's predictions and metrics on the test set (validation thresholds)."""

    predictions: Predictions
    tagging: TaggingMetrics
    events: dict | None = None  # EventMetrics.to_dict() when the test labels are strong

    def metrics(self) -> dict:
        """The checkpoint's "test" metrics."""
        out: dict = {"mAP": self.tagging.mAP, "AUC": self.tagging.AUC}
        if self.events is not None:
            out["events"] = self.events
        return out


def prediction_device(config: ExperimentConfig) -> torch.device:
    gpu = config.train.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    return torch.device("cuda" if gpu else "cpu")


def restore_best(config: ExperimentConfig, module: WeakTagModule, best_checkpoint: str) -> BestEpoch:
    """The weights of the best epoch's Lightning checkpoint, loaded into ``module``'s network."""
    best = load_weights_file(best_checkpoint, "a training checkpoint")
    module.load_state_dict(best["state_dict"])
    # validation and test predictions on the training accelerator (a CPU pass over AudioSet's eval set
    # would take longer than the training), then the model goes to the CPU for the checkpoint
    return BestEpoch(module.model.to(prediction_device(config)).eval(), int(best["epoch"]) + 1)


def calibrate(config: ExperimentConfig, best: BestEpoch, validation: FeatureSet, classes: list[str]) -> Calibration:
    """Tag thresholds and event settings chosen on the validation predictions of ``best``."""
    predictions = predict_features(best.model, validation)
    tagging = tagging_metrics(validation.weak, predictions.clip_probs, classes)
    thresholds = choose_thresholds(validation.weak, predictions.clip_probs)
    metrics: dict = {"mAP": tagging.mAP, "AUC": tagging.AUC, "best_epoch": best.epoch}
    search = {"objective": config.train.event_calibration, "durations": config.train.event_durations,
              "hysteresis": config.train.event_hysteresis}
    if config.train.event_output == "auto":
        event_settings, psds_by_output = choose_event_output(validation, predictions, **search)
        metrics["psds1_by_event_output"] = psds_by_output
    else:
        event_settings = choose_event_settings(validation, predictions, config.train.event_output, **search)
    operating_point = choose_operating_point(validation, predictions, event_settings.output)
    if operating_point is not None:
        metrics["psds1_operating_point"] = operating_point.to_dict()
    return Calibration(tagging, thresholds, event_settings, operating_point, metrics)


def evaluate_test(best: BestEpoch, test: FeatureSet | None, classes: list[str], calibration: Calibration,
                  scheme: str, feature_cache: str | Path | None = None) -> TestEvaluation | None:
    """``best`` on the test set with the settings chosen on validation; None without test clips. Each
    test clip's whole recording is scored, as ``weaktag evaluate`` and ``weaktag tag`` score it;
    ``feature_cache``: where a frozen backbone's outputs on these recordings are kept for the next trial."""
    if test is None or not len(test):
        return None
    trained = Checkpoint(best.model, classes, scheme, {}, calibration.tag_thresholds, calibration.event_settings)
    device = next(best.model.parameters()).device
    predictions, recordings = predict_recordings(trained, test.clips, device, feature_cache=feature_cache)
    evaluation = TestEvaluation(predictions, tagging_metrics(recordings.weak, predictions.clip_probs, classes,
                                                             thresholds=calibration.tag_thresholds))
    if any(c.has_strong for c in recordings.clips):
        evaluation.events = event_metrics_for(calibration.event_settings, recordings, predictions,
                                              operating_point=calibration.operating_point).to_dict()
    return evaluation
