"""train.feature_cache: a frozen backbone's outputs kept between runs, keyed by its weights and the inputs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from helpers import LEARNABLE_CLASSES, learnable_data, learnable_features
from weaktag.config import load_config
from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet
from weaktag.training import train
from weaktag.models.feature_cache import features_digest
from weaktag.training.run import embed_frozen


def _model(seed: int = 0) -> WeakTagNet:
    torch.manual_seed(seed)
    return WeakTagNet(ModelConfig(len(LEARNABLE_CLASSES), backbone=BackboneConfig(width=0.0625))).eval()


def _count_backbone_calls(model: WeakTagNet) -> list[int]:
    calls = [0]
    model.backbone.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_a_second_embedding_of_the_same_inputs_reads_the_cache(tmp_path: Path) -> None:
    features, model = learnable_features(5, 0), _model()
    fresh = embed_frozen(model, features, batch_size=2)
    first = embed_frozen(model, features, batch_size=2, cache=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 1
    calls = _count_backbone_calls(model)
    lines: list[str] = []
    second = embed_frozen(model, features, batch_size=2, cache=tmp_path, report=lines.append)
    assert calls[0] == 0 and "read from the feature cache" in lines[0]
    assert second.level == "backbone" and torch.equal(second.features, first.features)
    torch.testing.assert_close(first.features, fresh.features)


def test_other_inputs_or_other_weights_are_other_entries() -> None:
    features, model = learnable_features(3, 0), _model(0)
    digest = features_digest(model.backbone, features.features)
    assert digest == features_digest(_model(0).backbone, features.features.clone())
    shifted = features.features.clone()
    shifted[0, 0, 0] += 1e-3
    assert features_digest(model.backbone, shifted) != digest
    assert features_digest(_model(1).backbone, features.features) != digest
    cropped = features.features[:, :-8]  # another crop or time grid: another shape
    assert features_digest(model.backbone, cropped) != digest


def test_an_unreadable_cache_file_is_computed_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    features, model = learnable_features(4, 0), _model()
    first = embed_frozen(model, features, cache=tmp_path)
    (entry,) = tmp_path.glob("*.pt")
    entry.write_bytes(b"torn")
    calls = _count_backbone_calls(model)
    with caplog.at_level(logging.WARNING, logger="weaktag.models.feature_cache"):
        again = embed_frozen(model, features, cache=tmp_path)
    assert calls[0] > 0 and str(entry) in caplog.text
    torch.testing.assert_close(again.features, first.features)
    assert entry.stat().st_size > len(b"torn")  # rewritten whole


def test_train_with_a_feature_cache_gives_the_run_it_gives_without(tmp_path: Path) -> None:
    # a narrow VGGish with every convolution frozen: its outputs are computed once per run, and cached
    base = ["model.width=0.0625", "model.freeze=10", "train.max_epochs=2", "train.batch_size=8", "train.seed=3",
            "train.progress=false", "train.logger=none", "train.accelerator=cpu", "scheme.name=attention"]
    runs, cache = {}, tmp_path / "cache"
    for name, extra in (("plain", []), ("cold", [f"train.feature_cache={cache}"]),
                        ("warm", [f"train.feature_cache={cache}"])):
        config = load_config(None, [*base, *extra, f"output_dir={tmp_path / name}"])
        runs[name] = train(config, data=learnable_data(16, 8)).best_val_map
    assert len(list(cache.glob("*.pt"))) == 2  # train and validation
    assert runs["plain"] == runs["cold"] == runs["warm"]


def test_a_tagger_reads_a_frozen_backbone_s_outputs_from_the_cache(tmp_path: Path) -> None:
    # compare scores every trial's head on the same test recordings over one frozen backbone: the first trial's
    # tagger stores the backbone's outputs, the next reads them, and both give what a tagger without a cache gives
    import numpy as np

    from weaktag.checkpoint import Checkpoint
    from weaktag.inference import Tagger
    from weaktag.postprocess import EventSettings

    model = _model()
    wave = (np.random.default_rng(0).standard_normal(int(25.0 * model.grid.sample_rate)) * 0.1).astype(np.float32)
    checkpoint = Checkpoint(model, list(LEARNABLE_CLASSES), "attention", {}, np.full(len(LEARNABLE_CLASSES), 0.5),
                            EventSettings())
    plain = Tagger(checkpoint, "cpu").tag(wave, name="long")  # 25 s: chunked like a long file
    first = Tagger(checkpoint, "cpu", feature_cache=tmp_path).tag(wave, name="long")
    assert list(tmp_path.glob("*.pt"))
    calls = _count_backbone_calls(model)
    second = Tagger(checkpoint, "cpu", feature_cache=tmp_path).tag(wave, name="long")
    assert calls[0] == 0
    for result in (first, second):
        np.testing.assert_allclose(result.clip_probs, plain.clip_probs, rtol=0, atol=1e-6)
        np.testing.assert_allclose(result.segment_probs, plain.segment_probs, rtol=0, atol=1e-6)
    # another head over the same backbone weights (another trial) reads the same entries
    other = Checkpoint(_model(), list(LEARNABLE_CLASSES), "attention", {}, np.full(len(LEARNABLE_CLASSES), 0.5),
                            EventSettings())
    torch.manual_seed(5)
    for p in other.model.head.parameters():
        p.data.normal_()
    entries = len(list(tmp_path.glob("*.pt")))
    calls_other = _count_backbone_calls(other.model)
    Tagger(other, "cpu", feature_cache=tmp_path).tag(wave, name="long")
    assert calls_other[0] == 0 and len(list(tmp_path.glob("*.pt"))) == entries
