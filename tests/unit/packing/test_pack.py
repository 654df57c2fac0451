"""``weaktag pack``: packs hold exactly the manifest's clips, bad audio is reported, a pack is never half-written,
and training reads shards (in data-loader workers) as it reads the files."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from weaktag import packing
from weaktag.audio import load_audio
from weaktag.cli import main
from weaktag.config import load_config
from weaktag.data import build_feature_set
from weaktag.labels import Clip, LabelError, Manifest, detect_label_format, read_labels
from weaktag.packing import load_clip_audio, pack
from weaktag.synth import SynthConfig, synthesize_splits
from weaktag.training.run import prepare_data

SPLITS = {"train": 16, "validation": 8}
# the bad clips' "skipping ..." warnings are expected (tests that are about them catch them)
pytestmark = pytest.mark.filterwarnings("ignore:skipping .*:UserWarning")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Short soundscapes (2 s, 16-bit WAV at 16 kHz) with strong labels."""
    root = tmp_path_factory.mktemp("pack-data")
    synthesize_splits(root, SPLITS, SynthConfig(seed=5, clip_seconds=2.0))
    return root


def _with_bad_clips(manifest: Manifest, folder: Path) -> Manifest:
    """The manifest plus a corrupt file (garbage with a .wav name), a missing one and a silent one."""
    corrupt = folder / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt this is not audio at all")
    silent = folder / "silent.wav"
    sf.write(str(silent), np.zeros(16000), 16000, subtype="PCM_16")
    first = manifest.clips[0]
    bad = [replace(first, clip_id="corrupt", audio_path=corrupt),
           replace(first, clip_id="missing", audio_path=folder / "missing.wav"),
           replace(first, clip_id="silent", audio_path=silent)]
    clips = manifest.clips[:3] + bad[:2] + manifest.clips[3:] + bad[2:]
    return Manifest(clips, manifest.classes)


def test_a_pack_holds_the_manifests_clips_and_gives_the_same_features(data: Path, tmp_path: Path):
    labels = data / "train" / "manifest.jsonl"
    manifest = read_labels(labels)
    report = pack(manifest, tmp_path / "pack", clips_per_shard=5, workers=2, progress=False, labels=labels)
    assert report.packed == 16 and not report.skipped
    assert [s["clips"] for s in report.shards] == [5, 5, 5, 1]

    packed = read_labels(tmp_path / "pack")
    assert detect_label_format(tmp_path / "pack") == "pack"
    assert packed.classes == manifest.classes
    assert [c.clip_id for c in packed] == [c.clip_id for c in manifest]
    for mine, theirs in zip(packed, manifest):
        assert (mine.labels, mine.events, mine.source) == (theirs.labels, theirs.events, theirs.source)
        assert mine.duration == pytest.approx(2.0) and mine.packed is not None
    # the sources are 16-bit PCM at the pack's rate: stored and read back bit for bit
    from_pack = build_feature_set(packed)
    from_files = build_feature_set(manifest)
    assert torch.equal(from_pack.features, from_files.features)

    index = json.loads((tmp_path / "pack" / "pack.json").read_text())
    assert (index["clips"], index["skipped"], index["sample_rate"]) == (16, 0, 16000)
    assert read_labels(tmp_path / "pack" / "pack.json").classes == manifest.classes  # the index file works too


def test_resampled_audio_is_stored_within_int16_rounding(tmp_path: Path):
    """A 44.1 kHz float source decoded to 16 kHz: the pack differs from the decoded file by at most half an
    int16 step (2^-16); a 16 kHz pack read for a 44.1 kHz front end is resampled, with a warning."""
    rng = np.random.default_rng(0)
    t = np.arange(2 * 44100) / 44100
    clips = []
    for i in range(3):
        wave = 0.4 * np.sin(2 * np.pi * (300 + 150 * i) * t) + 0.05 * rng.standard_normal(len(t))
        path = tmp_path / f"tone{i}.wav"
        sf.write(str(path), wave, 44100, subtype="FLOAT")
        clips.append(Clip(f"tone{i}", path, frozenset({"tone"})))
    pack(Manifest(clips), tmp_path / "pack", progress=False)
    packed = read_labels(tmp_path / "pack")
    for mine, theirs in zip(packed, clips):
        decoded = load_audio(theirs.audio_path, 16000)
        stored = load_clip_audio(mine, 16000)
        assert stored.shape == decoded.shape
        assert np.abs(stored - decoded).max() <= 2.0 ** -16 + 1e-9
        assert np.abs(stored - decoded).max() > 0  # float audio is really rounded, not passed through
    with pytest.warns(UserWarning, match="packed at 16000 Hz, below the front end's 44100 Hz"):
        from weaktag.models.aisfx import AISFX_GRID

        upsampled = build_feature_set(packed, grid=AISFX_GRID, clip_seconds=2.0)
    assert len(upsampled) == 3 and torch.isfinite(upsampled.features).all()


def test_zero_and_two_workers_give_identical_features_and_skips(data: Path, tmp_path: Path):
    manifest = _with_bad_clips(read_labels(data / "train" / "manifest.jsonl"), tmp_path)
    pack(manifest, tmp_path / "pack", clips_per_shard=4, progress=False)
    packed = read_labels(tmp_path / "pack")
    for source, skipped in ((manifest, ["corrupt", "missing", "silent"]), (packed, [])):
        inline = build_feature_set(source, num_workers=0)
        pooled = build_feature_set(source, num_workers=2)
        assert len(inline) == 16 and torch.equal(inline.features, pooled.features)
        assert [c.clip_id for c in inline.clips] == [c.clip_id for c in pooled.clips]
        assert inline.skipped == pooled.skipped and [s.clip_id for s in pooled.skipped] == skipped


def test_corrupt_missing_and_silent_audio_are_listed_and_left_out(data: Path, tmp_path: Path):
    manifest = _with_bad_clips(read_labels(data / "train" / "manifest.jsonl"), tmp_path)
    with pytest.warns(UserWarning, match="skipping corrupt"):
        report = pack(manifest, tmp_path / "pack", clips_per_shard=6, workers=2, progress=False)
    reasons = {s.clip_id: s.reason for s in report.skipped}
    assert list(reasons) == ["corrupt", "missing", "silent"]
    assert "corrupt.wav" in reasons["corrupt"] and "cannot decode audio" in reasons["corrupt"]
    assert "missing.wav: file not found" in reasons["missing"]
    assert "silent" in reasons["silent"]
    assert report.packed == 16 and "3 skipped" in report.summary()

    rows = (tmp_path / "pack" / "skipped.tsv").read_text().splitlines()
    assert rows[0] == "clip_id\taudio_path\treason" and [r.split("\t")[0] for r in rows[1:]] == list(reasons)
    index = json.loads((tmp_path / "pack" / "pack.json").read_text())
    assert (index["clips"], index["skipped"]) == (16, 3)
    packed_ids = [c.clip_id for c in read_labels(tmp_path / "pack")]
    assert packed_ids == [c.clip_id for c in manifest if c.clip_id not in reasons]


def test_audio_too_quiet_for_int16_is_skipped_not_packed_as_silence(tmp_path: Path):
    loud, faint = tmp_path / "loud.wav", tmp_path / "faint.wav"
    sf.write(str(loud), 0.1 * np.ones(1600), 16000, subtype="FLOAT")
    sf.write(str(faint), 1e-6 * np.ones(1600), 16000, subtype="FLOAT")  # below half an int16 step
    clips = [Clip("loud", loud, frozenset({"x"})), Clip("faint", faint, frozenset({"x"}))]
    report = pack(Manifest(clips), tmp_path / "pack", progress=False)
    assert report.packed == 1 and [(s.clip_id, s.reason) for s in report.skipped] == [
        ("faint", f"{faint}: audio is too quiet for int16 (every sample rounds to zero)")]


def test_an_interrupted_pack_leaves_no_folder_behind(data: Path, tmp_path: Path, monkeypatch):
    manifest = read_labels(data / "train" / "manifest.jsonl")
    real_add = packing._ShardWriter.add
    written = []

    def add_then_die(self, clip, pcm):
        if len(written) == 7:  # in the second shard: the first one is already closed
            raise KeyboardInterrupt
        written.append(clip.clip_id)
        real_add(self, clip, pcm)

    monkeypatch.setattr(packing._ShardWriter, "add", add_then_die)
    with pytest.raises(KeyboardInterrupt):
        pack(manifest, tmp_path / "out" / "pack", clips_per_shard=5, progress=False)
    assert len(written) == 7
    assert not (tmp_path / "out" / "pack").exists()
    assert list((tmp_path / "out").iterdir()) == []  # no temporary folder either


def _pack_in_a_process(data: Path, out: Path, workers: int, limit_file_bytes: int | None = None
                       ) -> subprocess.CompletedProcess:
    """``weaktag pack`` of the 16 training clips (1 MB) in a process of its own: a segfault kills it, not pytest.
    ``limit_file_bytes``: RLIMIT_FSIZE, so that writing past it fails with EFBIG (SIGXFSZ ignored)."""
    def limit() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    argv = [sys.executable, "-m", "weaktag.cli", "pack", "--labels", str(data / "train" / "manifest.jsonl"),
            "--out", str(out), "--workers", str(workers), "--clips-per-shard", "10", "--quiet"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          preexec_fn=None if limit_file_bytes is None else limit)


@pytest.fixture
def full_disk(tmp_path: Path):
    """A 256 KiB tmpfs: the training clips (1 MB) do not fit. Needs the right to mount (root in a sandbox)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if not sys.platform.startswith("linux"):
        pytest.skip("a tmpfs needs Linux")
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
                              capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, PermissionError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}); the EFBIG and patched variants still run")
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the EFBIG and patched variants still run")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True, timeout=30)


def test_packing_onto_a_full_disk_is_one_line_naming_the_pack_and_leaves_nothing(data: Path, full_disk: Path):
    """HDF5 used to segfault (exit 139) closing a shard whose cached chunk could not be flushed. Decoded in
    worker processes (the EFBIG variant below decodes in this one)."""
    out = full_disk / "pack"
    done = _pack_in_a_process(data, out, workers=2)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(f"weaktag pack: error: {out}: No space left on device after writing ")
    assert "the partial pack is deleted" in done.stderr
    assert list(full_disk.iterdir()) == []  # no pack, no temporary folder, no shard


@pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE is POSIX")
def test_a_shard_outgrowing_the_file_size_limit_is_one_line_and_leaves_nothing(data: Path, tmp_path: Path):
    """The real HDF5 write and close path failing without a mount: a file-size limit (as FAT32's 4 GB) fails
    the shard's writes with EFBIG, which used to segfault the same way."""
    out = tmp_path / "out" / "pack"
    done = _pack_in_a_process(data, out, workers=0, limit_file_bytes=300_000)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines() == [
        f"weaktag pack: error: {out}: File too large after writing 0.3 MB of the pack (the partial pack is deleted; "
        "the file system limits a file's size: pack with fewer --clips-per-shard, or elsewhere)"]
    assert list((tmp_path / "out").iterdir()) == []


def _fail_writing(monkeypatch, what: str) -> None:
    """Make one step of writing a pack fail as a full disk does: the audio, a shard's labels or pack.json."""
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if what == "audio":
        real = h5py.Dataset.__setitem__
        calls = []

        def write(self, key, value):
            calls.append(key)
            if len(calls) == 2:  # the first shard's last samples, at its close: a whole chunk is written before
                no_space()
            real(self, key, value)

        monkeypatch.setattr(h5py.Dataset, "__setitem__", write)
    elif what == "labels":
        real_create = h5py.Group.create_dataset

        def create(self, name, *args, **kwargs):
            if name == "clip_id" and self.file.filename.endswith("shard-00001.h5"):
                no_space()
            return real_create(self, name, *args, **kwargs)

        monkeypatch.setattr(h5py.Group, "create_dataset", create)
    else:
        monkeypatch.setattr(packing, "write_json", no_space)


@pytest.mark.parametrize("what, workers", [("audio", 0), ("audio", 2), ("labels", 2), ("pack.json", 0)])
def test_a_write_failing_for_want_of_space_is_one_line_and_leaves_nothing(data: Path, tmp_path: Path, capsys,
                                                                          monkeypatch, what: str, workers: int):
    _fail_writing(monkeypatch, what)
    out = tmp_path / "out" / "pack"
    assert main(["pack", "--labels", str(data / "train" / "manifest.jsonl"), "--out", str(out),
                 "--workers", str(workers), "--clips-per-shard", "10", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"weaktag pack: error: {out}: No space left on device after ")
    assert err[0].endswith("(the partial pack is deleted; free some space or pack elsewhere)")
    assert list((tmp_path / "out").iterdir()) == []


def test_the_writer_holds_under_a_chunk_of_audio_and_writes_every_sample(tmp_path: Path):
    """Whole chunks are written as they fill (HDF5 caches none: see _ShardWriter), the rest at close."""
    rng = np.random.default_rng(0)
    chunk = packing.AUDIO_CHUNK
    waves = [rng.integers(-2000, 2000, n, dtype=np.int16) for n in (1000, chunk + 5, 3, 2 * chunk)]
    writer = packing._ShardWriter(tmp_path / "shard.h5", ["a"], 16000)
    clip = Clip("x", None, frozenset({"a"}))
    for wave in waves:
        writer.add(clip, wave)
        on_disk = len(writer.audio)
        assert on_disk % chunk == 0 and 0 <= writer.offsets[-1] - on_disk < chunk
    assert len(writer.audio) == 3 * chunk
    writer.close()
    with h5py.File(tmp_path / "shard.h5", "r") as f:
        offsets = f["audio_offsets"][()]
        assert [f["audio"][a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])] == [w.tolist() for w in waves]


def test_a_killed_packs_temporary_folder_is_removed_by_the_next_pack(data: Path, tmp_path: Path):
    stale = tmp_path / f".pack.partial-{2 ** 22 + 12345}"  # above Linux's largest pid: that process is gone
    (stale / "half").mkdir(parents=True)
    live = tmp_path / f".pack.partial-{os.getppid()}"  # a running process: maybe a pack under way, kept
    live.mkdir()
    pack(read_labels(data / "validation" / "manifest.jsonl"), tmp_path / "pack", progress=False)
    assert not stale.exists() and live.exists()


def test_a_non_empty_folder_is_refused_and_only_a_pack_is_overwritten(data: Path, tmp_path: Path):
    manifest = read_labels(data / "validation" / "manifest.jsonl")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=f"{out}: folder exists and is not empty"):
        pack(manifest, out, progress=False)
    with pytest.raises(ValueError, match="not a weaktag pack"):
        pack(manifest, out, progress=False, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"

    target = tmp_path / "pack"
    pack(manifest, target, clips_per_shard=8, progress=False)
    report = pack(manifest, target, clips_per_shard=3, progress=False, overwrite=True)
    assert len(report.shards) == 3 and sorted(p.name for p in target.glob("shard-*.h5")) == [
        "shard-00000.h5", "shard-00001.h5", "shard-00002.h5"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_damaged_pack_is_a_label_error_naming_the_file(data: Path, tmp_path: Path):
    pack(read_labels(data / "validation" / "manifest.jsonl"), tmp_path / "pack", clips_per_shard=4, progress=False)
    (tmp_path / "pack" / "shard-00001.h5").write_bytes(b"not hdf5")
    with pytest.raises(LabelError, match="shard-00001.h5: cannot read pack shard"):
        read_labels(tmp_path / "pack")
    index = tmp_path / "pack" / "pack.json"
    index.write_text(json.dumps({**json.loads(index.read_text()), "version": 99}))
    with pytest.raises(LabelError, match="pack.json: pack format version 99"):
        read_labels(tmp_path / "pack")


def test_pack_cli_prints_the_summary_and_errors_in_one_line(data: Path, tmp_path: Path, capsys):
    out = tmp_path / "pack"
    argv = ["pack", "--labels", str(data / "train" / "strong.tsv"), "--audio-dir", str(data / "train" / "audio"),
            "--out", str(out), "--clips-per-shard", "10", "--workers", "2", "--quiet"]
    assert main(argv) == 0
    assert "16 clips packed in 2 shard(s) at 16000 Hz" in capsys.readouterr().out
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (f"weaktag pack: error: {out}: folder exists and is not empty "
                                               "(pack with --overwrite to replace a pack)")
    # strong.tsv names files beside it; the audio is in audio/: every clip is missing
    assert main(["pack", "--labels", str(data / "train" / "strong.tsv"), "--out", str(tmp_path / "p2"),
                 "--quiet", "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no clip could be packed: all 16 skipped" in err and "is the audio folder right?" in err
    assert not (tmp_path / "p2").exists()


def _config(tmp_path: Path, data: Path, train: Path, workers: int) -> Path:
    config = {
        "data": {"train": str(train), "validation": str(data / "validation" / "manifest.jsonl")},
        "model": {"width": 0.125, "batch_norm": True},
        "scheme": {"name": "attention"},
        "train": {"lr": 1e-3, "batch_size": 8, "max_epochs": 1, "seed": 0, "progress": False,
                  "accelerator": "cpu", "num_workers": workers, "logger": "none"},
        "output_dir": str(tmp_path / "run"),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_training_reads_a_pack_as_it_reads_the_files(data: Path, tmp_path: Path, capsys):
    manifest_path = data / "train" / "manifest.jsonl"
    assert main(["pack", "--labels", str(manifest_path), "--out", str(tmp_path / "pack"), "--quiet"]) == 0
    from_pack = prepare_data(load_config(_config(tmp_path, data, tmp_path / "pack", workers=2)))
    from_files = prepare_data(load_config(_config(tmp_path, data, manifest_path, workers=0)))
    assert [c.clip_id for c in from_pack.train.clips] == [c.clip_id for c in from_files.train.clips]
    assert torch.equal(from_pack.train.features, from_files.train.features)
    assert torch.equal(torch.from_numpy(from_pack.train.weak), torch.from_numpy(from_files.train.weak))

    assert main(["train", "--config", str(_config(tmp_path, data, tmp_path / "pack", workers=2))]) == 0
    assert "checkpoint:" in capsys.readouterr().out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best_epoch"] == 1  # 1-based, as the epoch lines count
