"""The diagnostics table and finding of compare's report when a mean has no finite value (results.json writes
NaN as null): a dash, not a crash."""

from __future__ import annotations

import math

from weaktag.experiments.diagnostics import DIAGNOSTICS, diagnostics_finding, diagnostics_markdown


def _arm(best: float | None, first: float | None) -> dict:
    return {"trials": 1, "best": {k: best for k in DIAGNOSTICS}, "first": {k: first for k in DIAGNOSTICS}}


def test_a_mean_of_nothing_reads_as_a_dash() -> None:
    summary = {"a": _arm(0.5, None), "b": _arm(None, 0.2), "c": _arm(math.nan, math.nan), "d": _arm(0.25, 0.125)}
    rows = diagnostics_markdown(summary).splitlines()[2:]
    assert rows[0] == "| `a` | 1 | " + " | ".join(["0.500 (-)"] * len(DIAGNOSTICS)) + " |"
    assert rows[1] == rows[1].split("|")[0] + "| `b` | 1 | " + " | ".join(["-"] * len(DIAGNOSTICS)) + " |"
    assert rows[2].endswith(" | ".join(["-"] * len(DIAGNOSTICS)) + " |")
    assert rows[3] == "| `d` | 1 | " + " | ".join(["0.250 (0.125)"] * len(DIAGNOSTICS)) + " |"
    finding = diagnostics_finding(summary)  # only the arms with every figure
    assert "`a`" in finding and "`d`" in finding and "`b`" not in finding and "`c`" not in finding
