"""The self-supervision study's table (recipes/soundscapes/self_supervision_v2.py), without training: recovered
shares read from compare's results, 'undefined' where strong labels gain nothing, and Spearman's rho between
event duration and AP gain on hand-made per-class figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import soundscape_script


ssl = soundscape_script("self_supervision_v2")
CLASSES = ["short", "middle", "long", "longest"]
DURATIONS = [0.3, 1.0, 3.0, 5.0]


def _results() -> dict:
    summary, ap, recovered = {}, {}, []
    for fraction in ssl.FRACTIONS:
        name = ssl.fraction_name(fraction)
        for scheme, (m, p1) in {"attention": (0.60, 0.10), "attention-strong": (0.70, 0.20),
                                "attention-self": (0.62, 0.15), "attention-self-ext": (0.61, 0.12)}.items():
            arm = f"{name}:{scheme}"
            summary[arm] = {"mAP": {"mean": m}, "psds1": {"mean": p1}}
            # the self arm gains most on the shortest class: rho = -1
            gains = {"attention-self": [0.4, 0.3, 0.2, 0.1]}.get(scheme, [0.0, 0.0, 0.0, 0.0])
            ap[arm] = [0.5 + g for g in gains]
        for scheme, share in (("attention-self", 0.5), ("attention-self-ext", None)):
            recovered.append({"arm": f"{name}:{scheme}", "metric": "psds1", "share": share, "p_value": 0.03})
    return {"trials": 3, "seeds": [0, 1, 2], "summary": summary, "recovered": recovered,
            "per_class": {"classes": CLASSES, "median_duration": DURATIONS, "ap": ap}}


def test_the_study_table_reads_shares_and_the_duration_correlation(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    table = ssl.write_study(_results(), tmp_path)
    row = table["fractions"]["train10"]["attention-self"]
    assert row["share_psds1"] == 0.5 and row["p_psds1"] == 0.03
    assert row["duration"]["rho"] == pytest.approx(-1.0)
    text = (tmp_path / "study.md").read_text()
    assert "| 10% | `attention-self` | 62.0 | 15.0 | undefined | 50% (0.030) | -1.00 (0.00) |" in text
    assert "| 10% | `attention-self-ext` | 61.0 | 12.0 | undefined | undefined |" in text  # strong gains nothing
    assert json.loads((tmp_path / "study.json").read_text())["seeds"] == [0, 1, 2]
    assert (tmp_path / "study.png").stat().st_size > 0


def test_a_constant_gain_has_no_duration_correlation() -> None:
    out = _results()
    rho = ssl.duration_gain(out, "train10:attention", "train10:attention-strong")
    assert rho["rho"] is None and rho["n"] == len(CLASSES)  # a constant gain: rho is undefined, not NaN


def test_one_trial_gives_shares_without_a_p_value(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = _results()
    out.update(trials=1, seeds=[0])
    for row in out["recovered"]:
        row["p_value"] = None  # one pair: no paired test
    ssl.write_study(out, tmp_path)
    assert "| 10% | `attention-self` | 62.0 | 15.0 | undefined | 50% (n/a) |" in (tmp_path / "study.md").read_text()


def test_the_scratch_part_trains_the_narrow_net_to_early_stopping(tmp_path: Path, monkeypatch) -> None:
    import yaml

    calls = []
    monkeypatch.setattr(ssl.detection, "compare", lambda arms, recipes, *a, **k: calls.append((arms, recipes)))
    monkeypatch.setattr(ssl.soundscapes, "copy_report", lambda work, results: [])
    ssl.scratch_part(1, tmp_path / "work", tmp_path / "results", [], [])
    (arms, recipes), = calls
    assert arms == [f"narrow-es:{a}" for a in ssl.ARMS]
    recipe = yaml.safe_load(Path(recipes["narrow-es"]).read_text())
    assert recipe["train"]["early_stopping_patience"] == 8 and recipe["train"]["max_epochs"] == 60
    assert recipe["model"]["width"] == 0.125  # the narrow network, from scratch
