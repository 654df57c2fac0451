"""Folds and accuracy (issue 25): `weaktag compare --folds` runs one paired trial per held-out fold, and single-label
sets get top-1 accuracy and a confusion matrix beside mAP, in `compare` and in `evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from sklearn.metrics import accuracy_score, confusion_matrix

from conftest import shared_data
from weaktag.cli import main
from weaktag.experiments.evaluation import evaluate_checkpoint
from weaktag.metrics.accuracy import accuracy_metrics

SR = 16_000
TONES = {"low": 300.0, "mid": 1200.0, "high": 3500.0}
FOLDS = ("1", "2", "3")
CLIPS_PER_CLASS_AND_FOLD = 3


def _tiny_config(path: Path, train: str) -> Path:
    config = {"data": {"train": train, "validation_fraction": 0.3},
              "model": {"width": 0.0625, "l7_channels": 64},
              "train": {"lr": 1e-3, "batch_size": 8, "max_epochs": 1, "seed": 0, "progress": False, "logger": "none",
                        "accelerator": "cpu"}}
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def folded(tmp_path_factory) -> tuple[Path, Path]:
    """27 one-second tones of 3 classes in 3 folds (a table with a fold column), compared with --folds (1 epoch)."""
    root = tmp_path_factory.mktemp("folds")
    rng = np.random.default_rng(0)
    rows = ["filename,labels,fold"]
    t = np.arange(SR) / SR
    for fold in FOLDS:
        for label, freq in TONES.items():
            for k in range(CLIPS_PER_CLASS_AND_FOLD):
                name = f"{label}_{fold}_{k}.wav"
                wave = 0.3 * np.sin(2 * np.pi * freq * (1 + 0.02 * k) * t) + 0.01 * rng.standard_normal(SR)
                sf.write(str(root / name), wave.astype(np.float32), SR)
                rows.append(f"{name},{label},{fold}")
    (root / "tags.csv").write_text("\n".join(rows) + "\n")
    config = _tiny_config(root / "tiny.yaml", str(root / "tags.csv"))
    assert main(["compare", "--config", str(config), "--folds", "--schemes", "attention", "--out-dir",
                 str(root / "out"), "--quiet"]) == 0
    return root, root / "out"


def test_one_trial_per_held_out_fold(folded) -> None:
    root, out = folded
    results = json.loads((out / "results.json").read_text())
    assert results["folds"] == list(FOLDS) and results["trials"] == len(FOLDS)
    runs = results["runs"]["attention"]
    assert [r["trial"] for r in runs] == [0, 1, 2]
    for fold, run in zip(FOLDS, runs):
        record = json.loads((out / "runs" / "attention" / f"seed{run['seed']}" / "trial.json").read_text())
        assert record["fingerprint"]["data"]["test"] == str(out / "folds" / fold / "test.jsonl")
        test = [json.loads(line) for line in (out / "folds" / fold / "test.jsonl").read_text().splitlines()[1:]]
        train = [json.loads(line) for line in (out / "folds" / fold / "train.jsonl").read_text().splitlines()[1:]]
        assert {c["fold"] for c in test} == {fold} and fold not in {c["fold"] for c in train}
        assert record["n_test"] == len(test) == len(TONES) * CLIPS_PER_CLASS_AND_FOLD
        assert len(train) == (len(FOLDS) - 1) * len(test)


def test_each_folds_accuracy_is_its_checkpoints_top1_accuracy(folded) -> None:
    root, out = folded
    results = json.loads((out / "results.json").read_text())
    for fold, run in zip(FOLDS, results["runs"]["attention"]):
        folder = out / "runs" / "attention" / f"seed{run['seed']}"
        record = json.loads((folder / "trial.json").read_text())
        report = evaluate_checkpoint(folder / record["checkpoint"], out / "folds" / fold / "test.jsonl")
        assert record["metrics"]["accuracy"] == pytest.approx(report.tagging.accuracy, abs=1e-9)
        counts = np.array(record["confusion"])
        assert counts.sum() == record["n_test"]
        assert np.trace(counts) / counts.sum() == pytest.approx(record["metrics"]["accuracy"], abs=1e-12)
    pooled = results["confusion"]["attention"]
    assert np.sum(pooled["counts"]) == len(FOLDS) * len(TONES) * CLIPS_PER_CLASS_AND_FOLD  # every clip once
    assert (out / pooled["figure"]).stat().st_size > 0
    report = (out / "report.md").read_text()
    assert "## Confusion matrices" in report and "leave-one-fold-out" in report
    assert "accuracy (%)" in (out / "table.md").read_text()


def test_evaluate_reports_accuracy_and_draws_the_confusion_matrix(folded, capsys) -> None:
    root, out = folded
    run = json.loads((out / "results.json").read_text())["runs"]["attention"][0]
    checkpoint = out / "runs" / "attention" / f"seed{run['seed']}" / run["checkpoint"]
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--labels", str(out / "folds" / "1" / "test.jsonl"),
                 "--output", str(root / "eval" / "report.md"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "| accuracy (top-1) |" in printed and "![confusion matrix](report.confusion.png)" in printed
    assert (root / "eval" / "report.confusion.png").stat().st_size > 0


def test_fold_options_that_cannot_work_are_one_line_errors(folded, tmp_path: Path, capsys) -> None:
    root, _ = folded
    config = _tiny_config(tmp_path / "c.yaml", str(root / "tags.csv"))
    assert main(["compare", "--config", str(config), "--folds", "--trials", "2", "--schemes", "attention"]) == 2
    assert main(["compare", "--config", str(config), "--folds", "--schemes", "attention", "--out-dir",
                 str(tmp_path / "o"), f"data.test={root / 'tags.csv'}"]) == 2
    (tmp_path / "nofold.csv").write_text("filename,labels\nlow_1_0.wav,low\n")
    config = _tiny_config(tmp_path / "d.yaml", str(tmp_path / "nofold.csv"))
    assert main(["compare", "--config", str(config), "--folds", "--schemes", "attention", "--out-dir",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "leave out --trials" in err[0] and "leave data.test and data.validation unset" in err[1]
    assert "nofold.csv:2: clip 'low_1_0' has no fold" in err[2]


def test_accuracy_and_confusion_match_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 4, 50)
    scores = rng.random((50, 4))
    one_hot = np.eye(4)[truth]
    single = accuracy_metrics(one_hot, scores)
    assert single.accuracy == pytest.approx(accuracy_score(truth, scores.argmax(axis=1)))
    np.testing.assert_array_equal(single.confusion, confusion_matrix(truth, scores.argmax(axis=1), labels=range(4)))
    one_hot[0, (truth[0] + 1) % 4] = 1  # a clip with two labels: not a single-label set
    assert accuracy_metrics(one_hot, scores) is None


def test_esc10_folds_end_to_end(tmp_path: Path) -> None:
    """ESC-10's real clips and folds (2 classes x 2 clips x 3 folds, 1 epoch): the folder's fold naming read into a
    table, and compare --folds on it."""
    from weaktag.labels import read_labels

    esc10 = read_labels(shared_data("esc10"))
    picked = [c for label in ("dog_bark", "rain") for fold in FOLDS
              for c in [c for c in esc10 if label in c.labels and c.fold == fold][:2]]
    rows = ["filename,labels,fold"] + [f"{c.audio_path.resolve()},{next(iter(c.labels))},{c.fold}" for c in picked]
    (tmp_path / "esc10.csv").write_text("\n".join(rows) + "\n")
    config = _tiny_config(tmp_path / "tiny.yaml", str(tmp_path / "esc10.csv"))
    assert main(["compare", "--config", str(config), "--folds", "--schemes", "attention", "--out-dir",
                 str(tmp_path / "out"), "--quiet", "data.validation_fraction=0.5"]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["folds"] == list(FOLDS)
    assert all(0.0 <= r["metrics"]["accuracy"] <= 1.0 for r in results["runs"]["attention"])


@pytest.mark.slow
def test_esc10_documented_command(tmp_path: Path) -> None:
    """The README's ESC-10 command as written (the narrow recipe, 5 folds of 80 clips; minutes on 2 cores)."""
    folder = shared_data("esc10")
    assert main(["compare", "--config", "narrow", "--folds", "--schemes", "attention", "--out-dir",
                 str(tmp_path / "esc10"), f"data.train={folder}", "data.validation_fraction=0.2", "--quiet"]) == 0
    results = json.loads((tmp_path / "esc10" / "results.json").read_text())
    assert results["folds"] == ["1", "2", "3", "4", "5"]
    assert np.sum(results["confusion"]["attention"]["counts"]) == 400  # every clip tested once
