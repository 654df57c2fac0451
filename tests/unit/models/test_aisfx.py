"""The pretrained aisfx backbone: packaged weights, its front end and grid, freezing, chunked tagging."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from weaktag.checkpoint import load_checkpoint, save_checkpoint
from weaktag.config import load_config
from weaktag.inference import Tagger
from weaktag.models import AISFX_GRID, BackboneConfig, ModelConfig, WeakTagNet
from weaktag.models.aisfx import load_aisfx_state

pytestmark = pytest.mark.skipif(importlib.util.find_spec("aisfx") is None,
                                reason="the aisfx package is not installed (pip install --no-deps aisfx==0.1.2)")
SR = 44_100


@pytest.fixture(scope="module")
def model() -> WeakTagNet:
    torch.manual_seed(0)
    return WeakTagNet(ModelConfig(3, True, BackboneConfig(backbone="aisfx"))).eval()


def test_packaged_weights_load_into_the_backbone(model):
    state = load_aisfx_state()
    assert len([k for k in state if k.endswith("conv1.weight")]) == 4
    blocks = model.backbone.blocks
    assert [b.conv2.weight.shape[0] for b in blocks] == [64, 128, 256, 512]
    assert torch.equal(blocks[0].conv1.weight, state["conv_block1.conv1.weight"])
    assert torch.equal(blocks[3].bn2.running_var, state["conv_block4.bn2.running_var"])
    untrained = WeakTagNet(ModelConfig(3, True, BackboneConfig(backbone="aisfx", pretrained=False)))
    assert not torch.equal(untrained.backbone.blocks[0].conv1.weight, state["conv_block1.conv1.weight"])


@pytest.mark.parametrize("seconds", [1.0, 10.0, 65.0])
def test_output_length_follows_the_grid(model, seconds):
    samples = int(seconds * SR)
    frames = 1 + (samples - 2048) // 1024
    with torch.no_grad():
        out = model(torch.randn(1, samples) * 0.1)
    assert out.segment_probs.shape == (1, 3, frames // 8) == (1, 3, AISFX_GRID.num_segments(frames))
    assert AISFX_GRID.segment_seconds == pytest.approx(8 * 1024 / 44_100)


def test_front_end_is_the_packages(model):
    spec = model.frontend.spec
    assert (spec.sample_rate, spec.window, spec.hop, spec.n_mels, spec.f_max) == (44_100, 2048, 1024, 96, 22_050.0)
    assert torch.allclose(model.frontend.mel.sum(dim=0), torch.ones(96))  # unit-sum bands
    silence = model.frontend(torch.zeros(1, SR))
    assert torch.all(silence == 0)  # log10(1 + 0) / 9.46
    tone = 0.5 * torch.sin(2 * torch.pi * 1000 * torch.arange(SR) / SR)
    features = model.frontend(tone[None])[0]
    # inside the package's 0..1 min-max range for a half-scale tone, peaking in the band holding 1 kHz
    assert 0.0 <= float(features.min()) and float(features.max()) < 1.2
    hz = 700 * (np.exp(np.linspace(0, 1127 * np.log1p(22_050 / 700), 98) / 1127) - 1)  # HTK band edges
    peak = int(features.mean(0).argmax())
    assert hz[peak] <= 1000 <= hz[peak + 2]


def test_frozen_blocks_and_their_batch_norm_stay_unchanged(tmp_path):
    cfg = load_config(None, ["model.backbone=aisfx", "model.freeze=4", "scheme.name=attention"])
    from weaktag.supervision import make_scheme
    from weaktag.training import build_model

    net = build_model(cfg, 3, make_scheme("attention"))
    before = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    head_before = net.head.segment.weight.clone()
    net.train()
    assert not net.backbone.blocks[0].bn1.training  # frozen batch norm keeps its statistics
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    logmel = net.frontend(torch.randn(2, 2 * SR) * 0.1)
    out = net.forward_features(logmel)
    torch.nn.functional.binary_cross_entropy(out.clip_probs, torch.tensor([[1.0, 0, 0], [0, 1, 0]])).backward()
    opt.step()
    for k, v in net.backbone.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not torch.equal(net.head.segment.weight, head_before)


@pytest.fixture(scope="module")
def frozen_runs(tmp_path_factory) -> dict:
    """One epoch of the same tiny frozen-aisfx run, through Lightning's fit: on cached backbone outputs, on
    log-mel (train.cache_frozen_features=false, the path of every run with a log-mel augmentation), and
    with only the first three blocks frozen (block 4 fine-tuned, as recommended-gpu fine-tunes 2-4)."""
    from weaktag.synth import SynthConfig, synthesize_splits
    from weaktag.training import prepare_data, train

    tmp = tmp_path_factory.mktemp("frozen_runs")
    splits = {"train": 4, "validation": 4, "test": 2}
    synthesize_splits(tmp / "data", splits, SynthConfig(seed=5, clip_seconds=1.0))
    base = [f"data.{s}={tmp / 'data' / s / 'manifest.jsonl'}" for s in splits] + [
        "model.backbone=aisfx", "model.freeze=4", "model.neck_channels=16", "scheme.name=attention",
        "train.lr=0.003", "train.batch_size=2", "train.max_epochs=1", "train.seed=0", "train.progress=false",
        "train.logger=none", "train.accelerator=cpu", "train.event_output=segment"]
    data = prepare_data(load_config(None, base))
    runs = {"cached": [], "uncached": ["train.cache_frozen_features=false"], "partly frozen": ["model.freeze=3"]}
    return {name: train(load_config(None, [*base, *extra, f"output_dir={tmp / name.replace(' ', '_')}"]), data=data)
            for name, extra in runs.items()}


@pytest.mark.parametrize("run", ["cached", "uncached"])
def test_lightning_training_keeps_a_frozen_backbones_batch_norm_statistics(model, frozen_runs, run):
    pretrained = model.backbone.state_dict()
    trained = frozen_runs[run].model.backbone.state_dict()
    stats = [k for k in pretrained if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert len(stats) == 3 * 8  # two batch norms in each of the 4 blocks
    for key in stats:
        assert torch.equal(trained[key], pretrained[key]), key


def test_only_the_frozen_blocks_keep_their_statistics_when_the_backbone_is_partly_frozen(model, frozen_runs):
    pretrained = model.backbone.state_dict()
    trained = frozen_runs["partly frozen"].model.backbone.state_dict()
    for key in pretrained:
        if key.startswith(("blocks.0.", "blocks.1.", "blocks.2.")):
            assert torch.equal(trained[key], pretrained[key]), key
    # the fine-tuned block's batch norm trains on batch statistics, so its running statistics move
    assert not torch.equal(trained["blocks.3.bn1.running_mean"], pretrained["blocks.3.bn1.running_mean"])
    assert int(trained["blocks.3.bn1.num_batches_tracked"]) > int(pretrained["blocks.3.bn1.num_batches_tracked"])


def test_cached_and_uncached_frozen_runs_learn_the_same_model(frozen_runs):
    cached, uncached = frozen_runs["cached"], frozen_runs["uncached"]
    assert cached.test_map is not None
    assert uncached.best_val_map == pytest.approx(cached.best_val_map, abs=1e-5)
    assert uncached.test_map == pytest.approx(cached.test_map, abs=1e-5)
    np.testing.assert_allclose(uncached.test.predictions.clip_probs, cached.test.predictions.clip_probs,
                               atol=1e-4, rtol=0)
    for (name, a), b in zip(cached.model.state_dict().items(), uncached.model.state_dict().values()):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4, msg=name)


def test_chunked_tagging_and_checkpoint_round_trip(model, tmp_path: Path):
    path = tmp_path / "x.wav"
    sf.write(str(path), (np.random.default_rng(0).standard_normal(int(8.3 * SR)) * 0.1).astype(np.float32), SR)
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "m.pt", model, ["a", "b", "c"], "attention", {}))
    whole = Tagger(ckpt, chunk_seconds=60.0).tag(path)
    chunked = Tagger(ckpt, chunk_seconds=1.5).tag(path)
    assert whole.num_segments == chunked.num_segments == AISFX_GRID.segments_for_samples(int(8.3 * SR))
    np.testing.assert_allclose(chunked.segment_probs, whole.segment_probs, atol=1e-5, rtol=0)


def test_compare_computes_a_packaged_frozen_backbone_once_for_every_trial(tmp_path, monkeypatch):
    import weaktag.experiments.compare as compare_mod
    import weaktag.experiments.figures as figures_mod
    from weaktag.config import config_from_dict
    from weaktag.synth import SynthConfig, synthesize_splits

    splits = {"train": 12, "validation": 8, "test": 8}
    synthesize_splits(tmp_path / "data", splits, SynthConfig(seed=5, clip_seconds=3.0))
    config = config_from_dict({
        "data": {s: str(tmp_path / "data" / s / "manifest.jsonl") for s in splits},
        "model": {"backbone": "aisfx", "freeze": 4}, "scheme": {"name": "attention"},
        "train": {"lr": 1e-3, "batch_size": 4, "max_epochs": 2, "seed": 0, "progress": False, "logger": "none",
                  "accelerator": "cpu", "event_output": "auto"}})
    calls = []
    real = compare_mod.embed_prepared
    monkeypatch.setattr(compare_mod, "embed_prepared", lambda *a, **k: calls.append(1) or real(*a, **k))
    hops = []
    real_plot = figures_mod.plot_attention
    monkeypatch.setattr(figures_mod, "plot_attention",
                        lambda *a, **k: hops.append(k.get("hop_seconds")) or real_plot(*a, **k))
    result = compare_mod.run_compare(config, compare_mod.CompareConfig(["attention", "attention-self"], 2),
                                     tmp_path / "out", log=None)
    assert len(calls) == 1 and len(result.ran) == 4
    assert hops == [pytest.approx(1024 / SR)]  # Fig. 5's log-mel on aisfx's own frame hop, not VGGish's 10 ms
    # Fig. 5 still draws log-mel (the embedded features never reach the figures)
    assert result.results.attention_figure["schemes"] == ["attention", "attention-self"]
    assert (tmp_path / "out" / result.results.attention_figure["figure"]).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("stride, freq_pool", [(4, "mean+max"), (2, "max")])
def test_finer_time_strides_and_frequency_pools(stride, freq_pool, tmp_path: Path):
    from weaktag.models import NeckConfig

    torch.manual_seed(0)
    config = ModelConfig(3, True, BackboneConfig(backbone="aisfx", time_stride=stride, freq_pool=freq_pool),
                         NeckConfig(16))
    net = WeakTagNet(config).eval()
    assert net.backbone.out_channels == (1024 if freq_pool == "mean+max" else 512)
    assert net.grid.segment_seconds == pytest.approx(stride * 1024 / SR)
    samples = int(6.1 * SR)
    with torch.no_grad():
        out = net(torch.randn(1, samples) * 0.1)
    frames = net.grid.num_frames(samples)
    assert out.segment_probs.shape[-1] == net.grid.num_segments(frames) == (1 + (samples - 2048) // 1024) // stride
    # the pretrained convolutions are the same weights whatever the pooling
    assert torch.equal(net.backbone.blocks[2].conv1.weight, load_aisfx_state()["conv_block3.conv1.weight"])
    path = tmp_path / "x.wav"
    sf.write(str(path), (np.random.default_rng(1).standard_normal(samples) * 0.1).astype(np.float32), SR)
    ckpt = load_checkpoint(save_checkpoint(tmp_path / "m.pt", net, ["a", "b", "c"], "attention", {}))
    whole = Tagger(ckpt, chunk_seconds=60.0).tag(path)
    chunked = Tagger(ckpt, chunk_seconds=1.0).tag(path)
    np.testing.assert_allclose(chunked.segment_probs, whole.segment_probs, atol=1e-5, rtol=0)


def test_aisfx_options_are_checked_when_the_config_loads():
    from weaktag.errors import ConfigError

    with pytest.raises(ConfigError, match="time stride must be one of"):
        load_config(None, ["model.backbone=aisfx", "model.time_stride=3"])
    with pytest.raises(ConfigError, match="time stride is 16"):
        load_config(None, ["model.time_stride=4"])
    with pytest.raises(ConfigError, match="odd kernel"):
        load_config(None, ["model.neck_channels=8", "model.neck_kernel=4"])
    assert load_config(None, ["model.backbone=aisfx", "model.time_stride=4"]).model.grid.time_stride == 4


def test_front_end_matches_the_packages_own_librosa_spectrogram(model, tmp_path: Path):
    """The package's own spectrogram (``aisfx.spectrogram.spectrogram_librosa``, min-max scaled as its
    inference does) against weaktag's front end on the same peak-normalised audio. weaktag's frames
    are not centred, so its frame t is the package's frame t + 1 (centred on sample (t + 1) * hop)."""
    pytest.importorskip("librosa", reason="librosa (the package's spectrogram) is not installed")
    from aisfx.preprocessing import spectrogram_normalize
    from aisfx.spectrogram.spectrogram_librosa import compute_spectrogram

    rng = np.random.default_rng(0)
    t = np.arange(3 * SR) / SR
    audio = 0.3 * np.sin(2 * np.pi * 440 * t) * (t < 1.5) + 0.05 * rng.standard_normal(len(t))
    audio = (audio / np.abs(audio).max()).astype(np.float32)  # the package peak-normalises; weaktag does not
    path = tmp_path / "clip.wav"
    sf.write(path, audio, SR, subtype="FLOAT")
    spec = model.frontend.spec
    theirs = spectrogram_normalize(compute_spectrogram(str(path), SR, spec.window, spec.hop, spec.n_mels,
                                                       spec.f_min, spec.f_max)).T  # (frames, bands)
    ours = model.frontend(torch.from_numpy(audio)[None])[0].double().numpy()
    n = min(len(ours), len(theirs) - 1)
    assert n >= 125
    np.testing.assert_allclose(ours[:n], theirs[1 : n + 1], atol=2e-4, rtol=1e-3)


def test_two_step_transfer_from_an_aisfx_checkpoint_keeps_backbone_and_neck(tmp_path: Path):
    """The paper's two-step transfer with the pretrained backbone: a stage-1 weaktag checkpoint (aisfx +
    neck, other classes) initialises stage 2's backbone and neck; the head starts fresh."""
    from weaktag.models import NeckConfig
    from weaktag.models.transfer import initialise_from

    torch.manual_seed(1)
    stage1 = WeakTagNet(ModelConfig(5, True, BackboneConfig(backbone="aisfx"), NeckConfig(channels=32)))
    for p in stage1.neck.parameters():
        torch.nn.init.normal_(p)  # unlike a fresh neck
    path = save_checkpoint(tmp_path / "stage1.pt", stage1, list("abcde"), "attention", {})
    torch.manual_seed(2)
    stage2 = WeakTagNet(ModelConfig(3, True, BackboneConfig(backbone="aisfx"), NeckConfig(channels=32)))
    head_before = stage2.head.segment.weight.detach().clone()
    loaded = initialise_from(stage2, path)
    assert any(n.startswith("neck.") for n in loaded) and any(n.startswith("backbone.") for n in loaded)
    assert not any(n.startswith("head.") for n in loaded)
    for (name, a), b in zip(stage1.neck.state_dict().items(), stage2.neck.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(stage2.head.segment.weight, head_before)
    cfg = load_config(None, ["model.backbone=aisfx", "model.freeze=4", "model.neck_channels=32",
                             f"model.init={path}"])
    from weaktag.training.run import seed_independent_frozen_backbone

    assert seed_independent_frozen_backbone(cfg)  # given weights: its features are computed once
