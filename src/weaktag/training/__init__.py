"""Training: Lightning runs of one scheme, prediction on prepared features, and the settings chosen on validation."""

from .best_epoch import TestEvaluation
from .calibration import choose_event_output, choose_event_settings, event_metrics_for, score_matrices
from .module import EpochLog, WeakTagModule
from .predict import Predictions, predict_features
from .run import PreparedData, TrainResult, build_model, prepare_data, read_manifests, train

__all__ = [
    "EpochLog",
    "PreparedData",
    "Predictions",
    "TestEvaluation",
    "TrainResult",
    "WeakTagModule",
    "build_model",
    "choose_event_output",
    "choose_event_settings",
    "event_metrics_for",
    "predict_features",
    "prepare_data",
    "read_manifests",
    "score_matrices",
    "train",
]
