"""Metrics, pure: numpy arrays and label manifests in, numbers out (no model or training code).

One module per evaluation mode: clip tagging (:mod:`.tagging`), sound event detection with
PSDS and sed_eval (:mod:`.events`), score tables in sed_scores_eval's layout, written and scored
(:mod:`.score_tables`), and statistics over repeated trials (:mod:`.statistics`).
"""

from .events import (
    PSDS_SCENARIOS,
    EventMetrics,
    PsdsResult,
    PsdsScenario,
    SedEvalScores,
    evaluate_events,
    psds,
    scores_to_dataframes,
    sed_eval_metrics,
)
from .accuracy import AccuracyMetrics, accuracy_metrics
from .score_tables import ScoreTables, read_score_tables, score_table_metrics, write_score_table
from .statistics import PairTest, summarize, wilcoxon_pairs
from .tagging import TaggingMetrics, choose_thresholds, d_prime_from_auc, per_class_table, tagging_metrics

__all__ = [
    "AccuracyMetrics",
    "ScoreTables",
    "accuracy_metrics",
    "read_score_tables",
    "score_table_metrics",
    "write_score_table",
    "PSDS_SCENARIOS",
    "EventMetrics",
    "PairTest",
    "PsdsResult",
    "PsdsScenario",
    "SedEvalScores",
    "TaggingMetrics",
    "choose_thresholds",
    "d_prime_from_auc",
    "evaluate_events",
    "per_class_table",
    "psds",
    "scores_to_dataframes",
    "sed_eval_metrics",
    "summarize",
    "tagging_metrics",
    "wilcoxon_pairs",
]
