"""Reading waveforms from a pack (``weaktag pack``) against decoding the individual files.

    python benchmarks/pack_read.py              # about a minute on 2 CPU cores
    python benchmarks/pack_read.py --clips 80   # quicker

What is measured: clips/s to get every clip's waveform at 16 kHz (mono float32) through
:func:`weaktag.packing.load_clip_audio` in a ``torch.utils.data.DataLoader`` with 0 and 2 workers, as
``weaktag.data.build_feature_set`` reads them, for the same clips (a) from their files (decode +
resample) and (b) from a pack of them (an HDF5 slice + int16 -> float32). Audio: ESC-10 from
``../shared/data/esc10`` when present (44.1 kHz Ogg Vorbis, 5 s: a realistic decode and resample cost),
else synthetic 44.1 kHz 16-bit WAVs of 5 s written to a temporary folder. Each setting runs ``--repeats``
times after one warm-up pass (page cache warm for both); the best repeat is reported (the machine may be
shared). The time to make the pack (2 workers) is reported beside it.

Writes ``benchmarks/results/pack_read.json`` and ``.md`` and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset

from weaktag.labels import Clip, Manifest, read_labels
from weaktag.packing import close_shards, load_clip_audio, pack

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
ESC10 = ROOT.parent.parent / "shared" / "data" / "esc10"
SR = 16_000


class _Waves(Dataset):
    def __init__(self, clips: list[Clip]) -> None:
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(load_clip_audio(self.clips[i], SR))


def _esc10(n: int) -> tuple[list[Clip], str]:
    files = sorted(ESC10.glob("*/*.ogg"))
    step = max(1, len(files) // n)  # spread over the classes
    chosen = files[::step][:n]
    clips = [Clip(f"{p.parent.name}/{p.stem}", p, frozenset({p.parent.name})) for p in chosen]
    return clips, "ESC-10 (../shared/data/esc10): 44.1 kHz Ogg Vorbis, 5 s"


def _synthetic(n: int, folder: Path) -> tuple[list[Clip], str]:
    rng = np.random.default_rng(0)
    t = np.arange(5 * 44_100) / 44_100
    clips = []
    for i in range(n):
        x = 0.05 * rng.standard_normal(len(t)) + 0.3 * np.sin(2 * np.pi * rng.uniform(200, 4000) * t)
        path = folder / f"clip{i:04d}.wav"
        sf.write(str(path), x.astype(np.float32), 44_100, subtype="PCM_16")
        clips.append(Clip(path.stem, path, frozenset({"tone"})))
    return clips, "synthetic 44.1 kHz 16-bit WAV, 5 s (../shared/data/esc10 is absent)"


def _read_all(clips: list[Clip], workers: int) -> tuple[float, int]:
    """Seconds to read every clip's waveform, and the samples read (a check that nothing was dropped)."""
    close_shards()  # each pass opens its shards afresh, as a run does
    start = time.perf_counter()
    samples = 0
    for batch in DataLoader(_Waves(clips), batch_size=8, num_workers=workers, collate_fn=list):
        samples += sum(len(w) for w in batch)
    return time.perf_counter() - start, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=400, help="clips to read (ESC-10 has 400)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(1)  # the readers are single-threaded; keep torch from competing with workers
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clips, audio = _esc10(args.clips) if ESC10.is_dir() else _synthetic(args.clips, tmp)
        start = time.perf_counter()
        report = pack(Manifest(clips), tmp / "pack", sample_rate=SR, workers=2, progress=False)
        pack_seconds = time.perf_counter() - start
        packed = read_labels(tmp / "pack").clips
        sources = {"files": clips, "pack": packed}
        rows = []
        for workers in (0, 2):
            for name, source in sources.items():
                _read_all(source, workers)  # warm-up: page cache, imports
                timings = [_read_all(source, workers) for _ in range(args.repeats)]
                seconds = min(t for t, _ in timings)
                rows.append({"source": name, "workers": workers, "clips": len(source), "seconds": round(seconds, 3),
                             "clips_per_s": round(len(source) / seconds, 1), "samples": timings[0][1]})
        close_shards()
    base = {r["workers"]: r["clips_per_s"] for r in rows if r["source"] == "files"}
    for r in rows:
        r["speedup_vs_files"] = round(r["clips_per_s"] / base[r["workers"]], 1)
    assert len({r["samples"] for r in rows}) == 1, "files and pack gave different amounts of audio"

    result = {
        "audio": audio, "clips": len(clips), "packed": report.packed, "skipped": len(report.skipped),
        "pack_seconds": round(pack_seconds, 2), "pack_clips_per_s": round(report.packed / pack_seconds, 1),
        "repeats": args.repeats, "cpus": os.cpu_count(), "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)], "machine": platform.machine(),
        "python": platform.python_version(), "torch": torch.__version__, "rows": rows,
    }
    lines = [
        "# Reading waveforms: pack vs files (`benchmarks/pack_read.py`)", "",
        f"{audio}; {len(clips)} clips to mono float32 at 16 kHz through `load_clip_audio` in a DataLoader "
        f"(as `build_feature_set` reads them); best of {args.repeats} after a warm-up pass (page cache warm); "
        f"{os.cpu_count()} CPUs, load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after (other "
        f"processes share them). Making the pack (2 workers): {pack_seconds:.1f} s, "
        f"{result['pack_clips_per_s']} clips/s.", "",
        "| source | workers | seconds | clips/s | vs files, same workers |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['source']} | {r['workers']} | {r['seconds']:.2f} | {r['clips_per_s']:.1f} | "
              f"{r['speedup_vs_files']:.1f}x |" for r in rows]
    text = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pack_read.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "pack_read.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
