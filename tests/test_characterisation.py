"""Characterisation: a fixed tiny training run gives the metrics it gave before the restructuring.

The expected figures were produced by the code as it stood before the refactoring into
inference/, metrics/, training/ and experiments/ (commit c3dc54e), with the run below; the
restructuring must not change what the same seeds produce. The tolerance allows for float
reductions on another CPU, not for a changed recipe: on this machine two runs agree exactly.

Re-recorded on 2026-12-01 in a fresh environment (lightning 2.6.6, numpy 2.4.6, scikit-learn
1.9.1, scipy 1.17.1, torch 2.13.0+cpu): there the code of the commit before the re-recording
(7a93522) and the code after it give the same figures, which differ from the first recording
(validation mAP 0.5004 vs 0.5001): the dependencies changed, not weaktag.
"""

from __future__ import annotations

import pytest

from weaktag.checkpoint import load_checkpoint
from weaktag.config import config_from_dict
from weaktag.synth import SynthConfig, synthesize_splits
from weaktag.training import train

EXPECTED = {
    "attention-self": {
        "best_epoch": 1,
        "val_map": 0.5003692403318023,
        "test_map": 0.37164490663357314,
        "tag_thresholds": [
            0.489006,
            0.422838,
            0.37304,
            0.600968,
            0.472591,
            0.559676,
            0.629981
        ],
        "event_thresholds": [
            0.938904,
            0.192014,
            0.164218,
            0.783823,
            0.506196,
            0.592285,
            0.80561
        ],
        "events": {
            "psds1": 0.0,
            "psds2": 0.0,
            "segment_f1_micro": 0.18113207547169813,
            "segment_f1_macro": 0.24419947043003493,
            "event_f1_micro": 0.06694560669456066,
            "event_f1_macro": 0.08519995641277107
        }
    },
    "pool-weak-strong": {
        "best_epoch": 0,
        "val_map": 0.58413749857351,
        "test_map": 0.4434865077971966,
        "tag_thresholds": [
            0.55855,
            0.4663,
            0.436594,
            0.550378,
            0.488601,
            0.55546,
            0.633608
        ],
        "event_thresholds": [
            0.856854,
            0.505691,
            0.489504,
            0.592163,
            0.495866,
            0.613837,
            0.69172
        ],
        "events": {
            "psds1": 0.0,
            "psds2": 0.0,
            "segment_f1_micro": 0.32584269662921345,
            "segment_f1_macro": 0.24923630291157695,
            "event_f1_micro": 0.03347280334728033,
            "event_f1_macro": 0.025967143614202437
        }
    }
}


SPLITS = {"train": 48, "validation": 24, "test": 24}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("characterisation")
    synthesize_splits(tmp / "data", SPLITS, SynthConfig(seed=11))
    return tmp


@pytest.mark.parametrize("scheme", sorted(EXPECTED))
def test_fixed_tiny_run_gives_the_recorded_metrics(data, scheme):
    config = config_from_dict({
        "data": {s: str(data / "data" / s / "manifest.jsonl") for s in SPLITS},
        "model": {"width": 0.0625, "batch_norm": True, "l7_channels": 256},
        "scheme": {"name": scheme},
        "train": {"lr": 1e-3, "batch_size": 8, "max_epochs": 2, "seed": 5, "progress": False,
                  "accelerator": "cpu", "logger": "none"},
        "output_dir": str(data / "run" / scheme),
    })
    result = train(config)
    checkpoint = load_checkpoint(result.checkpoint)
    expected = EXPECTED[scheme]
    assert result.best_epoch == expected["best_epoch"]
    assert result.best_val_map == pytest.approx(expected["val_map"], abs=1e-4)
    assert result.test_map == pytest.approx(expected["test_map"], abs=1e-4)
    assert list(checkpoint.tag_thresholds) == pytest.approx(expected["tag_thresholds"], abs=1e-3)
    assert list(checkpoint.events.thresholds) == pytest.approx(expected["event_thresholds"], abs=1e-3)
    events = checkpoint.metrics["test"]["events"]
    for name, value in expected["events"].items():
        assert events[name] == pytest.approx(value, abs=1e-4), name
