"""``weaktag tag --device`` and ``--workers``: where the network runs, and files decoded in worker processes.

Decoding in workers must not change a single number, the order of results, or how a bad file is
reported; a device this machine lacks is one line and exit status 2.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from weaktag.checkpoint import save_checkpoint
from weaktag.cli import main
from weaktag.errors import ConfigError
from weaktag.inference.settings import TaggingConfig, tagging_config
from weaktag.inference import TagFailure, TagResult, Tagger
from weaktag.inference import decoding
from weaktag.inference.backends import resolve_device
from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet

SR = 16_000
CLASSES = ["a", "b", "c"]
CHUNK = 3.2  # seconds: files up to 3.84 s (chunk + context) are decoded whole, longer ones stream
FORK = multiprocessing.get_start_method() == "fork"  # workers inherit what a test patches


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(3)
    model = WeakTagNet(ModelConfig(len(CLASSES), backbone=BackboneConfig(width=0.125))).eval()
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", model, CLASSES, "attention", {},
                           tag_thresholds=np.array([0.5, 0.5, 0.5]))


def _noise(seconds: float, sr: int = SR, seed: int = 0, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    x = rng.standard_normal((n, channels) if channels > 1 else n) * 0.05
    t = np.arange(n) / sr
    tone = 0.3 * np.sin(2 * np.pi * rng.uniform(300, 3000) * t) * (t % 1.5 < 0.5)
    return (x + (tone[:, None] if channels > 1 else tone)).astype(np.float32)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> list[Path]:
    """Good, bad, silent, too short and long files, interleaved (the order results must keep)."""
    folder = tmp_path_factory.mktemp("mixed")
    paths: list[Path] = []

    def add(name: str, write=None) -> None:
        path = folder / name
        if write is not None:
            write(path)
        paths.append(path)

    add("eq0.wav", lambda p: sf.write(str(p), _noise(2.0, seed=0), SR))
    add("corrupt.wav", lambda p: p.write_bytes(b"RIFF" + bytes(range(256)) * 4))
    add("eq1.wav", lambda p: sf.write(str(p), _noise(2.0, seed=1), SR))
    add("missing.wav")
    add("stereo44.flac", lambda p: sf.write(str(p), _noise(2.5, 44_100, seed=2, channels=2), 44_100))
    add("silent.wav", lambda p: sf.write(str(p), np.zeros(SR, np.float32), SR))
    add("eq2.wav", lambda p: sf.write(str(p), _noise(2.0, seed=3), SR))
    add("too_short.wav", lambda p: sf.write(str(p), _noise(0.05, seed=4), SR))
    add("long.wav", lambda p: sf.write(str(p), _noise(9.1, seed=5), SR))  # streamed in 3.2 s chunks
    add("empty.wav", lambda p: p.write_bytes(b""))
    add("eq3.wav", lambda p: sf.write(str(p), _noise(2.0, seed=6), SR))
    add("odd.wav", lambda p: sf.write(str(p), _noise(3.3, seed=7), SR))
    add("tiny.wav", lambda p: sf.write(str(p), _noise(0.12, seed=8), SR))  # zero-padded to one segment
    add("long_silent.wav", lambda p: sf.write(str(p), np.zeros(5 * SR, np.float32), SR))
    add("eq4.wav", lambda p: sf.write(str(p), _noise(2.0, seed=9), SR))
    return paths


def _digest(results: list[TagResult | TagFailure]) -> list[tuple]:
    """Everything a run reports, exactly (arrays as bytes: equal means bit for bit)."""
    out = []
    for r in results:
        if isinstance(r, TagFailure):
            out.append(("failed", r.source, r.reason))
        else:
            out.append(("ok", r.source, r.duration, r.clip_probs.tobytes(), r.segment_probs.tobytes(),
                        r.attention.tobytes(), r.attention_raw.tobytes(),
                        [(e.label, e.onset, e.offset, e.score) for e in r.events]))
    return out


def _record_pids(monkeypatch, log: Path) -> None:
    """Make probes and decodes write the id of the process they ran in (inherited by forked workers)."""
    probe, decode = decoding.probe_file, decoding.decode_file

    def probe_file(*args):
        with open(log, "a") as f:
            f.write(f"probe {os.getpid()}\n")
        return probe(*args)

    def decode_file(*args):
        with open(log, "a") as f:
            f.write(f"decode {os.getpid()}\n")
        return decode(*args)

    monkeypatch.setattr(decoding, "probe_file", probe_file)
    monkeypatch.setattr(decoding, "decode_file", decode_file)


def test_decode_workers_change_nothing_in_results_order_or_failures(ckpt: Path, mixed: list[Path], tmp_path: Path,
                                                                      monkeypatch):
    log = tmp_path / "pids.txt"
    _record_pids(monkeypatch, log)
    # batch 2: several batches of the equal-length clips, so the one-batch-ahead pipeline is exercised
    options = dict(chunk_seconds=CHUNK, batch_size=2)
    alone = Tagger.from_checkpoint(ckpt, **options).tag_many(mixed)
    in_process = {line.split()[1] for line in log.read_text().splitlines()}
    assert in_process == {str(os.getpid())}
    log.unlink()
    with Tagger.from_checkpoint(ckpt, decode_workers=2, **options) as tagger:
        parallel = tagger.tag_many(mixed)
        again = tagger.tag_many(mixed)  # the same workers, a second run
        assert tagger._pool is not None and tagger._pool.workers == 2
    assert tagger._pool is None  # closed by the with block

    assert [r.source for r in parallel] == [str(p) for p in mixed]  # input order
    assert _digest(parallel) == _digest(alone) == _digest(again)
    status = {Path(r.source).name: (r.reason if isinstance(r, TagFailure) else "ok") for r in parallel}
    assert [name for name, s in status.items() if s == "ok"] == [
        "eq0.wav", "eq1.wav", "stereo44.flac", "eq2.wav", "long.wav", "eq3.wav", "odd.wav", "tiny.wav", "eq4.wav"]
    assert status["missing.wav"] == "file not found" and status["empty.wav"] == "empty file (0 bytes)"
    assert status["corrupt.wav"].startswith("cannot decode audio")
    assert status["silent.wav"] == status["long_silent.wav"] == "audio is entirely silent (all samples are zero)"
    assert status["too_short.wav"].startswith("too short: 0.050 s")
    if FORK:  # the headers and the short files were read in the workers, not here
        seen = [line.split() for line in log.read_text().splitlines()]
        assert {kind for kind, _ in seen} == {"probe", "decode"}
        assert str(os.getpid()) not in {pid for _, pid in seen}


def test_a_run_stopped_early_leaves_the_workers_usable(ckpt: Path, mixed: list[Path]):
    with Tagger.from_checkpoint(ckpt, chunk_seconds=CHUNK, decode_workers=2) as tagger:
        runs = tagger.iter_tag(mixed)
        next(runs)
        runs.close()  # the consumer walked away with decodes still queued in the workers
        got = tagger.tag_many(mixed)
    assert _digest(got) == _digest(Tagger.from_checkpoint(ckpt, chunk_seconds=CHUNK).tag_many(mixed))


def _cli_run(ckpt: Path, inputs: list[Path], out: Path, *extra: str) -> dict[str, bytes]:
    code = main(["tag", "--checkpoint", str(ckpt), *map(str, inputs), "--out", str(out), "--quiet",
                 "--chunk-seconds", str(CHUNK), "--batch-size", "2", *extra])
    assert code == 0
    return {name: (out / name).read_bytes() for name in ("tags.csv", "tags.json", "events.tsv", "errors.tsv")}


def test_cli_workers_and_device_cpu_write_the_same_tables(ckpt: Path, mixed: list[Path], tmp_path: Path):
    folder = mixed[0].parent
    inputs = [folder, folder / "missing.wav"]  # a folder (the missing file is not in it) and a missing path
    base = _cli_run(ckpt, inputs, tmp_path / "w0")
    workers = _cli_run(ckpt, inputs, tmp_path / "w2", "--workers", "2")
    cpu = _cli_run(ckpt, inputs, tmp_path / "cpu", "--device", "cpu", "--workers", "2")
    assert workers == base and cpu == base
    assert base["errors.tsv"].count(b"\n") == 1 + 6  # header and the six bad files
    counts = []
    for run, device, n in (("w0", "cpu", 0), ("w2", "cpu", 2), ("cpu", "cpu", 2)):
        summary = json.loads((tmp_path / run / "summary.json").read_text())
        assert (summary["settings"]["device"], summary["settings"]["decode_workers"]) == (device, n)
        counts.append((summary["files"], summary["ok"], summary["failed"], summary["audio_seconds"]))
    assert counts[0] == counts[1] == counts[2] == (15, 9, 6, counts[0][3])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("weaktag tag: error: "), err
    return err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_one_line_and_exit_status_2(ckpt: Path, mixed: list[Path], capsys, device: str):
    assert main(["tag", "--checkpoint", str(ckpt), str(mixed[0]), "--device", device, "--quiet"]) == 2
    err = _one_line_error(capsys)
    assert f"device '{device}': CUDA is not available" in err and "use device cpu" in err, err
    with pytest.raises(ValueError, match="CUDA is not available"):
        Tagger.from_checkpoint(ckpt, device=device)


def test_device_that_is_no_device_is_one_line(ckpt: Path, mixed: list[Path], capsys):
    assert main(["tag", "--checkpoint", str(ckpt), str(mixed[0]), "--device", "gpu", "--quiet"]) == 2
    assert "device 'gpu' is not a device name (use cpu, cuda or cuda:N)" in _one_line_error(capsys)
    assert main(["tag", "--checkpoint", str(ckpt), str(mixed[0]), "--device", "meta", "--quiet"]) == 2
    assert "weaktag tags on cpu or cuda[:N], not meta" in _one_line_error(capsys)
    assert main(["tag", "--checkpoint", str(ckpt), str(mixed[0]), "--workers", "-1", "--quiet"]) == 2
    assert "--workers: -1 is below its minimum 0" in _one_line_error(capsys)


def test_onnxruntime_without_its_cuda_provider_is_one_line(ckpt: Path, mixed: list[Path], capsys):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    code = main(["tag", "--checkpoint", str(ckpt), str(mixed[0]), "--backend", "onnxruntime", "--device", "cuda",
                 "--quiet"])
    assert code == 2
    err = _one_line_error(capsys)
    assert "device 'cuda': onnxruntime" in err and "has no CUDAExecutionProvider" in err, err


def test_python_api_takes_device_and_decode_workers(ckpt: Path):
    tagger = Tagger.from_checkpoint(ckpt, device="cpu", decode_workers=3)
    assert (tagger.device, tagger.settings.device, tagger.settings.decode_workers) == (torch.device("cpu"), "cpu", 3)
    shared = Tagger.from_checkpoint(ckpt, settings=TaggingConfig(decode_workers=2))
    assert (shared.settings.decode_workers, shared.device) == (2, torch.device("cpu"))
    # the argument wins over the settings object
    assert Tagger.from_checkpoint(ckpt, torch.device("cpu"), settings=TaggingConfig(device="cuda")).device.type == "cpu"
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="decode_workers"):
        tagging_config(decode_workers=-2)
    assert TaggingConfig().decode_workers == 0 and TaggingConfig().device == "cpu"  # the safe defaults


def test_audio_longer_than_its_ring_slot_comes_back_as_a_tensor(mixed: list[Path]):
    # slots of 1 s: the 2 s clips do not fit and take the /dev/shm tensor path; the 0.12 s one fits
    items = [(i, str(p), sf.info(str(p)).frames) for i, p in enumerate(mixed)
             if p.name in ("eq0.wav", "tiny.wav", "stereo44.flac", "silent.wav", "eq1.wav")]
    alone = list(decoding.decode_files(items, SR, False))
    pool = decoding.DecodePool(2, slot_samples=SR, files_per_task=2)
    try:
        parallel = list(decoding.decode_files(items, SR, False, pool))
    finally:
        pool.close()
    assert [(i, reason) for i, _, reason in parallel] == [(i, reason) for i, _, reason in alone]
    assert [r for _, _, r in alone].count(None) == 4  # silent.wav is the one failure
    for (_, a, _), (_, b, _) in zip(alone, parallel):
        assert (a is None and b is None) or np.array_equal(a, b)
