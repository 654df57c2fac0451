"""Embeddings: the Embedder on the tagging engine, ``weaktag embed``'s files, the HEAR API and the X-ARES encoder."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import weaktag.hear as hear
from weaktag.checkpoint import save_checkpoint
from weaktag.cli import main
from weaktag.geometry import VGGISH_GRID
from weaktag.inference import Embedder, Tagger
from weaktag.inference.embedding import embedding_files, load_embedding
from weaktag.models import BackboneConfig, ModelConfig, NeckConfig, WeakTagNet

SR = 16_000
NECK_CHANNELS = 24
SEGMENT_MS = VGGISH_GRID.segment_seconds * 1000  # 160 ms
CHUNK_TOLERANCE = 1e-5  # chunked vs whole-file pass, as for the tagger's outputs


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A tiny random VGGish with a conv neck: the head's input (the neck's outputs) differs from the backbone's."""
    torch.manual_seed(0)
    config = ModelConfig(3, backbone=BackboneConfig(width=0.0625, l7_channels=32, batch_norm=True),
                         neck=NeckConfig(channels=NECK_CHANNELS))
    model = WeakTagNet(config).eval()
    return save_checkpoint(tmp_path_factory.mktemp("embed") / "model.pt", model, ["a", "b", "c"], "attention", {})


def _noise(seconds: float, seed: int, sr: int = SR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.05, int(seconds * sr))
    t = np.arange(len(x)) / sr
    return (x + 0.3 * np.sin(2 * np.pi * rng.uniform(200, 3000) * t) * (t % 3 < 1)).astype(np.float32)


def test_hear_timestamp_and_scene_embeddings(ckpt):
    model = hear.load_model(str(ckpt))
    assert isinstance(model, torch.nn.Module)
    assert model.sample_rate == SR and model.scene_embedding_size == model.timestamp_embedding_size == NECK_CHANNELS
    audio = torch.from_numpy(np.stack([_noise(2.0, seed) for seed in range(3)]))
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
    segments = VGGISH_GRID.segments_for_samples(audio.shape[1])  # 13 segments of 0.16 s cover 2 s
    assert embeddings.shape == (3, segments, NECK_CHANNELS) and embeddings.dtype == torch.float32
    assert timestamps.shape == (3, segments) and timestamps.dtype == torch.float32
    # milliseconds, at the centre of each segment's span [t, t + 1) x 160 ms, increasing
    expected = (np.arange(segments) + 0.5) * SEGMENT_MS
    assert np.allclose(timestamps.numpy(), expected[None, :], atol=1e-3)
    assert bool((timestamps.diff(dim=1) > 0).all())
    scene = hear.get_scene_embeddings(audio, model)
    assert scene.shape == (3, NECK_CHANNELS) and scene.dtype == torch.float32
    assert torch.allclose(scene, embeddings.mean(dim=1), atol=1e-6)
    # deterministic, and a sound embedded in a batch is the sound embedded alone
    again, _ = hear.get_timestamp_embeddings(audio, model)
    assert torch.equal(again, embeddings)
    alone, _ = hear.get_timestamp_embeddings(audio[1:2], model)
    assert torch.allclose(alone[0], embeddings[1], atol=1e-5)
    # the features that feed the head: the tagger's X^a is the head's read-out of them
    with torch.inference_mode():
        xa = model.network.head(embeddings[:1].transpose(1, 2)).segment_probs[0].numpy()
    assert np.allclose(xa, Tagger.from_checkpoint(ckpt).tag(audio[0].numpy()).segment_probs, atol=1e-5)


def test_hear_silence_is_embedded_and_bad_shapes_are_refused(ckpt):
    model = hear.load_model(str(ckpt))
    embeddings, _ = hear.get_timestamp_embeddings(torch.zeros(2, SR), model)  # silence is a sound too
    assert embeddings.shape[:2] == (2, VGGISH_GRID.segments_for_samples(SR)) and torch.isfinite(embeddings).all()
    with pytest.raises(ValueError, match="n_sounds, n_samples"):
        hear.get_scene_embeddings(torch.zeros(SR), model)
    with pytest.raises(Exception, match="too short"):
        hear.get_scene_embeddings(torch.zeros(1, 100), model)


def test_xares_encoder(ckpt):
    encoder = hear.XaresEncoder(str(ckpt))
    assert (encoder.sampling_rate, encoder.output_dim) == (SR, NECK_CHANNELS)
    assert encoder.hop_size_in_ms == pytest.approx(SEGMENT_MS)
    audio = torch.from_numpy(np.stack([_noise(1.0, 0), _noise(1.0, 1)]))
    out = encoder(audio)
    assert out.shape == (2, VGGISH_GRID.segments_for_samples(SR), NECK_CHANNELS) and out.dtype == torch.float32
    assert torch.allclose(encoder(audio[0]), out[:1], atol=1e-5)  # (N,) is one sound


@pytest.mark.skipif(importlib.util.find_spec("aisfx") is None,
                    reason="the aisfx package is not installed (pip install --no-deps aisfx==0.1.2)")
def test_hear_on_the_bare_aisfx_backbone():
    from weaktag.models import AISFX_GRID

    model = hear.load_model("")  # HEAR's default path: the bare pretrained backbone
    assert model.sample_rate == 44_100 and model.scene_embedding_size == 512
    audio = torch.from_numpy(_noise(1.0, 0, sr=44_100))[None, :]
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
    segments = AISFX_GRID.segments_for_samples(audio.shape[1])
    assert embeddings.shape == (1, segments, 512) and timestamps.shape == (1, segments)
    assert timestamps[0, 0].item() == pytest.approx(AISFX_GRID.segment_seconds * 500, abs=1e-3)
    # the packaged weights' outputs, not a random network's
    net = model.network
    with torch.inference_mode():
        padded = torch.nn.functional.pad(audio, (0, AISFX_GRID.padded_samples(audio.shape[1]) - audio.shape[1]))
        direct = net.backbone(net.frontend(padded))[0].T
    assert torch.allclose(embeddings[0], direct, atol=1e-5)
    assert torch.allclose(hear.get_scene_embeddings(audio, model)[0], direct.mean(dim=0), atol=1e-5)


def test_a_long_file_streamed_in_chunks_equals_the_whole_file_pass(ckpt, tmp_path):
    path = tmp_path / "long.wav"
    sf.write(str(path), _noise(45.0, 3, sr=44_100), 44_100)  # resampled as a stream too
    chunked = Embedder.from_checkpoint(ckpt, chunk_seconds=5.12)
    whole = Embedder.from_checkpoint(ckpt, chunk_seconds=60.0)
    assert chunked.plan.single_pass_samples < 45 * SR < whole.plan.single_pass_samples  # 8 chunks vs one pass
    a, b = chunked.embed(path), whole.embed(path)
    assert a.segments.shape == b.segments.shape == (VGGISH_GRID.segments_for_samples(45 * SR), NECK_CHANNELS)
    assert np.abs(a.segments - b.segments).max() <= CHUNK_TOLERANCE
    assert np.abs(a.clip - b.clip).max() <= CHUNK_TOLERANCE
    assert np.array_equal(a.timestamps_ms, b.timestamps_ms)


def test_weaktag_embed_writes_the_documented_files(ckpt, tmp_path, capsys):
    audio = tmp_path / "in"
    (audio / "sub").mkdir(parents=True)
    sf.write(str(audio / "a.wav"), _noise(1.5, 0), SR)
    sf.write(str(audio / "sub" / "b.flac"), _noise(3.0, 1, sr=22_050), 22_050)
    (audio / "broken.wav").write_bytes(b"not audio")
    out = tmp_path / "out"
    assert main(["embed", "--checkpoint", str(ckpt), str(audio), "--out", str(out)]) == 0
    assert "embedded 2 of 3 file(s), 1 failed" in capsys.readouterr().err
    with (out / "index.csv").open() as f:
        rows = {r["filename"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == ["a.wav", "sub/b.flac"]
    assert rows["sub/b.flac"]["embedding"] == "sub/b.npz" and int(rows["a.wav"]["dimension"]) == NECK_CHANNELS
    with (out / "errors.tsv").open() as f:
        assert [r["filename"] for r in csv.DictReader(f, delimiter="\t")] == ["broken.wav"]
    with np.load(out / "a.npz") as z:
        assert z["clip"].shape == (NECK_CHANNELS,) and z["clip"].dtype == np.float32
        assert z["segments"].shape == (int(rows["a.wav"]["segments"]), NECK_CHANNELS)
        assert z["segments"].dtype == np.float32 and z["timestamps_ms"].dtype == np.float64
        assert str(z["layer"]) == "head-input" and float(z["duration_seconds"]) == pytest.approx(1.5)
    # what the file holds is what the Python API gives
    direct = Embedder.from_checkpoint(ckpt).embed(audio / "sub" / "b.flac")
    read = load_embedding(out / "sub" / "b.npz")
    assert np.array_equal(read.segments, direct.segments) and np.array_equal(read.clip, direct.clip)
    assert np.array_equal(read.timestamps_ms, direct.timestamps_ms)


def test_embedding_file_names_never_collide():
    assert embedding_files(["a.wav", "sub/b.flac", "c"]) == ["a.npz", "sub/b.npz", "c.npz"]
    assert embedding_files(["x.wav", "x.flac", "y.wav"]) == ["x.wav.npz", "x.flac.npz", "y.npz"]


def test_embed_refuses_what_it_cannot_use(ckpt, tmp_path, capsys):
    wav = tmp_path / "a.wav"
    sf.write(str(wav), _noise(1.0, 0), SR)
    assert main(["embed", str(wav), "--out", str(tmp_path / "o")]) == 2
    assert "give one of --checkpoint" in capsys.readouterr().err
    assert main(["embed", "--checkpoint", str(ckpt), str(wav), "--out", str(tmp_path / "o"), "--chunk-seconds",
                 "0"]) == 2
    assert "--chunk-seconds" in capsys.readouterr().err
    assert main(["embed", "--checkpoint", str(tmp_path / "model.onnx"), str(wav), "--out", str(tmp_path / "o")]) == 2
    assert "PyTorch checkpoint" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no pretrained weights"):
        Embedder.from_backbone("vggish")
