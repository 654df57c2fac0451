"""Inference speed and memory of ``weaktag tag``: end-to-end tagging vs the bare forward pass.

    python benchmarks/inference_speed.py                  # both parts: about 10 minutes on 2 CPU cores
    python benchmarks/inference_speed.py --part speed     # the throughput and memory tables (about 8 minutes)
    python benchmarks/inference_speed.py --part workers   # decode workers, CPU and (when present) CUDA: ~2 min
    python benchmarks/inference_speed.py --part cost      # MACs per 10 s and parameters of each model: seconds
    python benchmarks/inference_speed.py --quick          # fewer clips and repeats, no full-size onnxruntime

What is measured (random weights: speed does not depend on what the weights are):

* Models: narrow = ``ModelConfig(17, backbone=BackboneConfig(width=0.125))`` (0.1 M parameters), full size =
  ``ModelConfig(527)`` (width 1.0, 7.2 M parameters, AudioSet's 527 classes).
* Backends: PyTorch and onnxruntime (the graph of ``weaktag export``, front end included).
* Throughput on 10 s clips (16 kHz mono WAV files on disk), batch 1 and 32:
  - end-to-end: :func:`weaktag.inference.tag_files` on the folder, i.e. what ``weaktag tag DIR --out
    OUT`` does: find files, read them, batch, forward, attention pooling, event decoding,
    write tags.csv / tags.json / events.tsv / summary.json (no progress bar);
  - bare forward: the same network on the same number of clips already in memory as one
    (B, 160000) float32 array per batch; nothing else. This is the limit.
  Both are timed in the same run, interleaved (bare, end-to-end, end-to-end without events),
  ``--repeats`` times. Throughput: the best repeat (the machine may be shared; the minimum is
  the least disturbed run). Ratio end-to-end / bare: the median over repeats of the ratio of
  the two back-to-back timings. Reported: clips/s, x real time (seconds of audio per second
  of wall time), real-time factor (wall / audio), events per clip, ratios.
* Peak memory (VmHWM, peak resident set of the process) tagging one file of 1 min, 10 min
  and 1 h (44.1 kHz mono PCM16 WAV, so streaming resampling is included), narrow model,
  PyTorch, default chunking, each in a fresh subprocess; the baseline (Python, torch and the
  model loaded, nothing tagged) is reported beside it.
* Decode workers (``--part workers``): ``Tagger.tag_many`` (the issue's measurement: no output
  files) on 10 s clips with 0 and 2 ``decode_workers``, against the bare forward, PyTorch; on the
  CPU for the narrow model (16 kHz and 44.1 kHz files: the second needs resampling) and the full
  one, plus a host-side ceiling: the same runs with the network replaced by outputs it computed
  once (what the host could feed an infinitely fast accelerator). When ``torch.cuda.is_available()``:
  both models on the GPU, ``--gpu-clips`` (1000) files, batch 64, 0 and ``--gpu-workers`` workers,
  the bare forward with its input already on the GPU (front end included, synchronised), and the
  issue's targets: full width end to end >= 20,000x real time and >= 45% of its bare forward.
* Cost (``--part cost``): multiply-accumulates per 10 s clip and parameters (:mod:`weaktag.models.cost`,
  torch's FLOP counter: convolutions, linear layers, matrix products) of the two models above and of the
  recommended recipe's network (frozen aisfx, convolution neck, attention head; 21 classes, as the
  soundscapes). Counted, not timed, so the machine's load does not matter.
  A run of one part keeps the other part's figures in the JSON as they were measured.

Writes ``benchmarks/results/inference_speed.json`` and ``.md`` and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from weaktag.audio import load_audio
from weaktag.checkpoint import save_checkpoint
from weaktag.inference import Tagger, tag_files
from weaktag.inference.export import export_onnx
from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet
from weaktag.models.cost import macs_per_audio, parameter_count

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
SR = 16_000
CLIP_SECONDS = 10.0
MODELS = {"narrow": ModelConfig(17, backbone=BackboneConfig(width=0.125)), "full": ModelConfig(527)}
TARGET_E2E_RATIO = 1.3
TARGET_NARROW_SPEED = 500.0
TARGET_MEMORY_RATIO = 1.5
TARGET_GPU_SPEED = 20_000.0  # the target: full width, end to end, one H100
TARGET_GPU_SHARE = 0.45  # ... and at least this share of its bare forward's speed
MEMORY_FILES = {"1 min": 60, "10 min": 600, "1 h": 3600}


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _write_clips(folder: Path, n: int, seed: int = 0, sr: int = SR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(CLIP_SECONDS * sr)) / sr
    paths = []
    for i in range(n):
        x = rng.standard_normal(len(t)) * 0.05 + 0.3 * np.sin(2 * np.pi * rng.uniform(200, 4000) * t) * (t % 3 < 1)
        path = folder / f"clip{i:03d}.wav"
        sf.write(str(path), x.astype(np.float32), sr, subtype="PCM_16")
        paths.append(path)
    return paths


def _write_long(path: Path, seconds: int, sr: int = 44_100, seed: int = 0) -> Path:
    """A long WAV written block by block (the generator never holds the file)."""
    rng = np.random.default_rng(seed)
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
        for start in range(0, seconds, 10):
            t = np.arange(10 * sr) / sr
            x = rng.standard_normal(len(t)) * 0.05
            x += 0.3 * np.sin(2 * np.pi * rng.uniform(200, 4000) * t) * (t < rng.uniform(0, 10))
            f.write(x.astype(np.float32))
    return path


def _bare(tagger: Tagger, batch: np.ndarray) -> None:
    """The network alone on an in-memory batch: the limit end-to-end tagging is compared with."""
    if tagger.backend == "torch":
        with torch.inference_mode():
            tagger.model(torch.from_numpy(batch))
    else:  # the exported graph, and the front end in PyTorch when the graph starts at the log-mel
        tagger.runner(batch)


def bench_throughput(name: str, backend: str, batch_size: int, ckpt: Path, onnx_path: Path | None,
                     clips: list[Path], repeats: int, work: Path) -> dict:
    taggers = {events: Tagger.from_checkpoint(ckpt, backend=backend, onnx_path=onnx_path, batch_size=batch_size,
                                              detect_events=events) for events in (True, False)}
    waves = np.stack([sf.read(str(p), dtype="float32")[0] for p in clips])
    batches = [waves[i : i + batch_size] for i in range(0, len(waves), batch_size)]
    folder = clips[0].parent
    for tagger in taggers.values():  # warm up every path (allocator, oneDNN / ORT kernels)
        _bare(tagger, batches[0])
        tag_files(tagger, [folder], work / "warm", progress=False)
    times: dict[str, list[float]] = {"bare": [], "e2e": [], "e2e_tags_only": []}
    events = 0
    for r in range(repeats):
        started = time.perf_counter()
        for b in batches:
            _bare(taggers[True], b)
        times["bare"].append(time.perf_counter() - started)
        for key, tagger in (("e2e", taggers[True]), ("e2e_tags_only", taggers[False])):
            summary = tag_files(tagger, [folder], work / f"{key}{r}", progress=False)
            times[key].append(summary.wall_seconds)
            assert summary.ok == len(clips), summary.text()
            events = summary.events if key == "e2e" else events
    best = {k: min(v) for k, v in times.items()}
    audio = len(clips) * CLIP_SECONDS
    row = {"model": name, "backend": backend, "batch": batch_size, "clips": len(clips), "repeats": repeats,
           "events_per_clip": events / len(clips)}
    for key, seconds in best.items():
        row[f"{key}_seconds"] = seconds
        row[f"{key}_clips_per_s"] = len(clips) / seconds
        row[f"{key}_x_real_time"] = audio / seconds
        row[f"{key}_real_time_factor"] = seconds / audio
        row[f"all_{key}_seconds"] = times[key]
    # ratios: median over repeats of (end-to-end / bare forward) timed back to back, which a busy
    # machine disturbs less than a ratio of minima taken at different moments
    row["e2e_over_bare"] = float(np.median(np.array(times["e2e"]) / np.array(times["bare"])))
    row["e2e_tags_only_over_bare"] = float(np.median(np.array(times["e2e_tags_only"]) / np.array(times["bare"])))
    row["e2e_over_bare_of_minima"] = best["e2e"] / best["bare"]
    print(f"  {name:6s} {backend:11s} batch {batch_size:2d}: bare {row['bare_x_real_time']:6.0f}x RT; e2e "
          f"{row['e2e_x_real_time']:6.0f}x RT (ratio {row['e2e_over_bare']:.2f}, {row['events_per_clip']:.0f} "
          f"events/clip); tags only {row['e2e_tags_only_x_real_time']:6.0f}x RT (ratio "
          f"{row['e2e_tags_only_over_bare']:.2f})  [load {_load():.1f}]", flush=True)
    return row


def memory_child(ckpt: str, audio: str | None) -> None:
    """Run in a subprocess: tag ``audio`` (or nothing: baseline) and print peak RSS as JSON."""
    tagger = Tagger.from_checkpoint(ckpt)
    started = time.perf_counter()
    info: dict = {}
    if audio:
        result = tagger.tag(audio)
        info = {"duration": result.duration, "segments": result.num_segments, "events": len(result.events)}
    info.update(peak_rss_mb=_vm_hwm_mb(), seconds=time.perf_counter() - started)
    print(json.dumps(info))


def bench_memory(ckpt: Path, work: Path, sizes: dict[str, int]) -> list[dict]:
    rows = []
    for label, seconds in {"baseline (model loaded, no audio)": 0, **sizes}.items():
        audio = ""
        if seconds:
            audio = str(_write_long(work / f"long_{seconds}s.wav", seconds))
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(ckpt), audio], check=True,
                             capture_output=True, text=True)
        info = json.loads(out.stdout.strip().splitlines()[-1])
        row = {"file": label, "seconds": seconds, **info}
        if seconds:
            row["x_real_time"] = seconds / info["seconds"]
            Path(audio).unlink()
        rows.append(row)
        print(f"  memory {label:34s}: peak RSS {info['peak_rss_mb']:7.1f} MB"
              + (f", tagged in {info['seconds']:.1f} s ({row['x_real_time']:.0f}x RT)" if seconds else ""), flush=True)
    return rows


class _PrecomputedForward:
    """Stands in for the network: outputs computed once, returned for every batch, so a run times
    everything but the forward pass (what the host could feed an infinitely fast accelerator)."""

    def __init__(self, runner, batch: np.ndarray) -> None:
        self.has_attention = runner.has_attention
        xa, xb = runner(batch[:1])  # one clip's outputs, for every row: the time does not depend on them
        self.xa = np.repeat(xa, len(batch), axis=0)
        self.xb = None if xb is None else np.repeat(xb, len(batch), axis=0)

    def __call__(self, waveforms: np.ndarray):
        return self.launch(waveforms)()

    def host_batch(self, rows: int, width: int) -> np.ndarray:
        return np.empty((rows, width), dtype=np.float32)

    def launch(self, waveforms: np.ndarray):
        n = len(waveforms)
        xa, xb = self.xa[:n], None if self.xb is None else self.xb[:n]
        return lambda: (xa, xb)


def _bare_seconds(tagger: Tagger, batches: list, device: torch.device) -> float:
    """The network alone; on CUDA with its input already on the GPU, synchronised at the end."""
    if device.type != "cuda":
        started = time.perf_counter()
        for b in batches:
            _bare(tagger, b)
        return time.perf_counter() - started
    torch.cuda.synchronize(device)
    started = time.perf_counter()
    with torch.inference_mode():
        for b in batches:
            tagger.model(b)
    torch.cuda.synchronize(device)
    return time.perf_counter() - started


def bench_decode_workers(name: str, ckpt: Path, clips: list[Path], batch_size: int, workers: tuple[int, ...],
                         repeats: int, device: str = "cpu", ceiling: bool = False, files: str = "16 kHz") -> dict:
    """``tag_many`` with each number of decode workers, tags + events and clip tags only, vs the bare forward."""
    dev = torch.device(device)
    taggers = {(w, events): Tagger.from_checkpoint(ckpt, device=device, batch_size=batch_size, decode_workers=w,
                                                   detect_events=events)
               for w in workers for events in (True, False)}
    waves = np.stack([load_audio(p, SR, allow_silent=True) for p in clips])  # what the network sees: 16 kHz
    batches = [waves[i : i + batch_size] for i in range(0, len(waves), batch_size)]
    if ceiling:
        stand_in = _PrecomputedForward(next(iter(taggers.values())).runner, batches[0])
        for tagger in taggers.values():
            tagger.runner = stand_in
    bare_input = batches if dev.type != "cuda" else [torch.from_numpy(b).to(dev) for b in batches]
    first: dict = {}
    for key, tagger in taggers.items():  # warm up every path; a pool's processes start on its first run
        started = time.perf_counter()
        tagger.tag_many(clips)
        first[key] = time.perf_counter() - started
    if not ceiling:
        _bare_seconds(taggers[(0, True)], bare_input[:1], dev)
    times: dict = {"bare": [], **{key: [] for key in taggers}}
    cpu: dict = {key: [] for key in taggers}  # this process's CPU time: workers' is not in it
    events = 0
    for _ in range(repeats):
        if not ceiling:
            times["bare"].append(_bare_seconds(taggers[(0, True)], bare_input, dev))
        for key, tagger in taggers.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            results = tagger.tag_many(clips)
            times[key].append(time.perf_counter() - started)
            cpu[key].append(time.process_time() - cpu_started)
            failed = [r for r in results if not hasattr(r, "clip_probs")]
            assert not failed, failed[:3]
            if key[1]:
                events = sum(len(r.events) for r in results)
    for tagger in taggers.values():
        tagger.close()
    audio = len(clips) * CLIP_SECONDS
    row = {"model": name, "files": files, "device": str(dev), "batch": batch_size, "clips": len(clips),
           "repeats": repeats, "ceiling": ceiling, "events_per_clip": events / len(clips), "workers": {}}
    if not ceiling:
        row["bare_x_real_time"] = audio / min(times["bare"])
        row["all_bare_seconds"] = times["bare"]
    for w in workers:
        entry = {}
        for events, label in ((True, "e2e"), (False, "e2e_tags_only")):
            seconds = times[(w, events)]
            entry[f"{label}_x_real_time"] = audio / min(seconds)
            entry[f"all_{label}_seconds"] = seconds
            entry[f"{label}_first_run_seconds"] = first[(w, events)]
            entry[f"{label}_main_cpu_ms_per_clip"] = 1000 * float(np.median(cpu[(w, events)])) / len(clips)
            if not ceiling:  # share of the bare forward's speed: median of back-to-back runs
                entry[f"{label}_share_of_bare"] = float(np.median(np.array(times["bare"]) / np.array(seconds)))
        row["workers"][str(w)] = entry
    where = "host ceiling" if ceiling else f"bare {row['bare_x_real_time']:7.0f}x RT"
    print(f"  {name:6s} {files:8s} {str(dev):6s} batch {batch_size:2d} {where}: " + "; ".join(
        f"{w} workers {e['e2e_x_real_time']:6.0f}x (tags only {e['e2e_tags_only_x_real_time']:6.0f}x, "
        f"main CPU {e['e2e_tags_only_main_cpu_ms_per_clip']:.2f} ms/clip)"
        for w, e in row["workers"].items()) + f"  [load {_load():.1f}]", flush=True)
    return row


def bench_workers(args: argparse.Namespace, work: Path) -> dict:
    """The ``--part workers`` section: CPU rows always, CUDA rows when there is a GPU."""
    started = time.perf_counter()
    load_before = _load()
    ckpts = _checkpoints(work)
    repeats = args.repeats or (2 if args.quick else 3)
    n = 32 if args.quick else 64
    clips16 = _write_clips(work / "workers16", n)
    clips44 = _write_clips(work / "workers44", n, seed=1, sr=44_100)
    print("decode workers, CPU (tag_many, 10 s clips):", flush=True)
    rows = [bench_decode_workers("narrow", ckpts["narrow"], clips16, 32, (0, 2), repeats),
            bench_decode_workers("narrow", ckpts["narrow"], clips44, 32, (0, 2), repeats, files="44.1 kHz"),
            bench_decode_workers("full", ckpts["full"], clips16[:16], 16, (0, 2), min(repeats, 2)),
            bench_decode_workers("narrow", ckpts["narrow"], clips16, 32, (0, 2), repeats, ceiling=True),
            bench_decode_workers("full", ckpts["full"], clips16, 32, (0, 2), repeats, ceiling=True)]
    gpu = torch.cuda.is_available()
    info = {"cpu": _cpu_name(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "gpu": torch.cuda.get_device_name(0) if gpu else None}
    if gpu:
        gpu_workers = args.gpu_workers or max(1, min(16, (os.cpu_count() or 2) - 2))
        clips = _write_clips(work / "workers_gpu", args.gpu_clips, seed=2)
        print(f"decode workers, CUDA ({info['gpu']}, {len(clips)} clips, batch 64):", flush=True)
        for name in MODELS:
            rows.append(bench_decode_workers(name, ckpts[name], clips, 64, (0, gpu_workers), repeats, device="cuda"))
        full = rows[-1]
        best = full["workers"][str(gpu_workers)]
        targets = []
        for label, what in (("e2e", "tags + events"), ("e2e_tags_only", "clip tags only")):
            speed, share = best[f"{label}_x_real_time"], best[f"{label}_share_of_bare"]
            targets.append({"target": f"full width end to end ({what}) >= {TARGET_GPU_SPEED:,.0f}x real time on "
                                      f"the GPU, {gpu_workers} decode workers",
                            "measured": f"{speed:,.0f}x ({info['gpu']})", "met": speed >= TARGET_GPU_SPEED})
            targets.append({"target": f"... and >= {TARGET_GPU_SHARE:.0%} of the bare forward ({what})",
                            "measured": f"{share:.0%} (bare {full['bare_x_real_time']:,.0f}x)",
                            "met": share >= TARGET_GPU_SHARE})
    else:
        targets = [{"target": f"full width end to end >= {TARGET_GPU_SPEED:,.0f}x real time and >= "
                              f"{TARGET_GPU_SHARE:.0%} of the bare forward on one H100",
                    "measured": "not measured: torch.cuda.is_available() is False on this machine", "met": None}]
    info.update(load_before=load_before, load_after=_load())
    return {"machine": info, "rows": rows, "targets": targets, "wall_seconds": time.perf_counter() - started,
            "quick": args.quick}


def _checkpoints(work: Path) -> dict[str, Path]:
    ckpts = {}
    for name, config in MODELS.items():
        torch.manual_seed(0)
        model = WeakTagNet(config).eval()
        ckpts[name] = save_checkpoint(work / f"{name}.pt", model, [f"class{i}" for i in range(config.num_classes)],
                                      "attention", {})
    return ckpts


def workers_markdown(section: dict) -> list[str]:
    m = section["machine"]
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"
    lines = ["", "## Decode workers (`--part workers`)", "",
             f"{m['cpu']}, {m['cpus']} CPU cores{gpu}, torch {m['torch']} ({m['torch_threads']} threads); load "
             f"average {m['load_before']:.1f} before, {m['load_after']:.1f} after. `Tagger.tag_many` on 10 s PCM16 "
             "WAV clips (no output files), random weights, PyTorch. x RT: best repeat; share of bare: median over "
             "repeats of bare-forward time / end-to-end time. Host ceiling: the network replaced by outputs "
             "computed once, so only reading, decoding, batching, pooling and event decoding are timed. First "
             "run: the warm-up call, which starts the worker processes. Main CPU: CPU time of the tagging "
             "process per clip (median; the workers' is not in it; with the network on the CPU it includes the "
             "forward pass, on CUDA any spin-waiting for the GPU): with cores to spare for the workers, the host cannot go faster than 10 s of audio per "
             "that much CPU.", "",
             "| model | files | device | batch | clips | bare forward x RT | workers | "
             "end-to-end, tags + events: x RT, share of bare, main CPU (ms/clip) | clip tags only: x RT, share of "
             "bare, main CPU (ms/clip) | first run (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in section["rows"]:
        bare = "host ceiling" if r["ceiling"] else f"{r['bare_x_real_time']:,.0f}x"
        for w, e in r["workers"].items():
            share = "" if r["ceiling"] else f", {e['e2e_share_of_bare']:.0%}"
            share_tags = "" if r["ceiling"] else f", {e['e2e_tags_only_share_of_bare']:.0%}"
            lines.append(f"| {r['model']} | {r['files']} | {r['device']} | {r['batch']} | {r['clips']} | {bare} | "
                         f"{w} | "
                         f"{e['e2e_x_real_time']:,.0f}x{share}, {e['e2e_main_cpu_ms_per_clip']:.2f} | "
                         f"{e['e2e_tags_only_x_real_time']:,.0f}x{share_tags}, "
                         f"{e['e2e_tags_only_main_cpu_ms_per_clip']:.2f} | "
                         f"{e['e2e_first_run_seconds']:.2f} |")
    lines += ["", "Targets (the GPU issue):", ""]
    for t in section["targets"]:
        verdict = "not measured" if t["met"] is None else ("met" if t["met"] else "MISSED")
        lines.append(f"- {t['target']}: {t['measured']} -> **{verdict}**")
    return lines


def cost_models() -> dict[str, ModelConfig]:
    """:data:`MODELS` and the recommended recipe's network (which needs the aisfx package)."""
    from weaktag.config import load_config

    recipe = load_config("recommended", []).model
    return {**MODELS, "recommended": ModelConfig(21, True, recipe.backbone_config(), recipe.neck_config())}


def run_cost() -> dict:
    """The ``--part cost`` section: MACs per 10 s clip and parameters of every model."""
    rows = []
    for name, config in cost_models().items():
        net = WeakTagNet(config)
        rows.append({"model": name, "macs_per_10s": macs_per_audio(net, CLIP_SECONDS),
                     "parameters": parameter_count(net)})
    return {"rows": rows}


def cost_markdown(section: dict) -> list[str]:
    lines = ["", "## Cost per 10 s clip", "",
             "MACs: convolutions, linear layers and matrix products of one forward pass (torch's FLOP counter, "
             "halved); the front end's FFT and element-wise work are not counted.", "",
             "| model | MACs per 10 s (G) | parameters (M) |", "|---|---:|---:|"]
    for r in section["rows"]:
        lines.append(f"| {r['model']} | {r['macs_per_10s'] / 1e9:.2f} | {r['parameters'] / 1e6:.2f} |")
    return lines


def to_markdown(report: dict) -> str:
    lines = ["# Inference speed (`benchmarks/inference_speed.py`)"]
    if "throughput" in report:
        lines += speed_markdown(report)
    if "decode_workers" in report:
        lines += workers_markdown(report["decode_workers"])
    if "cost" in report:
        lines += cost_markdown(report["cost"])
    return "\n".join(lines) + "\n"


def speed_markdown(report: dict) -> list[str]:
    lines = ["",
             f"{report['machine']['cpu']}, {report['machine']['cpus']} CPU cores, torch {report['machine']['torch']} "
             f"({report['machine']['torch_threads']} threads), onnxruntime {report['machine']['onnxruntime']}; "
             f"load average {report['machine']['load_before']:.1f} before, {report['machine']['load_after']:.1f} after. "
             "Random weights (with random weights about 2/3 of the classes hover around 0.5, so event decoding "
             "finds far more events than a trained model would: see events/clip). 10 s clips, 16 kHz WAV files. "
             "Throughput: best repeat; ratio: median over repeats of back-to-back end-to-end / bare.", "",
             "| model | backend | batch | bare forward: clips/s, x RT | end-to-end, tags + events: clips/s, x RT, "
             "RTF | ratio to bare | events/clip | end-to-end, clip tags only: clips/s, x RT | ratio to bare |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in report["throughput"]:
        lines.append(f"| {r['model']} | {r['backend']} | {r['batch']} | {r['bare_clips_per_s']:.1f}, "
                     f"{r['bare_x_real_time']:.0f}x | {r['e2e_clips_per_s']:.1f}, {r['e2e_x_real_time']:.0f}x, "
                     f"{r['e2e_real_time_factor']:.5f} | {r['e2e_over_bare']:.2f} | {r['events_per_clip']:.1f} | "
                     f"{r['e2e_tags_only_clips_per_s']:.1f}, {r['e2e_tags_only_x_real_time']:.0f}x | "
                     f"{r['e2e_tags_only_over_bare']:.2f} |")
    lines += ["", "Peak memory tagging one long file (narrow model, PyTorch, 44.1 kHz WAV, default 30.72 s chunks):", "",
              "| file | peak RSS (MB) | tagging time (s) | x real time |", "|---|---|---|---|"]
    for r in report["memory"]:
        speed = f"{r['x_real_time']:.0f}x" if r.get("seconds") and "x_real_time" in r else "-"
        secs = f"{r['seconds']:.1f}" if r["seconds"] else "-"
        lines.append(f"| {r['file']} | {r['peak_rss_mb']:.0f} | {secs} | {speed} |")
    lines += ["", "Targets:", ""]
    for t in report["targets"]:
        lines.append(f"- {t['target']}: {t['measured']} -> **{'met' if t['met'] else 'MISSED'}**")
    return lines


def run_speed(args: argparse.Namespace) -> dict:
    """The throughput and memory tables (``--part speed``)."""
    import onnxruntime

    started = time.perf_counter()
    load_before = _load()
    rows = []
    with tempfile.TemporaryDirectory(prefix="weaktag-bench-") as tmp:
        work = Path(tmp)
        ckpts = _checkpoints(work)
        onnx_paths = {name: export_onnx(ckpts[name], work / f"{name}.onnx").path for name in MODELS}
        plan = {  # model -> (clips, repeats)
            "narrow": (64, args.repeats or (2 if args.quick else 5)),
            "full": (32 if not args.quick else 16, args.repeats or (1 if args.quick else 3)),
        }
        print("throughput on 10 s clips:", flush=True)
        for name in MODELS:
            n_clips, repeats = plan[name]
            clips = _write_clips(work / f"clips_{name}", n_clips)
            for backend in ("torch", "onnxruntime"):
                if args.quick and name == "full" and backend == "onnxruntime":
                    continue
                for batch in (1, 32):
                    rows.append(bench_throughput(name, backend, batch, ckpts[name], onnx_paths[name] if backend ==
                                                 "onnxruntime" else None, clips, repeats, work / f"run_{name}_{backend}_{batch}"))
        print("peak memory, one long file:", flush=True)
        sizes = {"1 min": 60, "10 min": 600} if args.quick else MEMORY_FILES
        memory = bench_memory(ckpts["narrow"], work, sizes)

    narrow_best = max((r for r in rows if r["model"] == "narrow"), key=lambda r: r["e2e_x_real_time"])
    worst = max(rows, key=lambda r: r["e2e_over_bare"])
    worst_tags = max(rows, key=lambda r: r["e2e_tags_only_over_bare"])
    mem = {r["file"]: r["peak_rss_mb"] for r in memory}
    targets = [
        {"target": f"end-to-end (tags + events) within {TARGET_E2E_RATIO}x of the bare forward, every row",
         "measured": f"worst {worst['e2e_over_bare']:.2f} ({worst['model']}, {worst['backend']}, batch {worst['batch']}); "
                     + ", ".join(f"{r['model']}/{r['backend']}/{r['batch']}: {r['e2e_over_bare']:.2f}" for r in rows),
         "met": worst["e2e_over_bare"] <= TARGET_E2E_RATIO},
        {"target": f"end-to-end, clip tags only (--no-events), within {TARGET_E2E_RATIO}x of the bare forward, every row",
         "measured": f"worst {worst_tags['e2e_tags_only_over_bare']:.2f} ({worst_tags['model']}, {worst_tags['backend']}, "
                     f"batch {worst_tags['batch']})",
         "met": worst_tags["e2e_tags_only_over_bare"] <= TARGET_E2E_RATIO},
        {"target": f"narrow model >= {TARGET_NARROW_SPEED:.0f}x real time end-to-end (tags + events) on 2 CPU cores",
         "measured": f"{narrow_best['e2e_x_real_time']:.0f}x at best ({narrow_best['backend']}, batch "
                     f"{narrow_best['batch']}); slowest narrow row "
                     f"{min(r['e2e_x_real_time'] for r in rows if r['model'] == 'narrow'):.0f}x",
         "met": min(r["e2e_x_real_time"] for r in rows if r["model"] == "narrow") >= TARGET_NARROW_SPEED},
    ]
    if "1 h" in mem:
        targets.append({"target": f"peak memory 1 h file within {TARGET_MEMORY_RATIO}x of 1 min file",
                        "measured": f"{mem['1 h']:.0f} MB vs {mem['1 min']:.0f} MB = {mem['1 h'] / mem['1 min']:.2f}x",
                        "met": mem["1 h"] <= TARGET_MEMORY_RATIO * mem["1 min"]})
    report = {
        "machine": {"cpu": _cpu_name(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                    "onnxruntime": onnxruntime.__version__, "python": platform.python_version(),
                    "load_before": load_before, "load_after": _load()},
        "weights": "random (speed does not depend on the weights)",
        "models": {k: v.to_dict() for k, v in MODELS.items()},
        "throughput": rows, "memory": memory, "targets": targets,
        "wall_seconds": time.perf_counter() - started, "quick": args.quick,
    }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("all", "speed", "workers", "cost"), default="all",
                        help="speed: throughput and memory tables; workers: decode workers (CPU, and CUDA if present); "
                             "cost: MACs and parameters")
    parser.add_argument("--quick", action="store_true", help="fewer clips and repeats; no full-size onnxruntime")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--gpu-clips", type=int, default=1000, help="clips for the CUDA rows of --part workers")
    parser.add_argument("--gpu-workers", type=int, default=None,
                        help="decode workers for the CUDA rows (default: CPU cores less two, at most 16)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--memory-child", nargs=2, metavar=("CKPT", "AUDIO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    started = time.perf_counter()
    out = Path(args.out)
    previous = out / "inference_speed.json"
    # a run of one part keeps the other part's figures as they were measured
    report = json.loads(previous.read_text()) if previous.exists() and args.part != "all" else {}
    if args.part in ("all", "speed"):
        report.update(run_speed(args))
    if args.part in ("all", "workers"):
        with tempfile.TemporaryDirectory(prefix="weaktag-bench-") as tmp:
            report["decode_workers"] = bench_workers(args, Path(tmp))
    if args.part in ("all", "cost"):
        report["cost"] = run_cost()
    out.mkdir(parents=True, exist_ok=True)
    (out / "inference_speed.json").write_text(json.dumps(report, indent=2))
    text = to_markdown(report)
    (out / "inference_speed.md").write_text(text)
    print()
    print(text)
    print(f"benchmark took {time.perf_counter() - started:.0f} s; wrote {out / 'inference_speed.json'} and .md")


if __name__ == "__main__":
    main()
