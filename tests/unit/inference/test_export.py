"""``weaktag export --format onnx``: graph parity with PyTorch, dynamic shapes, and the onnxruntime backend."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf
import torch

from conftest import SHARED_DATA
from weaktag.audio import LogMel, load_audio
from weaktag.checkpoint import save_checkpoint
from weaktag.cli import main
from weaktag.inference import Tagger
from weaktag.inference.export import PARITY_FLOOR, PARITY_MARGIN, DftLogMel, export_onnx, read_metadata
from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet

CLASSES = ["dog", "rain", "siren", "baby"]
SR = 16_000


def _checkpoint(path: Path, attention: bool = True, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = WeakTagNet(ModelConfig(len(CLASSES), attention=attention, backbone=BackboneConfig(width=0.125))).eval()
    return save_checkpoint(path, model, CLASSES, "attention", {}, tag_thresholds=np.array([0.5, 0.4, 0.6, 0.5]))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return _checkpoint(tmp_path_factory.mktemp("export") / "model.pt")


@pytest.fixture(scope="module")
def exported(ckpt: Path) -> Path:
    return export_onnx(ckpt, ckpt.with_suffix(".onnx")).path


def _real_file() -> Path:
    folder = SHARED_DATA / "esc10"
    if not folder.exists():
        pytest.skip(f"real data not available: {folder} is absent")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".ogg", ".wav", ".flac"))
    if not files:
        pytest.skip(f"no audio under {folder}")
    return files[0]


def _torch_outputs(ckpt: Path, wave: np.ndarray) -> list[np.ndarray]:
    from weaktag.checkpoint import load_checkpoint

    model = load_checkpoint(ckpt).model
    with torch.no_grad():
        out = model(torch.from_numpy(wave))
    names = [out.clip_probs, out.segment_probs, out.attention, out.attention_raw]
    return [t.numpy() for t in names if t is not None]


def test_dft_frontend_equals_logmel() -> None:
    x = torch.from_numpy((np.random.default_rng(0).standard_normal((3, 33_333)) * 0.2).astype(np.float32))
    x[1, 5000:9000] = 0.0
    assert (DftLogMel()(x) - LogMel()(x)).abs().max().item() <= 1e-4


def test_export_parity_random_audio(exported: Path, ckpt: Path) -> None:
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(5)
    for batch, samples in [(1, 2800), (3, 12_345), (2, 160_000), (1, 16_000 * 45 + 77)]:  # dynamic batch and time
        wave = (rng.standard_normal((batch, samples)) * 0.1).astype(np.float32)
        got = session.run(None, {"waveform": wave})
        expected = _torch_outputs(ckpt, wave)
        assert [g.shape for g in got] == [e.shape for e in expected]
        assert max(float(np.abs(g - e).max()) for g, e in zip(got, expected)) <= PARITY_FLOOR
    names = [o.name for o in session.get_outputs()]
    assert names == ["clip_probs", "segment_probs", "attention", "attention_raw"]


def test_export_parity_real_audio(ckpt: Path, tmp_path: Path) -> None:
    real = _real_file()
    for frontend in (True, False):
        report = export_onnx(ckpt, tmp_path / f"m{int(frontend)}.onnx", frontend=frontend, verify_audio=[real])
        assert report.ok and set(report.max_abs_diff) == {"random", "random_10s", real.name}
        assert report.worst <= PARITY_FLOOR


def test_export_without_frontend_and_pooling_model(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "pool.pt", attention=False, seed=3)
    report = export_onnx(ckpt, tmp_path / "pool.onnx", frontend=False)
    assert report.ok and not report.frontend
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["logmel"]
    assert [o.name for o in session.get_outputs()] == ["clip_probs", "segment_probs"]
    meta = read_metadata(report.path)
    assert meta["classes"] == CLASSES and meta["frontend"] is False


def test_onnxruntime_backend_matches_torch(ckpt: Path, exported: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    long = (rng.standard_normal(SR * 50) * 0.1).astype(np.float32)
    short = (rng.standard_normal(1600) * 0.1).astype(np.float32)  # 0.1 s
    torch_tagger = Tagger.from_checkpoint(ckpt, chunk_seconds=10.24)
    for tagger in (Tagger.from_checkpoint(ckpt, backend="onnxruntime", onnx_path=exported, chunk_seconds=10.24),
                   Tagger.from_checkpoint(exported, chunk_seconds=10.24)):  # the .onnx alone, metadata inside
        assert tagger.classes == CLASSES and tagger.backend == "onnxruntime"
        np.testing.assert_allclose(tagger.tag_thresholds, [0.5, 0.4, 0.6, 0.5])
        for wave in (long, short):
            a, b = tagger.tag(wave), torch_tagger.tag(wave)
            assert np.abs(a.segment_probs - b.segment_probs).max() <= PARITY_FLOOR
            assert np.abs(a.attention - b.attention).max() <= PARITY_FLOOR
            assert np.abs(a.clip_probs - b.clip_probs).max() <= PARITY_FLOOR


def test_cli_export_then_tag_with_onnxruntime(ckpt: Path, tmp_path: Path, capsys) -> None:
    onnx_path = tmp_path / "cli.onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--output", str(onnx_path)]) == 0
    assert "parity OK" in capsys.readouterr().out
    audio = tmp_path / "audio"
    audio.mkdir()
    rng = np.random.default_rng(2)
    for i in range(3):
        sf.write(str(audio / f"{i}.wav"), rng.standard_normal(SR * 5).astype(np.float32) * 0.1, SR)
    probs = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / backend
        args = ["tag", "--checkpoint", str(ckpt), str(audio), "--out", str(out), "--backend", backend,
                "--select", "top-k", "--top-k", "4", "--quiet"]
        if backend == "onnxruntime":
            args += ["--onnx", str(onnx_path)]
        assert main(args) == 0
        with open(out / "tags.csv", newline="") as f:
            probs[backend] = {(r["filename"], r["label"]): float(r["probability"]) for r in csv.DictReader(f)}
        if backend == "onnxruntime":  # the .onnx file alone as the checkpoint: onnxruntime is implied
            assert main(["tag", "--checkpoint", str(onnx_path), str(audio), "--out", str(tmp_path / "alone"),
                         "--select", "top-k", "--top-k", "4", "--quiet"]) == 0
            assert (tmp_path / "alone" / "tags.csv").read_text() == (out / "tags.csv").read_text()
    assert probs["torch"].keys() == probs["onnxruntime"].keys() and len(probs["torch"]) == 12
    assert max(abs(probs["torch"][k] - probs["onnxruntime"][k]) for k in probs["torch"]) <= PARITY_FLOOR
    with pytest.raises(ValueError, match="onnxruntime"):
        Tagger.from_checkpoint(onnx_path, backend="torch")


def test_real_file_through_both_backends(ckpt: Path, exported: Path) -> None:
    real = _real_file()
    a = Tagger.from_checkpoint(exported).tag(real)
    b = Tagger.from_checkpoint(ckpt).tag(real)
    assert a.duration == pytest.approx(len(load_audio(real, allow_silent=True)) / SR)
    assert np.abs(a.segment_probs - b.segment_probs).max() <= PARITY_FLOOR


def _recommended_checkpoint(path: Path) -> Path:
    """The recommended recipe's architecture (frozen pretrained aisfx, mean+max over frequency, the temporal
    neck, the attention head), its neck narrowed to keep the test quick; untrained above the backbone."""
    pytest.importorskip("aisfx")
    from weaktag.config import load_config
    from weaktag.recipes import recipe_path

    m = load_config(recipe_path("recommended"), ["model.neck_channels=32"]).model
    assert m.backbone == "aisfx" and m.freq_pool == "mean+max" and m.neck_channels
    torch.manual_seed(0)
    model = WeakTagNet(ModelConfig(len(CLASSES), True, m.backbone_config(), m.neck_config())).eval()
    return save_checkpoint(path, model, CLASSES, "attention", {}, tag_thresholds=np.full(len(CLASSES), 0.5))


def _onnx_folders(folder: Path) -> list[Path]:
    return sorted(folder.glob("weaktag-onnx-*"))


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch) -> Path:
    """tempfile's folder for this test, to see what an export leaves there."""
    import tempfile

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_recommended_architecture_exports_with_parity_and_leaves_no_temporary_files(tmp_path: Path,
                                                                                    temp_dir: Path) -> None:
    ckpt = _recommended_checkpoint(tmp_path / "rec.pt")
    report = export_onnx(ckpt, tmp_path / "rec.onnx")
    assert report.ok, report.failures
    checks = report.parity["random_10s"]
    assert set(checks) == {"clip_probs", "segment_probs", "attention", "attention_raw"}
    # the measured float32 error, plus onnxruntime's sigmoid error: above the floor, far below a wrong graph's miss
    assert all(p.float_error > 0 and PARITY_FLOOR + PARITY_MARGIN * p.float_error < p.tolerance < 1e-3
               for p in checks.values())
    tagger = Tagger.from_checkpoint(ckpt, backend="onnxruntime")  # exported on the fly, into temp_dir
    wave = (np.random.default_rng(3).standard_normal(SR * 4) * 0.1).astype(np.float32)
    assert np.abs(tagger.tag(wave).clip_probs - Tagger.from_checkpoint(ckpt).tag(wave).clip_probs).max() < 1e-3
    assert _onnx_folders(temp_dir) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["rec.onnx", "rec.pt",
                                                                                             "tmp"]


def test_parity_failure_names_the_output_and_cleans_up(ckpt: Path, tmp_path: Path, temp_dir: Path,
                                                       monkeypatch) -> None:
    from weaktag.inference.export import ExportableNet, ExportVerificationError

    forward = ExportableNet.forward

    def perturbed(self, x):  # a wrong graph: clip probabilities off by 0.01
        clip, *rest = forward(self, x)
        return (clip + 0.01, *rest)

    monkeypatch.setattr(ExportableNet, "forward", perturbed)
    with pytest.raises(ExportVerificationError, match=r"random clip_probs: 0\.01 > tolerance 0\.0001"):
        Tagger.from_checkpoint(ckpt, backend="onnxruntime")
    assert _onnx_folders(temp_dir) == [] and list(temp_dir.iterdir()) == []
    with pytest.raises(ExportVerificationError, match=r"clip_probs: 0\.01 > tolerance .*the file was kept"):
        export_onnx(ckpt, tmp_path / "bad.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx", "tmp"]  # the file kept, nothing else


def test_export_onto_a_full_disk_names_the_file_and_leaves_nothing(ckpt: Path, tmp_path: Path, capsys,
                                                                   monkeypatch) -> None:
    import errno

    import onnx

    def full(proto, path, *args, **kwargs):  # the metadata pass writes the final bytes
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(onnx, "save", full)
    out = tmp_path / "out" / "model.onnx"
    assert main(["export", "--checkpoint", str(ckpt), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"weaktag export: error: {out}: cannot write the ONNX model (No space left on device)"]
    assert list(out.parent.iterdir()) == []  # neither the model nor its temporary file


def test_sigmoid_error_widens_attention_tolerance_only_where_attention_is_ill_conditioned() -> None:
    from weaktag.inference.export import _operator_error, sigmoid_error
    from weaktag.models import attention_pool
    from weaktag.models.output import ModelOutput

    d = sigmoid_error()
    assert 0 < d < 1e-5  # onnxruntime's Sigmoid: absolute error about 1.5e-7
    xb = torch.tensor([[[0.9, 0.5, 0.2, 0.7], [1e-9, 2e-9, 1e-9, 1e-9]]], dtype=torch.float64)  # class 2: "absent"
    xa = torch.full_like(xb, 0.5)
    att, clip = attention_pool(xa, xb)
    errors = _operator_error(ModelOutput(segment_probs=xa, clip_probs=clip, attention=att, attention_raw=xb),
                             "attention", d)
    assert errors["segment_probs"] == errors["attention_raw"] == d
    assert errors["attention"][0, 0].max() < 10 * d and errors["attention"][0, 1].min() > 0.1
    assert errors["clip_probs"][0, 0] < 10 * d < errors["clip_probs"][0, 1]


def test_int8_copy_keeps_metadata_and_stays_near_the_float_model(exported: Path, tmp_path: Path) -> None:
    from weaktag.inference.export import INT8_TOLERANCE, quantize_onnx

    report = quantize_onnx(exported, tmp_path / "model.int8.onnx")
    assert report.ok and report.path.stat().st_size < exported.stat().st_size  # int8 weights
    assert read_metadata(report.path)["classes"] == CLASSES
    wave = (0.1 * np.random.default_rng(7).standard_normal((1, SR * 10))).astype(np.float32)  # a fixed input
    out = {}
    for path in (exported, report.path):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        out[path] = session.run(["clip_probs", "segment_probs"], {"waveform": wave})
    for float_out, int8_out in zip(out[exported], out[report.path]):
        assert np.abs(float_out - int8_out).max() <= INT8_TOLERANCE
    assert not np.array_equal(out[exported][0], out[report.path][0])  # it is another model, not a copy


def test_evaluate_scores_audio_through_an_export(ckpt: Path, exported: Path, tmp_path: Path, capsys) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    rng = np.random.default_rng(3)
    rows = ["filename\tlabels"]
    for i in range(4):
        sf.write(str(audio / f"{i}.wav"), rng.standard_normal(SR * 4).astype(np.float32) * 0.1, SR)
        rows.append(f"{i}.wav\t{CLASSES[i % 2]}")
    labels = tmp_path / "weak.tsv"
    labels.write_text("\n".join(rows) + "\n")
    from weaktag.experiments.evaluation import evaluate_checkpoint

    torch_report = evaluate_checkpoint(ckpt, labels, audio)
    onnx_report = evaluate_checkpoint(ckpt, labels, audio, onnx_path=exported)
    assert onnx_report.tagging.mAP == pytest.approx(torch_report.tagging.mAP, abs=1e-6)
    assert main(["evaluate", "--checkpoint", str(ckpt), "--labels", str(labels), "--audio-dir", str(audio),
                 "--onnx", str(exported), "--quiet"]) == 0
    assert "mAP" in capsys.readouterr().out
    assert main(["export", "--checkpoint", str(ckpt), "--output", str(tmp_path / "q.onnx"), "--int8"]) == 0
    assert "int8 dynamic quantisation" in capsys.readouterr().out and (tmp_path / "q.int8.onnx").exists()
