"""Characterisation: a fixed tiny training run gives the metrics it gave before the restructuring.

The expected figures were produced by the code as it stood before the refactoring into
inference/, metrics/, training/ and experiments/ (commit c3dc54e), with the run below; the
restructuring must not change what the same seeds produce. The tolerance allows for float
reductions on another CPU, not for a changed recipe: on this machine two runs agree exactly.
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
        "val_map": 0.500115489708746,
        "test_map": 0.3731613465428702,
        "tag_thresholds": [
            0.489918,
            0.423205,
            0.373531,
            0.598617,
            0.471497,
            0.559267,
            0.629397
        ],
        "event_thresholds": [
            0.901414,
            0.193646,
            0.168424,
            0.775271,
            0.504985,
            0.590974,
            0.801063
        ],
        "events": {
            "psds1": 0.0,
            "psds2": 0.0,
            "segment_f1_micro": 0.17821782178217824,
            "segment_f1_macro": 0.23713204549448988,
            "event_f1_micro": 0.0743801652892562,
            "event_f1_macro": 0.09709826514337792
        }
    },
    "pool-weak-strong": {
        "best_epoch": 0,
        "val_map": 0.5864437746192819,
        "test_map": 0.44391477627057785,
        "tag_thresholds": [
            0.557864,
            0.465029,
            0.436498,
            0.544925,
            0.488512,
            0.555182,
            0.632245
        ],
        "event_thresholds": [
            0.855926,
            0.503145,
            0.489425,
            0.592809,
            0.495878,
            0.615063,
            0.690957
        ],
        "events": {
            "psds1": 0.0,
            "psds2": 0.0,
            "segment_f1_micro": 0.3220338983050847,
            "segment_f1_macro": 0.2462572676274037,
            "event_f1_micro": 0.03305785123966942,
            "event_f1_macro": 0.025887111601397315
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
