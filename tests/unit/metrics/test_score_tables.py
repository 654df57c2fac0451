"""Score tables (issue 25): `weaktag tag --scores` writes sed_scores_eval's layout, sed_scores_eval's own reader reads
it back to the PSDS `weaktag evaluate` reports, and `weaktag evaluate --scores` scores any system's tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from weaktag.checkpoint import save_checkpoint
from weaktag.cli import main
from weaktag.errors import DataError
from weaktag.experiments.evaluation import evaluate_checkpoint, evaluate_score_tables
from weaktag.metrics import PSDS_SCENARIOS, tagging_metrics
from weaktag.metrics.score_tables import read_score_tables, score_table_id
from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet

SR = 16_000
CLASSES = ["beep", "hum"]
# every class over most of every clip: at its lowest thresholds even an untrained model detects each event as
# the whole clip, a true positive under PSDS1's 0.7 criteria, so PSDS is not 0 (on a few seconds of audio a single
# false positive is more than PSDS's 100 per hour)
CLIPS = {"a.wav": (6.0, [("beep", 0.3, 5.0), ("hum", 0.5, 5.5)]),
         "b.wav": (10.0, [("beep", 1.0, 9.0), ("hum", 2.0, 9.5)]),
         "c.wav": (4.0, [("beep", 0.0, 3.8), ("hum", 0.4, 4.0)])}


@pytest.fixture(scope="module")
def tagged(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A tiny untrained checkpoint, three strongly labelled files, and the score tables `tag --scores` wrote."""
    folder = tmp_path_factory.mktemp("score_tables")
    rng = np.random.default_rng(0)
    rows = ["filename\tonset\toffset\tevent_label"]
    for name, (seconds, events) in CLIPS.items():
        t = np.arange(int(seconds * SR)) / SR
        wave = 0.02 * rng.standard_normal(len(t))
        for label, onset, offset in events:
            on = (t >= onset) & (t < offset)
            wave[on] += 0.3 * np.sin(2 * np.pi * (1000.0 if label == "beep" else 150.0) * t[on])
            rows.append(f"{name}\t{onset}\t{offset}\t{label}")
        sf.write(str(folder / name), wave.astype(np.float32), SR, subtype="FLOAT")
    (folder / "strong.tsv").write_text("\n".join(rows) + "\n")
    torch.manual_seed(0)
    model = WeakTagNet(ModelConfig(len(CLASSES), backbone=BackboneConfig(width=0.0625))).eval()
    ckpt = save_checkpoint(folder / "model.pt", model, CLASSES, "attention", {}, tag_thresholds=np.array([0.5, 0.5]))
    scores = folder / "scores"
    assert main(["tag", "--checkpoint", str(ckpt), *(str(folder / n) for n in CLIPS), "--scores", str(scores),
                 "--quiet", "--no-events"]) == 0
    return ckpt, folder, scores


def test_tables_read_by_sed_scores_eval_give_evaluates_psds(tagged) -> None:
    from sed_scores_eval import intersection_based
    from sed_scores_eval.base_modules.io import read_ground_truth_events, read_sed_scores

    ckpt, folder, scores = tagged
    tables = read_sed_scores(scores)  # sed_scores_eval's own reader
    assert sorted(tables) == ["a", "b", "c"]
    for name, (seconds, _) in CLIPS.items():
        table = tables[score_table_id(name)]
        assert list(table.columns) == ["onset", "offset", *CLASSES]
        assert table["onset"].iloc[0] == 0.0 and table["offset"].iloc[-1] == pytest.approx(seconds, abs=1e-9)
    truth = read_ground_truth_events(folder / "strong.tsv")
    durations = {score_table_id(n): seconds for n, (seconds, _) in CLIPS.items()}
    report = evaluate_checkpoint(ckpt, folder / "strong.tsv")
    for scenario, reported in ((1, report.events.psds1), (2, report.events.psds2)):
        p = PSDS_SCENARIOS[scenario]
        value, *_ = intersection_based.psds(tables, truth, durations, dtc_threshold=p.dtc_threshold,
                                            gtc_threshold=p.gtc_threshold, cttc_threshold=p.cttc_threshold,
                                            alpha_ct=p.alpha_ct, alpha_st=p.alpha_st, max_efpr=p.max_efpr,
                                            unit_of_time="hour", time_decimals=6)
        assert value == pytest.approx(reported, abs=1e-9), scenario
    assert report.events.psds1 > 0  # the comparison is not of two zeros


def test_evaluate_scores_equals_evaluate_checkpoint_and_scores_the_maxima(tagged, capsys) -> None:
    from sed_scores_eval.base_modules.io import read_sed_scores

    ckpt, folder, scores = tagged
    from_model = evaluate_checkpoint(ckpt, folder / "strong.tsv")
    from_tables = evaluate_score_tables(scores, folder / "strong.tsv")
    assert from_tables.events.psds1 == pytest.approx(from_model.events.psds1, abs=1e-9)
    assert from_tables.events.psds2 == pytest.approx(from_model.events.psds2, abs=1e-9)
    # tagging: each class's highest segment score per clip
    tables = read_sed_scores(scores)
    names = list(CLIPS)
    weak = np.array([[float(any(e[0] == c for e in CLIPS[n][1])) for c in CLASSES] for n in names])
    weak[0, 0] = 0.0  # a clip without a beep (labels below), so that AUC is defined
    maxima = np.stack([tables[score_table_id(n)][CLASSES].to_numpy().max(axis=0) for n in names])
    expected = tagging_metrics(weak, maxima, CLASSES)
    weak_labels = folder / "weak.tsv"
    weak_labels.write_text("filename\tevent_labels\na.wav\thum\nb.wav\tbeep,hum\nc.wav\tbeep,hum\n")
    from_weak = evaluate_score_tables(scores, weak_labels)
    assert from_weak.events is None and from_weak.num_clips == 3
    assert from_weak.tagging.mAP == pytest.approx(expected.mAP, abs=1e-12)
    assert from_weak.tagging.AUC == pytest.approx(expected.AUC, abs=1e-12)
    assert main(["evaluate", "--scores", str(scores), "--labels", str(folder / "strong.tsv")]) == 0
    out = capsys.readouterr().out
    assert f"| psds1 | {from_model.events.psds1:.4f} |" in out and "highest segment score" in out


def test_bad_tables_are_one_line_errors_naming_the_file(tagged, tmp_path: Path, capsys) -> None:
    _, folder, scores = tagged
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in scores.iterdir():
        (bad / f.name).write_text(f.read_text())
    lines = (bad / "b.tsv").read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split("\t")[2], "high")
    (bad / "b.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"b\.tsv: line 4: column beep: 'high' is not a number"):
        read_score_tables(bad)
    (bad / "b.tsv").unlink()
    with pytest.raises(DataError, match=r"no score table for 1 of the 3 labelled clips, e\.g\. b\.tsv for b"):
        evaluate_score_tables(bad, folder / "strong.tsv")
    (bad / "c.tsv").write_text("onset\toffset\tbeep\n0\t1\t0.5\n")
    assert main(["evaluate", "--scores", str(bad), "--labels", str(folder / "strong.tsv")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "c.tsv: line 1: its classes ['beep'] differ" in err
    with pytest.raises(SystemExit):  # a checkpoint or score tables, not both
        main(["evaluate", "--scores", str(bad), "--checkpoint", "x.pt", "--labels", "y"])
