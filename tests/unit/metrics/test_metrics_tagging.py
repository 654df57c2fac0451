"""Clip-level tagging metrics and trial statistics against hand-computed values and the libraries."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from weaktag.metrics import (
    choose_thresholds,
    d_prime_from_auc,
    per_class_table,
    summarize,
    tagging_metrics,
    wilcoxon_pairs,
)

CLASSES = ["a", "b", "never"]
# 4 clips x 3 classes; class "never" has no positive clip.
Y_TRUE = np.array(
    [
        [1, 0, 0],
        [0, 1, 0],
        [1, 1, 0],
        [0, 0, 0],
    ]
)
Y_SCORE = np.array(
    [
        [0.9, 0.1, 0.6],
        [0.8, 0.9, 0.1],
        [0.7, 0.8, 0.1],
        [0.1, 0.2, 0.1],
    ]
)


def test_hand_computed_ap_auc_and_exclusion_of_class_without_positives() -> None:
    m = tagging_metrics(Y_TRUE, Y_SCORE, CLASSES)
    # class a ranking: pos(.9) neg(.8) pos(.7) neg(.1)
    #   AP = mean precision at the positives = (1/1 + 2/3) / 2 = 5/6
    #   AUC = pairs (pos > neg) / pairs = (2 + 1) / 4 = 0.75
    # class b ranking: pos(.9) pos(.8) neg(.2) neg(.1) -> AP = 1, AUC = 1
    assert m.per_class_ap[0] == pytest.approx(5 / 6)
    assert m.per_class_auc[0] == pytest.approx(0.75)
    assert m.per_class_ap[1] == pytest.approx(1.0)
    assert m.per_class_auc[1] == pytest.approx(1.0)
    # class "never": undefined, NaN in the table, left out of the means
    assert math.isnan(m.per_class_ap[2]) and math.isnan(m.per_class_auc[2])
    assert m.mAP == pytest.approx((5 / 6 + 1) / 2)
    assert m.AUC == pytest.approx((0.75 + 1) / 2)
    # d' = sqrt(2) * Phi^-1(0.875) = 1.41421 * 1.15035 = 1.62685
    assert m.d_prime == pytest.approx(1.62685, abs=1e-4)
    assert m.support.tolist() == [2, 2, 0]
    assert m.f1_micro is None


def test_auc_undefined_when_class_has_no_negatives() -> None:
    y_true = np.array([[1, 1], [1, 0], [1, 1]])
    y_score = np.array([[0.2, 0.9], [0.5, 0.1], [0.4, 0.6]])
    m = tagging_metrics(y_true, y_score, ["always", "b"])
    assert m.per_class_ap[0] == pytest.approx(1.0)  # AP is defined: every clip is positive
    assert math.isnan(m.per_class_auc[0])
    assert m.AUC == pytest.approx(1.0)


def test_matches_sklearn_macro_when_all_classes_defined() -> None:
    rng = np.random.default_rng(0)
    y_true = (rng.random((60, 5)) < 0.3).astype(int)
    y_true[0] = 1
    y_true[1] = 0
    y_score = np.clip(y_true * 0.3 + rng.random((60, 5)), 0, 1)
    m = tagging_metrics(y_true, y_score, list("abcde"))
    assert m.mAP == pytest.approx(average_precision_score(y_true, y_score, average="macro"))
    assert m.AUC == pytest.approx(roc_auc_score(y_true, y_score, average="macro"))
    assert m.d_prime == pytest.approx(math.sqrt(2) * norm.ppf(m.AUC))


def test_thresholded_precision_recall_f1() -> None:
    m = tagging_metrics(Y_TRUE, Y_SCORE, CLASSES, thresholds=0.5)
    # predictions (score >= 0.5):
    #   a: [1,1,1,0] vs [1,0,1,0] -> TP 2 FP 1 FN 0 -> P 2/3, R 1, F1 0.8
    #   b: [0,1,1,0] vs [0,1,1,0] -> F1 1
    #   never: [1,0,0,0] -> one FP (counts in micro; class undefined for macro)
    # micro: TP 4, FP 2, FN 0 -> P 4/6, R 1, F1 0.8
    assert m.precision_micro == pytest.approx(4 / 6)
    assert m.recall_micro == pytest.approx(1.0)
    assert m.f1_micro == pytest.approx(0.8)
    assert m.f1_macro == pytest.approx((0.8 + 1.0) / 2)
    assert m.per_class_f1[0] == pytest.approx(0.8)
    assert math.isnan(m.per_class_f1[2])


def test_choose_thresholds_gives_perfect_f1_on_separable_data() -> None:
    y_true = np.array([[0, 0], [0, 0], [1, 0], [1, 0]])
    y_score = np.array([[0.1, 0.3], [0.3, 0.2], [0.6, 0.9], [0.8, 0.1]])
    thresholds = choose_thresholds(y_true, y_score)
    assert thresholds[0] == pytest.approx(0.6)  # lowest score that still separates
    assert thresholds[1] == pytest.approx(0.5)  # no positives: default
    m = tagging_metrics(y_true, y_score, ["a", "b"], thresholds=thresholds)
    assert m.f1_macro == pytest.approx(1.0)
    assert m.per_class_f1[0] == pytest.approx(1.0)


def test_choose_thresholds_rejects_unknown_rule() -> None:
    with pytest.raises(ValueError):
        choose_thresholds(Y_TRUE, Y_SCORE, rule="youden")


def test_table_and_json() -> None:
    m = tagging_metrics(Y_TRUE, Y_SCORE, CLASSES, thresholds=0.5)
    table = per_class_table(m)
    assert table.splitlines()[0].startswith("| class | AP | AUC | support |")
    assert "| never | n/a | n/a | 0 |" in table
    assert "| a | 0.8333 | 0.7500 | 2 |" in table
    data = json.loads(json.dumps(m.to_dict()))
    assert data["per_class_ap"][2] is None
    assert data["mAP"] == pytest.approx(m.mAP)
    assert data["classes"] == CLASSES


def test_d_prime_of_chance_is_zero() -> None:
    assert d_prime_from_auc(0.5) == pytest.approx(0.0)
    assert math.isnan(d_prime_from_auc(float("nan")))


def test_input_validation() -> None:
    with pytest.raises(ValueError):
        tagging_metrics(Y_TRUE, Y_SCORE[:, :2], CLASSES)
    with pytest.raises(ValueError):
        tagging_metrics(Y_TRUE * 2, Y_SCORE, CLASSES)


# --- statistics ---


def test_wilcoxon_matches_scipy_documented_example() -> None:
    # scipy.stats.wilcoxon docstring: differences d -> statistic 24, exact two-sided p 0.04126
    d = np.array([6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75], dtype=float)
    (test,) = wilcoxon_pairs({"a": np.zeros_like(d), "b": d})
    assert test.statistic == pytest.approx(24.0)
    assert test.p_value == pytest.approx(0.041259765625)
    assert test.n == 15 and test.mean_diff == pytest.approx(d.mean())
    assert (test.a, test.b, test.metric) == ("a", "b", "mAP")


def test_wilcoxon_hand_value_all_positive() -> None:
    # 5 pairs, all b > a: W- = 0; exact null P(W- = 0) = 1/2^5, two-sided p = 2/32 = 0.0625
    (test,) = wilcoxon_pairs({"a": [0.50, 0.51, 0.52, 0.53, 0.54], "b": [0.55, 0.53, 0.56, 0.60, 0.545]})
    assert test.statistic == 0.0
    assert test.p_value == pytest.approx(0.0625)


def test_wilcoxon_edge_cases_and_all_pairs() -> None:
    equal = wilcoxon_pairs({"a": [0.5, 0.6, 0.7], "b": [0.5, 0.6, 0.7]}, metric="psds1")[0]
    assert equal.p_value == 1.0 and equal.statistic == 0.0 and equal.metric == "psds1"
    single = wilcoxon_pairs({"a": [0.5], "b": [0.6]})[0]
    assert math.isnan(single.p_value) and single.n == 1
    three = wilcoxon_pairs({"x": [1.0, 2.0, 3.0], "y": [2.0, 3.0, 5.0], "z": [0.0, 1.0, 1.5]})
    assert [(t.a, t.b) for t in three] == [("x", "y"), ("x", "z"), ("y", "z")]
    with pytest.raises(ValueError):
        wilcoxon_pairs({"a": [1.0, 2.0], "b": [1.0]})


def test_summarize_uses_sample_std() -> None:
    mean, std = summarize([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0)
    assert std == pytest.approx(1.0)  # sqrt(((1)^2 + 0 + (1)^2) / (3 - 1))
    mean, std = summarize([0.4])
    assert mean == pytest.approx(0.4) and math.isnan(std)
