"""Comparing training schemes over repeated trials (the paper trains each variant 20 times).

Trials are paired by index: ``results[scheme][i]`` must come from the same seed / data order
for every scheme, which is what makes the Wilcoxon signed-rank test (paper, Sec. IV) apply.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy.stats import wilcoxon


@dataclass(frozen=True)
class PairTest:
    """Wilcoxon signed-rank test of scheme ``b`` against scheme ``a`` on paired trials.

    ``mean_diff`` is mean(b - a) (positive: b is better for a higher-is-better metric);
    ``statistic`` and ``p_value`` are scipy's two-sided results; ``n`` is the number of pairs used.
    """

    a: str
    b: str
    metric: str
    mean_diff: float
    statistic: float
    p_value: float
    n: int


def wilcoxon_pairs(
    results: Mapping[str, Sequence[float]],
    metric: str = "mAP",
    alternative: str = "two-sided",
) -> list[PairTest]:
    """Wilcoxon signed-rank test for every pair of schemes (in the mapping's order).

    Pairs where either value is NaN are dropped. Edge cases, handled here rather than left to
    scipy's version-dependent behaviour: fewer than 2 pairs gives NaN statistic and p-value (no
    test is possible); all differences zero gives statistic 0 and p-value 1.0 (no evidence of
    any difference). All schemes must have the same number of trials.
    """
    lengths = {name: len(values) for name, values in results.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"paired trials need equal counts per scheme; got {lengths}")
    tests = []
    for a, b in itertools.combinations(results, 2):
        values_a = np.asarray(results[a], dtype=float)
        values_b = np.asarray(results[b], dtype=float)
        keep = np.isfinite(values_a) & np.isfinite(values_b)
        diff = values_b[keep] - values_a[keep]
        n = int(diff.size)
        mean_diff = float(diff.mean()) if n else float("nan")
        if n < 2:
            statistic, p_value = float("nan"), float("nan")
        elif np.all(diff == 0):
            statistic, p_value = 0.0, 1.0
        else:
            test = wilcoxon(diff, alternative=alternative)
            statistic, p_value = float(test.statistic), float(test.pvalue)
        tests.append(PairTest(a=a, b=b, metric=metric, mean_diff=mean_diff, statistic=statistic, p_value=p_value, n=n))
    return tests


def summarize(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation with ddof=1) over trials, as in "54.4 ± 0.12".

    The sample (n - 1) std estimates the spread of a new trial; it is NaN for a single trial
    (and both are NaN for no trials) instead of a misleading 0.
    """
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return float("nan"), float("nan")
    mean = float(array.mean())
    std = float(array.std(ddof=1)) if array.size > 1 else math.nan
    return mean, std
