"""A backbone with its own front end and time grid is a config choice, not a fork.

A small test backbone declares an 8 kHz, 32-band front end and one output segment per 8 frames
(0.08 s); features, strong-label matrices, chunked tagging, checkpoints and ONNX export must all
follow that declaration instead of VGGish's constants.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from weaktag.checkpoint import load_checkpoint, save_checkpoint
from weaktag.config import load_config
from weaktag.data import build_feature_set
from weaktag.geometry import VGGISH_GRID, FrontEndSpec, TimeGrid
from weaktag.inference import Tagger
from weaktag.inference.export import export_onnx
from weaktag.labels import Clip, Event, Manifest
from weaktag.models import BACKBONES, BackboneConfig, ModelConfig, WeakTagNet

TINY_GRID = TimeGrid(FrontEndSpec(sample_rate=8000, window=200, hop=80, n_fft=256, n_mels=32, f_min=50.0,
                                  f_max=3800.0), time_stride=8, context_frames=9)
CLASSES = ["a", "b"]


class TinyBackbone(nn.Module):
    """A 3-frame convolution over 32 bands, then average pooling of 8 frames: 0.08 s segments."""

    grid = TINY_GRID

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        self.out_channels = 8
        self.conv = nn.Conv1d(TINY_GRID.frontend.n_mels, self.out_channels, kernel_size=3, padding=1)

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(logmel.transpose(1, 2)))  # (B, 8, frames)
        return nn.functional.avg_pool1d(x, TINY_GRID.time_stride)


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(BACKBONES, "tiny", TinyBackbone)
    torch.manual_seed(0)
    return WeakTagNet(ModelConfig(len(CLASSES), True, BackboneConfig(backbone="tiny"))).eval()


def test_the_network_takes_its_backbones_front_end_and_grid(tiny):
    assert tiny.grid == TINY_GRID and tiny.config.grid == TINY_GRID
    assert tiny.frontend.spec.sample_rate == 8000 and tiny.frontend.mel.shape == (129, 32)
    out = tiny(torch.randn(2, 8000))  # 1 s at 8 kHz: 1 + (8000 - 200) // 80 = 98 frames -> 12 segments
    assert out.segment_probs.shape == (2, 2, 12) == (2, 2, TINY_GRID.num_segments(TINY_GRID.num_frames(8000)))
    assert TINY_GRID.segments_for_samples(8000) == 13  # padded to whole segments, the end is scored too
    assert TINY_GRID.segment_seconds == pytest.approx(0.08) and VGGISH_GRID.segment_seconds == pytest.approx(0.16)


def test_config_choice_features_and_labels_follow_the_grid(tiny, tmp_path: Path):
    cfg = load_config(None, ["model.backbone=tiny"])
    assert cfg.model.backbone_config().backbone == "tiny"
    clips = []
    for i in range(2):
        path = tmp_path / f"c{i}.wav"
        sf.write(str(path), np.random.default_rng(i).standard_normal(16000 * 2).astype(np.float32) * 0.1, 16000)
        clips.append(Clip(f"c{i}", path, frozenset({"a"}), (Event("a", 0.5, 0.66),), 2.0))
    features = build_feature_set(Manifest(clips, CLASSES), CLASSES, grid=TINY_GRID, clip_seconds=2.0)
    # 2 s resampled to 8 kHz, zero-padded to whole segments: 25 segments of 8 frames (200 frames)
    assert features.features.shape == (2, 200, 32) == (2, 8 * TINY_GRID.segments_for_samples(16000), 32)
    batch = features.collate([0, 1])
    assert batch.strong.shape == (2, 2, 25)
    # the event 0.5-0.66 s covers segments [0.48, 0.56), [0.56, 0.64), [0.64, 0.72) of 0.08 s
    assert batch.strong[0, 0].nonzero().flatten().tolist() == [6, 7, 8]


def test_chunked_tagging_checkpoints_and_onnx_follow_the_grid(tiny, tmp_path: Path):
    ckpt = save_checkpoint(tmp_path / "tiny.pt", tiny, CLASSES, "attention", {})
    loaded = load_checkpoint(ckpt)
    assert loaded.model.grid == TINY_GRID
    path = tmp_path / "long.wav"
    sf.write(str(path), np.random.default_rng(3).standard_normal(16000 * 13).astype(np.float32) * 0.1, 16000)
    whole = Tagger(loaded, chunk_seconds=60.0).tag(path)
    chunked = Tagger(loaded, chunk_seconds=0.4).tag(path)  # 5 segments of 0.08 s per chunk
    assert whole.segment_seconds == pytest.approx(0.08) and whole.duration == pytest.approx(13.0)
    assert whole.num_segments == chunked.num_segments == TINY_GRID.segments_for_samples(8000 * 13)
    np.testing.assert_allclose(chunked.segment_probs, whole.segment_probs, atol=1e-5, rtol=0)
    report = export_onnx(loaded, tmp_path / "tiny.onnx")
    assert report.ok, report.max_abs_diff
    onnx_result = Tagger.from_checkpoint(tmp_path / "tiny.onnx").tag(path)
    np.testing.assert_allclose(onnx_result.clip_probs, whole.clip_probs, atol=1e-4, rtol=0)


def test_a_frozen_backbone_is_computed_once_and_gives_the_same_predictions(tmp_path: Path):
    from weaktag.config import config_from_dict
    from weaktag.supervision import make_scheme
    from weaktag.synth import SynthConfig, synthesize_splits
    from weaktag.training import build_model, predict_features, prepare_data, train
    from weaktag.training.run import _cacheable, embed_frozen

    splits = {"train": 16, "validation": 8, "test": 8}
    synthesize_splits(tmp_path / "data", splits, SynthConfig(seed=4))
    values = {"data": {s: str(tmp_path / "data" / s / "manifest.jsonl") for s in splits},
              "model": {"width": 0.0625, "l7_channels": 64, "freeze": 7},  # 6 VGGish convs + L7: all frozen
              "scheme": {"name": "attention"},
              "train": {"lr": 1e-3, "batch_size": 8, "max_epochs": 1, "seed": 0, "progress": False,
                        "logger": "none", "accelerator": "cpu"},
              "output_dir": str(tmp_path / "run")}
    config = config_from_dict(values)
    data = prepare_data(config)
    model = build_model(config, len(data.classes), make_scheme("attention")).eval()
    assert _cacheable(config, model)
    assert not _cacheable(config_from_dict({**values, "augment": {"time_masks": 1, "time_mask_frames": 5}}), model)
    embedded = embed_frozen(model, data.validation)
    assert embedded.level == "backbone" and embedded.features.shape == (8, model.backbone.out_channels, 63)
    assert embedded.collate([0, 1]).strong.shape == (2, len(data.classes), 63)
    direct, cached = predict_features(model, data.validation), predict_features(model, embedded)
    np.testing.assert_allclose(cached.clip_probs, direct.clip_probs, atol=1e-6, rtol=0)
    np.testing.assert_allclose(cached.segment_probs, direct.segment_probs, atol=1e-6, rtol=0)
    result = train(config, data=data)  # trains on cached features; the checkpoint holds the whole network
    reloaded = load_checkpoint(result.checkpoint)
    again = predict_features(reloaded.model, data.test)
    np.testing.assert_allclose(again.clip_probs, result.test.predictions.clip_probs, atol=1e-6, rtol=0)


def test_a_neck_widens_the_context_and_chunked_tagging_still_equals_a_whole_pass(monkeypatch, tmp_path: Path):
    from weaktag.models import NeckConfig

    monkeypatch.setitem(BACKBONES, "tiny", TinyBackbone)
    torch.manual_seed(0)
    config = ModelConfig(len(CLASSES), True, BackboneConfig(backbone="tiny"), NeckConfig(6, layers=2, kernel=5))
    net = WeakTagNet(config).eval()
    # two 5-segment layers reach 4 segments (of 8 frames) beyond each side
    assert net.grid.context_frames == TINY_GRID.context_frames + 4 * TINY_GRID.time_stride
    assert net.neck.out_channels == 6 and net.head.segment.in_channels == 6
    loaded = load_checkpoint(save_checkpoint(tmp_path / "neck.pt", net, CLASSES, "attention", {}))
    assert loaded.model.config.neck == config.neck
    path = tmp_path / "long.wav"
    sf.write(str(path), np.random.default_rng(4).standard_normal(16000 * 7).astype(np.float32) * 0.1, 16000)
    whole = Tagger(loaded, chunk_seconds=60.0).tag(path)
    chunked = Tagger(loaded, chunk_seconds=0.4).tag(path)
    np.testing.assert_allclose(chunked.segment_probs, whole.segment_probs, atol=1e-5, rtol=0)
    # the same model without the extra context differs at chunk edges: the test can fail
    assert not np.allclose(chunked.segment_probs, Tagger(loaded, chunk_seconds=0.4, context_seconds=0.08)
                           .tag(path).segment_probs, atol=1e-5)


def test_mobilenetv2_student_backbone_follows_vggish_grid_chunks_and_exports(tmp_path: Path):
    from weaktag.models.mobilenet import MOBILENET_GRID

    torch.manual_seed(0)
    config = ModelConfig(len(CLASSES), True, BackboneConfig(backbone="mobilenetv2", width=0.25, l7_channels=64))
    net = WeakTagNet(config).eval()
    assert net.grid.frontend == MOBILENET_GRID.frontend and net.grid.time_stride == 16
    for frames in (998, 192, 40, 16):  # one segment per 16 frames, as VGGish
        assert net.forward_features(torch.randn(2, frames, 64)).segment_probs.shape == (2, len(CLASSES), frames // 16)
    loaded = load_checkpoint(save_checkpoint(tmp_path / "mnv2.pt", net, CLASSES, "psl", {}))
    path = tmp_path / "long.wav"
    sf.write(str(path), np.random.default_rng(5).standard_normal(16000 * 12).astype(np.float32) * 0.1, 16000)
    whole = Tagger(loaded, chunk_seconds=60.0).tag(path)
    chunked = Tagger(loaded, chunk_seconds=3.2).tag(path)
    np.testing.assert_allclose(chunked.segment_probs, whole.segment_probs, atol=1e-5, rtol=0)
    report = export_onnx(loaded, tmp_path / "mnv2.onnx")
    assert report.ok, report.max_abs_diff
