"""Characterisation: a fixed tiny training run gives the metrics it gave before the restructuring.

The expected figures were produced by the code as it stood before the refactoring into
inference/, metrics/, training/ and experiments/ (commit c3dc54e), with the run below; the
restructuring must not change what the same seeds produce. The tolerance allows for float
reductions on another CPU, not for a changed recipe: on this machine two runs agree exactly.

Re-recorded on 2026-12-01 in a fresh environment (lightning 2.6.6, numpy 2.4.6, scikit-learn
1.9.1, scipy 1.17.1, torch 2.13.0+cpu): there the code of the commit before the re-recording
(7a93522) and the code after it give the same figures, which differ from the first recording
(validation mAP 0.5004 vs 0.5001): the dependencies changed, not weaktag.

Re-recorded on 2026-12-02, on purpose: training batches now come from weaktag's own sampler
(weaktag.training.sampling: one seeded order per epoch, the same on 1 or N processes and after a
resume) instead of the DataLoader's shuffle, so the same seed draws another order. Two runs of the
new code agree exactly.
"""

from __future__ import annotations

import pytest

from weaktag.checkpoint import load_checkpoint
from weaktag.config import config_from_dict
from weaktag.synth import SynthConfig, synthesize_splits
from weaktag.training import train

EXPECTED = {
    "attention-self": {
        "best_epoch": 1,  # 1-based since issue 19 (was 0)
        "val_map": 0.5224142764338362,
        "test_map": 0.46960517755095904,
        "tag_thresholds": [
            0.644766,
            0.432674,
            0.404602,
            0.567475,
            0.487424,
            0.49531,
            0.595853
        ],
        "event_thresholds": [
            0.917776,
            0.299231,
            0.256195,
            0.631023,
            0.521991,
            0.579165,
            0.697202
        ],
        "events": {
            "psds1": 0.0,
            "psds2": 0.0,
            "segment_f1_micro": 0.17992177314211213,
            "segment_f1_macro": 0.21860202812775104,
            "event_f1_micro": 0.0547945205479452,
            "event_f1_macro": 0.04671857619577308
        }
    },
    "pool-weak-strong": {
        "best_epoch": 1,  # 1-based since issue 19 (was 0)
        "val_map": 0.6256734549054201,
        "test_map": 0.45890251224054085,
        "tag_thresholds": [
            0.6174,
            0.475248,
            0.43337,
            0.527086,
            0.476942,
            0.534829,
            0.595335
        ],
        "event_thresholds": [
            0.838222,
            0.521538,
            0.465698,
            0.582653,
            0.458387,
            0.588897,
            0.656762
        ],
        "events": {
            "psds1": 0.0,
            "psds2": 0.0,
            "segment_f1_micro": 0.2938388625592417,
            "segment_f1_macro": 0.24585357138018812,
            "event_f1_micro": 0.06530612244897958,
            "event_f1_macro": 0.06174286418188857
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
