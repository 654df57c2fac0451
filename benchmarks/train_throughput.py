"""Training throughput of ``weaktag train`` against the bare training step of the same network.

    python benchmarks/train_throughput.py                     # CPU: narrow and full width (about 10 minutes)
    python benchmarks/train_throughput.py --quick             # fewer clips and epochs (a smoke run)
    python benchmarks/train_throughput.py --device cuda       # on a GPU: fp32 and bf16-mixed

What is measured, for each model (narrow: VGGish width 0.125; full: width 1.0; both from scratch, attention
scheme, batch 32 on the CPU and 64 on a GPU, 10 s clips = 998 x 64 log-mel frames):

* **bare step**: forward, the scheme's loss, backward and an Adam step of the same network on batches
  already in memory (on the device), in a plain loop: the limit. clips/s over ``--bare-steps`` steps after
  warm-up steps.
* **weaktag train**: :func:`weaktag.training.train` on in-memory features of the same shape (random
  log-mel, labels from a fixed draw: speed does not depend on the values), ``--epochs`` epochs, with a
  callback that timestamps each phase. **Steady state** = the training phase of the epochs after the
  first (first batch to last batch end, which includes data loading, collation, augmentation,
  host-to-device copies, logging and Lightning's loop), as clips/s. Reported separately, as fixed costs:
  the first epoch's training phase (warm-up), validation per epoch, checkpointing per epoch (from the
  end of validation to the next epoch), and after the fit: reloading the best epoch, the validation
  predictions, tag thresholds and event calibration, writing model.pt.
* **feature preparation** (once per run): :func:`weaktag.data.build_feature_set` on synthesized
  16 kHz WAV files (read, crop, log-mel), clips/s, with 0 and 2 data-loader workers.

Target (the issue): steady-state ``weaktag train`` within 1.3x of the bare step (ratio = bare clips/s /
train clips/s <= 1.3), for both models. Writes ``benchmarks/results/train_throughput.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from weaktag.config import load_config
from weaktag.data import FeatureSet, build_feature_set
from weaktag.labels import Clip, Event
from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet
from weaktag.supervision import make_scheme
from weaktag.training import train
from weaktag.training.run import PreparedData

RESULTS = Path(__file__).resolve().parent / "results"
CLASSES = [f"class{i:02d}" for i in range(17)]  # SL-DCASE-17's number of classes
MODELS = {"narrow": 0.125, "full": 1.0}


def feature_set(n: int, seed: int) -> FeatureSet:
    """n clips of random log-mel with 1-3 labels each, strong events on half of them (so that the strong
    label path of collation runs)."""
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        labels = sorted(rng.choice(CLASSES, size=int(rng.integers(1, 4)), replace=False))
        events = tuple(Event(label, float(o), float(o) + 2.0) for label, o in zip(labels, rng.uniform(0, 8, 3)))
        clips.append(Clip(f"c{seed}_{i}", None, frozenset(labels), events if i % 2 == 0 else None, 10.0))
    features = torch.randn(n, 998, 64, generator=torch.Generator().manual_seed(seed)) - 4.0
    return FeatureSet(clips, CLASSES, features)


def bare_step(width: float, data: FeatureSet, batch: int, steps: int, device: str, precision: str) -> dict:
    """Forward + loss + backward + Adam on in-memory batches on the device, nothing else."""
    torch.manual_seed(0)
    scheme = make_scheme("attention")
    model = WeakTagNet(ModelConfig(len(CLASSES), True, BackboneConfig(width=width))).to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = [data.collate(list(range(s, s + batch))) for s in range(0, len(data) - batch + 1, batch)]
    batches = [(b.features.to(device), b) for b in batches]
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
    autocast = precision.endswith("-mixed")

    def step(i: int) -> None:
        x, b = batches[i % len(batches)]
        b = type(b)(x, b.weak.to(device), b.strong.to(device), b.has_strong.to(device))
        with torch.autocast(torch.device(device).type, dtype=dtype, enabled=autocast):
            loss = scheme.loss(model.forward_features(x), b).total
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    for i in range(3):  # warm-up: allocator, kernels, thread pools
        step(i)
    _sync(device)
    started = time.perf_counter()
    for i in range(steps):
        step(i)
    _sync(device)
    seconds = time.perf_counter() - started
    return {"clips_per_s": steps * batch / seconds, "steps": steps, "seconds": seconds}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class PhaseTimer(L.Callback):
    """Timestamps of each epoch's phases (training batches, validation, what follows)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.epochs: list[dict] = []
        self._mark = 0.0

    def _now(self) -> float:
        _sync(self.device)
        return time.perf_counter()

    def on_train_epoch_start(self, trainer, module) -> None:
        now = self._now()
        if self.epochs:  # the previous epoch's checkpointing and bookkeeping ended here
            self.epochs[-1]["after_validation"] = now - self._mark
        self.epochs.append({})
        self._mark = now
        if len(self.epochs) == 1:
            self.first_epoch_started = now

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.epochs[-1]["train"] = self._now() - self._mark  # up to the last batch seen so far

    def on_validation_start(self, trainer, module) -> None:
        self._val_start = self._now()

    def on_validation_end(self, trainer, module) -> None:
        now = self._now()
        self.epochs[-1]["validation"] = now - self._val_start
        self._mark = now

    def on_fit_end(self, trainer, module) -> None:
        now = self._now()
        self.epochs[-1]["after_validation"] = now - self._mark
        self.fit_ended = now


def train_run(width: float, data: PreparedData, batch: int, epochs: int, device: str, precision: str,
              out: Path) -> dict:
    accelerator = "gpu" if device.startswith("cuda") else "cpu"
    config = load_config(None, [f"model.width={width}", "scheme.name=attention", f"train.batch_size={batch}",
                                f"train.max_epochs={epochs}", f"train.accelerator={accelerator}",
                                f"train.precision={precision}", "train.progress=false", "train.logger=none",
                                "train.event_output=segment", f"output_dir={out}"])
    timer = PhaseTimer(device)
    started = time.perf_counter()
    result = train(config, data=data, callbacks=[timer], overwrite=True)  # each measurement starts over
    ended = time.perf_counter()
    steady = timer.epochs[1:]
    steady_train = float(np.median([e["train"] for e in steady]))
    return {
        "clips_per_s": len(data.train) / steady_train,
        "epoch_train_seconds": [e["train"] for e in timer.epochs],
        "first_epoch_train_seconds": timer.epochs[0]["train"],
        "validation_seconds_per_epoch": float(np.median([e["validation"] for e in timer.epochs])),
        "checkpoint_seconds_per_epoch": float(np.median([e["after_validation"] for e in timer.epochs[:-1]]))
        if len(timer.epochs) > 1 else None,
        "after_fit_seconds": ended - timer.fit_ended,  # best epoch reload, thresholds, calibration, model.pt
        "before_first_epoch_seconds": timer.first_epoch_started - started,  # model, trainer, loaders
        "wall_seconds": ended - started,
        "best_val_map": result.best_val_map,
    }


def feature_preparation(clips: int, workers: int) -> dict:
    from weaktag.synth import SynthConfig, synthesize

    with tempfile.TemporaryDirectory() as tmp:
        manifest = synthesize(Path(tmp) / "data", SynthConfig(num_clips=clips, seed=1))
        rates = {}
        for n in workers:
            started = time.perf_counter()
            build_feature_set(manifest, num_workers=n)
            rates[n] = clips / (time.perf_counter() - started)
    return {f"workers_{n}": rate for n, rate in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--models", default="narrow,full")
    parser.add_argument("--precisions", default=None, help="default: 32-true on CPU, 32-true,bf16-mixed on CUDA")
    parser.add_argument("--out", default=str(RESULTS / "train_throughput"))
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    precisions = (args.precisions or ("32-true,bf16-mixed" if cuda else "32-true")).split(",")
    batch = 64 if cuda else 32
    rows = []
    for name in args.models.split(","):
        width = MODELS[name]
        full_on_cpu = width == 1.0 and not cuda
        n_train = batch * (2 if args.quick else (4 if full_on_cpu else 8))
        epochs = 2 if args.quick else (3 if full_on_cpu else 4)
        data = PreparedData(CLASSES, feature_set(n_train, 1), feature_set(batch, 2))
        for precision in precisions:
            bare = bare_step(width, data.train, batch, steps=(n_train // batch) * (epochs - 1), device=args.device,
                             precision=precision)
            with tempfile.TemporaryDirectory() as tmp:
                run = train_run(width, data, batch, epochs, args.device, precision, Path(tmp) / "run")
            row = {"model": name, "width": width, "device": args.device, "precision": precision, "batch": batch,
                   "train_clips": n_train, "epochs": epochs, "bare_clips_per_s": bare["clips_per_s"],
                   "train_clips_per_s": run["clips_per_s"], "ratio": bare["clips_per_s"] / run["clips_per_s"],
                   "bare": bare, "train": run}
            rows.append(row)
            print(f"{name} {precision}: bare {bare['clips_per_s']:.1f} clips/s, train {run['clips_per_s']:.1f} clips/s,"
                  f" ratio {row['ratio']:.2f}", flush=True)
    prep = feature_preparation(16 if args.quick else 64, [0, 2])
    report = {"machine": {"platform": platform.platform(), "torch": torch.__version__,
                          "threads": torch.get_num_threads(),
                          "cuda": torch.cuda.get_device_name(0) if cuda else None},
              "rows": rows, "feature_preparation_clips_per_s": prep, "quick": args.quick}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = "" if not cuda else "_cuda"
    out.with_name(out.name + suffix).with_suffix(".json").write_text(json.dumps(report, indent=2))
    text = markdown(report)
    out.with_name(out.name + suffix).with_suffix(".md").write_text(text)
    print(text)


def markdown(report: dict) -> str:
    lines = ["# Training throughput: `weaktag train` against the bare step", "",
             f"Machine: {report['machine']['platform']}, torch {report['machine']['torch']}, "
             f"{report['machine']['threads']} threads" + (f", {report['machine']['cuda']}" if report['machine']['cuda']
                                                           else ", no GPU") + ". "
             "Produced by `python benchmarks/train_throughput.py` (see its docstring for what each column is).", "",
             "| model | device | precision | batch | bare step (clips/s) | weaktag train, steady state (clips/s) | "
             "ratio (target <= 1.3) | first epoch (s) | validation / epoch (s) | checkpoint / epoch (s) | "
             "after fit (s) |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        t = r["train"]
        ckpt = "" if t["checkpoint_seconds_per_epoch"] is None else f"{t['checkpoint_seconds_per_epoch']:.2f}"
        lines.append(f"| {r['model']} (width {r['width']}) | {r['device']} | {r['precision']} | {r['batch']} | "
                     f"{r['bare_clips_per_s']:.1f} | {r['train_clips_per_s']:.1f} | {r['ratio']:.2f} | "
                     f"{t['first_epoch_train_seconds']:.2f} | {t['validation_seconds_per_epoch']:.2f} | {ckpt} | "
                     f"{t['after_fit_seconds']:.2f} |")
    prep = report["feature_preparation_clips_per_s"]
    lines += ["", "Feature preparation (read 10 s 16 kHz WAV files, crop, log-mel), clips/s: "
              + ", ".join(f"{k.replace('_', ' ')}: {v:.1f}" for k, v in prep.items()), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
