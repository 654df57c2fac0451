"""Sequence necks (``model.neck``: conv, gru, transformer): shapes at any length on every backbone, the frozen-feature
path, their declared reach, chunked tagging of a 60 s file against a whole-file pass, ONNX parity, config errors
and old checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf
import torch

from weaktag.audio import pad_to_segments
from weaktag.checkpoint import load_checkpoint, save_checkpoint
from weaktag.cli import main
from weaktag.config import load_config
from weaktag.errors import ConfigError
from weaktag.inference import Tagger
from weaktag.inference.export import PARITY_FLOOR, export_onnx
from weaktag.models import BackboneConfig, ModelConfig, NeckConfig, WeakTagNet
from weaktag.models.neck import NECK_KINDS, POSITION_KERNEL

CLASSES = ["a", "b", "c"]
#: chunked against whole-file tagging of a GRU neck with its declared context: what a randomly initialised
#: GRU (short memory) meets; a trained one remembers longer and misses it (see weaktag.models.neck)
GRU_CHUNK_TOLERANCE = 1e-3
#: tiny backbones of each kind (aisfx's sizes are fixed by its weights; random ones, not the package's)
BACKBONES = {
    "vggish": BackboneConfig(width=0.125),
    "aisfx": BackboneConfig(backbone="aisfx", freq_pool="mean+max", pretrained=False),
    "mobilenetv2": BackboneConfig(backbone="mobilenetv2", width=0.25, l7_channels=64),
}


def _net(kind: str, backbone: str = "vggish", seed: int = 0, **neck) -> WeakTagNet:
    torch.manual_seed(seed)
    config = NeckConfig(**{"channels": 16, "layers": 2, "kind": kind, "window": 4, **neck})
    return WeakTagNet(ModelConfig(len(CLASSES), True, BACKBONES[backbone], config)).eval()


@pytest.mark.parametrize("backbone", list(BACKBONES))
@pytest.mark.parametrize("kind", NECK_KINDS)
def test_every_neck_gives_one_output_per_segment_at_any_length_and_on_cached_features(kind: str, backbone: str):
    net = _net(kind, backbone)
    grid = net.grid
    rng = np.random.default_rng(0)
    for seconds in (1, 10, 65):
        samples = seconds * grid.sample_rate
        wave = torch.from_numpy(pad_to_segments((rng.standard_normal((2, samples)) * 0.1).astype(np.float32), grid))
        segments = grid.segments_for_samples(samples)
        with torch.no_grad():
            if seconds == 65 and backbone == "aisfx":  # the backbone's own cost; the neck sees the same features
                features = torch.randn(2, net.backbone.out_channels, segments)
            else:
                logmel = net.frontend(wave)
                features = net.backbone(logmel)
                full = net.forward_features(logmel)
                assert full.segment_probs.shape == (2, len(CLASSES), segments)
            # what the frozen-feature cache trains on (forward_level "backbone") is the same network
            cached = net.forward_level(features, "backbone")
        assert features.shape[-1] == segments
        assert net.neck(features).shape == (2, 16, segments)
        assert cached.segment_probs.shape == cached.attention.shape == (2, len(CLASSES), segments)
        assert cached.clip_probs.shape == (2, len(CLASSES)) and torch.isfinite(cached.clip_probs).all()
        if seconds != 65 or backbone != "aisfx":
            torch.testing.assert_close(cached.segment_probs, full.segment_probs, atol=1e-6, rtol=0)


def _reach(net: WeakTagNet, t0: int = 60, length: int = 120) -> int:
    """The largest distance from segment ``t0`` at which changing one input segment changes output ``t0``."""
    torch.manual_seed(1)
    features = torch.randn(1, net.backbone.out_channels, length)
    with torch.no_grad():
        base = net.neck(features)[0, :, t0]
        changed = []
        for distance in range(0, length - t0):
            other = features.clone()
            other[0, :, t0 + distance] += 3.0
            if (net.neck(other)[0, :, t0] - base).abs().max() > 1e-6:
                changed.append(distance)
    return max(changed)


@pytest.mark.parametrize("kind, neck, reach", [
    ("conv", {"kernel": 5}, 2 * (5 // 2)),  # two layers
    ("transformer", {"window": 4}, POSITION_KERNEL // 2 + 2 * 4),
    ("transformer", {"window": 9, "layers": 3}, POSITION_KERNEL // 2 + 3 * 9),
])
def test_a_bounded_necks_declared_context_is_its_exact_reach(kind: str, neck: dict, reach: int):
    net = _net(kind, **neck)
    assert net.config.neck.context_segments == reach == _reach(net)
    # the chunk context follows: the backbone's receptive field plus the neck's reach
    backbone_only = ModelConfig(len(CLASSES), True, BACKBONES["vggish"]).grid
    assert net.grid.context_frames == backbone_only.context_frames + reach * backbone_only.time_stride


@pytest.fixture(scope="module")
def long_file(tmp_path_factory) -> Path:
    """60 s of noise at 16 kHz with louder bursts every 7 s (so that the state of a GRU changes)."""
    wave = (np.random.default_rng(0).standard_normal(16_000 * 60) * 0.1).astype(np.float32)
    for start in range(0, 60, 7):
        wave[start * 16_000 : (start + 2) * 16_000] *= 5
    path = tmp_path_factory.mktemp("necks") / "long.wav"
    sf.write(str(path), wave, 16_000)
    return path


def _max_differences(checkpoint, path: Path, chunk_seconds: float, **settings) -> tuple[float, float]:
    whole = Tagger(checkpoint, chunk_seconds=120.0, detect_events=False).tag(path)
    chunked = Tagger(checkpoint, chunk_seconds=chunk_seconds, detect_events=False, **settings).tag(path)
    assert chunked.segment_probs.shape == whole.segment_probs.shape
    return (float(np.abs(chunked.segment_probs - whole.segment_probs).max()),
            float(np.abs(chunked.clip_probs - whole.clip_probs).max()))


@pytest.mark.parametrize("kind", NECK_KINDS)
def test_chunked_tagging_of_a_60s_file_equals_a_whole_file_pass_within_the_stated_tolerance(
        kind: str, long_file: Path, tmp_path: Path):
    checkpoint = load_checkpoint(save_checkpoint(tmp_path / f"{kind}.pt", _net(kind), CLASSES, "attention", {}))
    # exact for the bounded necks (float32 rounding); a GRU's state beyond its declared context is lost
    tolerance = GRU_CHUNK_TOLERANCE if kind == "gru" else 1e-5
    for chunk_seconds in (2.5, 10.24, 30.72):
        segment_diff, clip_diff = _max_differences(checkpoint, long_file, chunk_seconds)
        assert segment_diff <= tolerance and clip_diff <= tolerance, (chunk_seconds, segment_diff, clip_diff)
    # with one segment of context the chunk edges show: the comparison can fail
    assert max(_max_differences(checkpoint, long_file, 2.5, context_seconds=0.16)) > 10 * tolerance


def test_a_gru_that_remembers_beyond_its_declared_context_misses_the_tolerance(long_file: Path, tmp_path: Path):
    """The GRU's context is declared, not a bound: a GRU whose update gates keep 98% of its state per step
    remembers far beyond 64 segments, and chunked tagging then differs by more than the tolerance."""
    net = _net("gru")
    hidden = net.config.neck.channels // 2
    with torch.no_grad():
        for name, p in net.neck.gru.named_parameters():
            if name.startswith("bias_"):  # (reset | update | new) rows: the update gate's bias, sigmoid(4) = 0.98
                p[hidden : 2 * hidden] = 2.0
    path = save_checkpoint(tmp_path / "slow.pt", net, CLASSES, "attention", {})
    checkpoint = load_checkpoint(path)
    declared = _max_differences(checkpoint, long_file, 10.24)[0]
    assert declared > GRU_CHUNK_TOLERANCE
    # the remedy the docs give: more context per chunk, here through weaktag tag --context-seconds
    whole = Tagger(checkpoint, chunk_seconds=120.0, detect_events=False).tag(long_file)
    out = tmp_path / "segments.npz"
    assert main(["tag", "--checkpoint", str(path), str(long_file), "--chunk-seconds", "10.24",
                 "--context-seconds", "30", "--no-events", "--segments", str(out), "--quiet"]) == 0
    with np.load(out) as saved:
        (key,) = [k for k in saved.files if k.endswith("/segment_probs")]
        wider = float(np.abs(saved[key] - whole.segment_probs).max())
    assert wider < declared / 2, (wider, declared)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_sequence_necks_export_to_onnx_and_match_pytorch_at_any_length(kind: str, tmp_path: Path):
    checkpoint = save_checkpoint(tmp_path / f"{kind}.pt", _net(kind), CLASSES, "attention", {})
    report = export_onnx(checkpoint, tmp_path / f"{kind}.onnx")
    assert report.ok, report.failures
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    model = load_checkpoint(checkpoint).model
    rng = np.random.default_rng(2)
    for batch, seconds in [(1, 1), (2, 10), (1, 65)]:  # the time axis is dynamic: the mask and GRU follow it
        wave = (rng.standard_normal((batch, 16_000 * seconds)) * 0.1).astype(np.float32)
        got = session.run(None, {"waveform": wave})
        with torch.no_grad():
            out = model(torch.from_numpy(wave))
        expected = [out.clip_probs, out.segment_probs, out.attention, out.attention_raw]
        assert [g.shape for g in got] == [tuple(e.shape) for e in expected]
        assert max(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected)) <= PARITY_FLOOR


def test_a_checkpoint_keeps_its_neck_and_one_written_before_sequence_necks_loads_as_conv(tmp_path: Path):
    for kind in ("gru", "transformer"):
        net = _net(kind, heads=2)
        loaded = load_checkpoint(save_checkpoint(tmp_path / f"{kind}.pt", net, CLASSES, "attention", {})).model
        assert loaded.config.neck == net.config.neck and type(loaded.neck) is type(net.neck)
        wave = torch.randn(1, 16_000 * 3) * 0.1
        with torch.no_grad():
            torch.testing.assert_close(loaded(wave).clip_probs, net(wave).clip_probs, atol=0, rtol=0)
    old = ModelConfig.from_dict({"num_classes": 3, "attention": True, "backbone": BACKBONES["vggish"].to_dict(),
                                 "neck": {"channels": 8, "layers": 2, "kernel": 3, "dropout": 0.1}})
    assert old.neck.kind == "conv" and WeakTagNet(old).neck.layers[0].kernel_size == (3,)


@pytest.mark.parametrize("overrides, key, problem", [
    (["model.neck=lstm"], "model.neck", "'lstm' is not allowed; allowed: conv, gru, transformer"),
    (["model.neck=gru", "model.neck_channels=7"], "model.neck_channels", "even number of channels"),
    (["model.neck=gru"], "model.neck_channels", "a gru neck needs channels"),
    (["model.neck=transformer", "model.neck_channels=30"], "model.neck_heads", r"multiple of its heads \(4\)"),
    (["model.neck=transformer", "model.neck_channels=32", "model.neck_heads=0"], "model.neck_heads",
     "below its minimum 1"),
    (["model.neck_channels=8", "model.neck_kernel=4"], "model.neck_kernel", "odd kernel"),
])
def test_bad_neck_settings_are_config_errors_naming_the_file_and_key(tmp_path: Path, overrides, key, problem):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  neck_layers: 2\n")
    with pytest.raises(ConfigError, match=f"^{path}: {key}: .*{problem}") as caught:
        load_config(path, overrides)
    assert caught.value.key == key


def test_neck_keys_build_the_neck_and_its_unused_keys_are_ignored():
    config = load_config(None, ["model.neck=gru", "model.neck_channels=8", "model.neck_kernel=4"]).model
    assert config.neck_config() == NeckConfig(8, 1, 4, 0.0, kind="gru")  # an even kernel is conv's concern only
    config = load_config(None, ["model.neck=transformer", "model.neck_channels=12", "model.neck_heads=3",
                                "model.dropout=0.2"]).model
    assert (config.neck_config().kind, config.neck_config().heads, config.neck_config().dropout) == (
        "transformer", 3, 0.2)
