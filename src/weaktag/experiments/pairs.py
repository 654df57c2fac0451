"""Paired tests read as claims: a test turned to "challenger vs baseline", and the share of strong labels' gain
that a weak-only arm recovers (issue 22), both computed from :class:`~weaktag.experiments.report.CompareResults`'
pairwise Wilcoxon tests; the report formats them."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .trials import Arm


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def oriented(test: Mapping[str, Any], baseline: str, challenger: str) -> dict[str, Any]:
    """A pair test as "challenger vs baseline": mean diff = challenger - baseline."""
    out = dict(test)
    if test["a"] == baseline and test["b"] == challenger:
        return out
    if test["a"] == challenger and test["b"] == baseline:
        diff = test["mean_diff"]
        out.update(a=baseline, b=challenger, mean_diff=-diff if finite(diff) else diff)
        if test.get("b_better") is not None and test.get("a_better") is not None:
            out.update(b_better=test["a_better"], a_better=test["b_better"])
        return out
    raise ValueError(f"test {test['a']} vs {test['b']} is not {baseline} vs {challenger}")


#: the schemes a recovered share is measured between: weak labels alone, and with strong labels as well
SHARE_BASELINE, SHARE_STRONG = "attention", "attention-strong"


def recovered_shares(tests: Sequence[Mapping[str, Any]], schemes: Sequence[str],
                     scheme_labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """For each weak-only arm beside ``attention`` and ``attention-strong`` of the same recipe, and each tested
    metric: the share of strong labels' gain the arm recovers, (arm − attention) / (attention-strong − attention),
    from paired mean differences, with the arm's paired p against ``attention`` (and strong labels' own p).

    The share is None where strong labels gain nothing (a difference ≤ 0): there is nothing to recover."""
    by_pair = {(t["a"], t["b"], t["metric"]): t for t in tests}

    def paired(baseline: str, challenger: str, metric: str) -> dict[str, Any] | None:
        for key in ((baseline, challenger, metric), (challenger, baseline, metric)):
            if key in by_pair:
                return oriented(by_pair[key], baseline, challenger)
        return None

    out = []
    for arm in schemes:
        parsed = Arm.parse(arm)
        baseline, strong = (Arm(s, parsed.recipe).name for s in (SHARE_BASELINE, SHARE_STRONG))
        if scheme_labels.get(arm) != "weak" or arm == baseline or baseline not in schemes or strong not in schemes:
            continue
        for metric in dict.fromkeys(t["metric"] for t in tests):
            gain, ceiling = paired(baseline, arm, metric), paired(baseline, strong, metric)
            if gain is None or ceiling is None:
                continue
            room = ceiling["mean_diff"]
            share = gain["mean_diff"] / room if finite(gain["mean_diff"]) and finite(room) and room > 0 else None
            out.append({"arm": arm, "baseline": baseline, "strong": strong, "metric": metric,
                        "arm_gain": gain["mean_diff"], "strong_gain": room, "share": share,
                        "p_value": gain["p_value"], "strong_p_value": ceiling["p_value"], "n": gain["n"]})
    return out
