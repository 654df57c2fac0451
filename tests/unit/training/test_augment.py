"""Augmentation on hand-made batches: mask widths, mixup labels, shifts that keep strong labels aligned, gain."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from weaktag.audio import LogMel
from weaktag.config import AugmentConfig, load_config
from weaktag.errors import ConfigError
from weaktag.batch import Batch
from weaktag.geometry import VGGISH_FRONTEND, VGGISH_GRID
from weaktag.models.aisfx import AISFX_FRONTEND
from weaktag.training.augment import Augmenter, apply_gain, mask, mixup, time_shift

SILENCE = math.log(0.01)


def _batch(n: int = 4, frames: int = 160, bands: int = 64, classes: int = 3) -> Batch:
    g = torch.Generator().manual_seed(0)
    features = torch.randn(n, frames, bands, generator=g)
    weak = torch.zeros(n, classes)
    strong = torch.zeros(n, classes, frames // 16)
    for i in range(n):
        weak[i, i % classes] = 1.0
        strong[i, i % classes, i + 1] = 1.0
    return Batch(features, weak, strong, torch.tensor([True, True, False, True][:n]), [f"c{i}" for i in range(n)])


def test_masks_have_the_drawn_widths_and_the_silence_value():
    batch = _batch()
    starts, widths = torch.tensor([[10, 50], [0, 0], [100, 5], [0, 150]]), torch.tensor([[3, 0], [7, 2], [1, 4], [5, 10]])
    out = mask(batch.features, starts, widths, 1, SILENCE)
    for i in range(4):
        masked = (out[i] == SILENCE).all(dim=1)
        expected = torch.zeros(160, dtype=torch.bool)
        for s, w in zip(starts[i].tolist(), widths[i].tolist()):
            expected[s : s + w] = True
        assert torch.equal(masked, expected), i
        assert torch.equal(out[i][~expected], batch.features[i][~expected])
    freq = mask(batch.features, torch.tensor([[60]] * 4), torch.tensor([[4]] * 4), 2, SILENCE)
    assert (freq[:, :, 60:64] == SILENCE).all() and torch.equal(freq[:, :, :60], batch.features[:, :, :60])


def test_random_masks_stay_within_their_limits():
    torch.manual_seed(1)
    augment = Augmenter(AugmentConfig(time_masks=2, time_mask_frames=20, freq_masks=1, freq_mask_bins=8), VGGISH_GRID)
    batch = _batch()
    for _ in range(20):
        out = augment(batch)
        frames_masked = (out.features == SILENCE).all(dim=2).sum(dim=1)
        bands_masked = (out.features == SILENCE).all(dim=1).sum(dim=1)
        assert int(frames_masked.max()) <= 2 * 20 and int(bands_masked.max()) <= 8
        assert torch.equal(out.weak, batch.weak) and torch.equal(out.strong, batch.strong)  # labels unchanged


def test_mixup_mixes_features_and_takes_the_union_of_labels():
    batch = _batch()
    lam, partner = torch.tensor([0.7, 0.6, 0.9, 0.5]), torch.tensor([1, 0, 3, 2])
    out = mixup(batch, lam, partner)
    assert torch.allclose(out.features[0], 0.7 * batch.features[0] + 0.3 * batch.features[1])
    assert out.weak[0].tolist() == [1.0, 1.0, 0.0]  # clip 0 has class 0, clip 1 class 1: both
    assert torch.equal(out.strong[0], torch.maximum(batch.strong[0], batch.strong[1]))
    # clip 2 has no strong labels, so neither mix that involves it keeps any
    assert out.has_strong.tolist() == [True, True, False, False]
    assert float(out.strong[3].sum()) == 0.0


def test_time_shift_keeps_strong_labels_aligned_with_the_sound():
    features = torch.zeros(1, 160, 64)
    features[0, 32:48, :] = 5.0  # a sound in segment 2 (frames 32-47)
    strong = torch.zeros(1, 1, 10)
    strong[0, 0, 2] = 1.0
    batch = Batch(features, torch.ones(1, 1), strong, torch.tensor([True]))
    for k in (-5, -2, 0, 3, 7):
        out = time_shift(batch, torch.tensor([k]), VGGISH_GRID)
        loud = (out.features[0] == 5.0).all(dim=1).nonzero().flatten()
        segment = int(out.strong[0, 0].nonzero().flatten())
        assert segment == (2 + k) % 10
        assert loud.tolist() == list(range(16 * segment, 16 * segment + 16)), k


@pytest.mark.parametrize("spec", [VGGISH_FRONTEND, AISFX_FRONTEND], ids=["vggish", "aisfx"])
def test_gain_in_the_feature_domain_equals_gain_on_the_audio(spec):
    torch.manual_seed(0)
    frontend = LogMel(spec)
    audio = torch.randn(2, spec.sample_rate) * 0.05
    gain = torch.tensor([6.0, -9.0])
    louder = frontend(audio * (10 ** (gain / 20)).view(-1, 1))
    assert torch.allclose(apply_gain(frontend(audio), gain, spec), louder, atol=2e-3)


def test_augmentation_is_off_by_default_and_validated():
    assert not Augmenter(load_config(None, []).augment, VGGISH_GRID).enabled
    assert Augmenter(load_config(None, ["augment.mixup_alpha=0.4"]).augment, VGGISH_GRID).enabled
    with pytest.raises(ConfigError, match="augment.mixup_prob: 1.5 is above its maximum 1.0"):
        load_config(None, ["augment.mixup_prob=1.5"])


def test_training_with_every_augmentation_runs_and_changes_the_result(tmp_path):
    from weaktag.config import config_from_dict
    from weaktag.synth import SynthConfig, synthesize_splits
    from weaktag.training import prepare_data, train

    splits = {"train": 24, "validation": 12, "test": 12}
    synthesize_splits(tmp_path / "data", splits, SynthConfig(seed=2))

    runs = itertools.count()

    def run(augment: dict) -> float:
        config = config_from_dict({
            "data": {s: str(tmp_path / "data" / s / "manifest.jsonl") for s in splits},
            "model": {"width": 0.0625, "l7_channels": 64, "batch_norm": True},
            "scheme": {"name": "attention-strong"}, "augment": augment,
            "train": {"lr": 1e-3, "batch_size": 8, "max_epochs": 2, "seed": 0, "progress": False, "logger": "none",
                      "accelerator": "cpu"},
            "output_dir": str(tmp_path / "run" / str(next(runs)))})  # a folder per run: train refuses an old run's
        result = train(config, data=data)
        return float(result.best_val_map)

    data = prepare_data(config_from_dict({"data": {s: str(tmp_path / "data" / s / "manifest.jsonl") for s in splits}}))
    plain = run({})
    augmented = run({"gain_db": 6, "shift_seconds": 1.0, "mixup_alpha": 0.4, "time_masks": 2,
                     "time_mask_frames": 40, "freq_masks": 2, "freq_mask_bins": 8})
    assert math.isfinite(augmented) and augmented != plain
    assert plain == run({})  # and the same seed without augmentation repeats exactly
