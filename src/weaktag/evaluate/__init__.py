"""Evaluation: clip-level tagging metrics, event-level SED metrics, trial statistics and figures.

Pure functions over numpy arrays and :class:`weaktag.labels.Manifest`; no model or training code.
"""

from .events import (
    OUTPUT_KINDS,
    PSDS_SCENARIOS,
    DetectedEvent,
    EventMetrics,
    PsdsResult,
    PsdsScenario,
    SedEvalScores,
    decode_events,
    evaluate_events,
    psds,
    scores_to_dataframes,
    sed_eval_metrics,
    segment_scores,
    segment_timestamps,
)
from .plots import (
    GainRow,
    GainVsDuration,
    attention_figure_size,
    gain_vs_duration_table,
    median_event_durations,
    plot_attention,
    plot_gain_vs_duration,
)
from .statistics import PairTest, summarize, wilcoxon_pairs
from .tagging import TaggingMetrics, choose_thresholds, d_prime_from_auc, per_class_table, tagging_metrics

__all__ = [
    "OUTPUT_KINDS",
    "PSDS_SCENARIOS",
    "DetectedEvent",
    "EventMetrics",
    "GainRow",
    "GainVsDuration",
    "PairTest",
    "PsdsResult",
    "PsdsScenario",
    "SedEvalScores",
    "TaggingMetrics",
    "attention_figure_size",
    "choose_thresholds",
    "d_prime_from_auc",
    "decode_events",
    "evaluate_events",
    "gain_vs_duration_table",
    "median_event_durations",
    "per_class_table",
    "plot_attention",
    "plot_gain_vs_duration",
    "psds",
    "scores_to_dataframes",
    "sed_eval_metrics",
    "segment_scores",
    "segment_timestamps",
    "summarize",
    "tagging_metrics",
    "wilcoxon_pairs",
]
