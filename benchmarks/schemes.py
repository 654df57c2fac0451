"""Benchmark: all seven training schemes on real-recording soundscapes, several seeds each.

Builds soundscapes from ../shared/data (events from esc10/ and dcase2016_task2_events/ over
backgrounds/), trains every scheme of weaktag.supervision in a narrow configuration with
each seed, and writes benchmarks/results/schemes.{md,json}: test mAP (and AUC, PSDS,
event F1) mean +- std per scheme, wall time, and the exact command.

    python benchmarks/schemes.py                 # the configuration quoted in the results
    python benchmarks/schemes.py --seeds 1 --epochs 1 --clips 40,16,24   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from weaktag.config import config_from_dict
from weaktag.supervision import SCHEMES
from weaktag.synth import SynthConfig, synthesize_splits
from weaktag.train import prepare_data, train

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
WORK = ROOT / "benchmarks" / "work"  # git-ignored


def combined_sources(work: Path) -> Path:
    """One <class>/<file> view (symlinks) over esc10's class folders and the flat DCASE 2016 bank."""
    view = work / "sources"
    if view.exists():
        return view
    for class_dir in sorted((SHARED / "esc10").iterdir()):
        if class_dir.is_dir():
            (view / class_dir.name).mkdir(parents=True, exist_ok=True)
            for f in sorted(class_dir.iterdir()):
                os.symlink(f, view / class_dir.name / f.name)
    for f in sorted((SHARED / "dcase2016_task2_events").glob("*.wav")):
        label = re.sub(r"\d+$", "", f.stem)
        (view / label).mkdir(parents=True, exist_ok=True)
        os.symlink(f, view / label / f.name)
    return view


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--clips", default="480,160,240", help="train,validation,test clip counts")
    parser.add_argument("--schemes", default=",".join(SCHEMES))
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "schemes"))
    args = parser.parse_args()
    if not SHARED.exists():
        print(f"skipping: {SHARED} is absent (the benchmark needs ../shared/data)")
        return 0
    started = time.time()
    n_train, n_val, n_test = (int(x) for x in args.clips.split(","))
    data_dir = WORK / f"soundscapes_{n_train}_{n_val}_{n_test}"
    if not (data_dir / "test" / "manifest.jsonl").exists():
        synthesize_splits(data_dir, {"train": n_train, "validation": n_val, "test": n_test}, SynthConfig(seed=0),
                          sources=combined_sources(WORK), backgrounds=SHARED / "backgrounds")
    synth_seconds = time.time() - started

    def config(scheme: str, seed: int):
        return config_from_dict({
            "data": {split: str(data_dir / split / "manifest.jsonl") for split in ("train", "validation", "test")}
            | {"audio_dir": ""},
            "model": {"width": args.width, "batch_norm": True},
            "scheme": {"name": scheme},
            "train": {"lr": 1e-3, "batch_size": 16, "max_epochs": args.epochs, "seed": seed, "progress": False,
                      "logger": "none", "accelerator": "cpu"},
            "output_dir": str(WORK / "runs" / data_dir.name / scheme / f"seed{seed}"),
        })

    schemes = args.schemes.split(",")
    data = prepare_data(config(schemes[0], 0))
    runs: dict[str, list[dict]] = {s: [] for s in schemes}
    for seed in range(args.seeds):
        for scheme in schemes:
            result = train(config(scheme, seed), data=data)
            from weaktag.checkpoint import load_checkpoint

            metrics = load_checkpoint(result.checkpoint).metrics["test"]
            row = {"seed": seed, "mAP": metrics["mAP"], "AUC": metrics["AUC"], "best_epoch": result.best_epoch,
                   "wall_seconds": result.wall_seconds, **{k: v for k, v in metrics.get("events", {}).items()}}
            runs[scheme].append(row)
            print(f"{scheme:22s} seed {seed}: mAP {row['mAP']:.4f}  psds1 {row.get('psds1', float('nan')):.3f}  "
                  f"({result.wall_seconds:.0f} s)", flush=True)

    def stat(scheme: str, key: str) -> tuple[float, float]:
        values = np.array([r[key] for r in runs[scheme] if r.get(key) is not None], dtype=float)
        return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")

    keys = ["mAP", "AUC", "psds1", "psds2", "segment_f1_macro", "event_f1_macro"]
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, ROOT)] + sys.argv[1:])
    total = time.time() - started
    lines = [
        "# Training schemes on real-recording soundscapes",
        "",
        f"Command: `{command}`  ",
        f"Data: {n_train} train / {n_val} validation / {n_test} test clips of 10 s, events from esc10 + "
        f"dcase2016_task2_events over backgrounds/ ({len(data.classes)} classes; synthesis {synth_seconds:.0f} s).  ",
        f"Model: width {args.width} ({args.epochs} epochs, Adam 1e-3, batch 16, best epoch on validation mAP); "
        f"{args.seeds} seeds per scheme; total wall time {total / 60:.1f} min on {os.cpu_count()} CPU cores.",
        "",
        "| scheme | " + " | ".join(keys) + " | s / run |",
        "|---|" + "---|" * (len(keys) + 1),
    ]
    summary = {}
    for scheme in schemes:
        cells, summary[scheme] = [], {}
        for key in keys:
            mean, std = stat(scheme, key)
            summary[scheme][key] = {"mean": mean, "std": std}
            cells.append(f"{mean:.3f} ± {std:.3f}")
        wall = np.mean([r["wall_seconds"] for r in runs[scheme]])
        lines.append(f"| {scheme} | " + " | ".join(cells) + f" | {wall:.0f} |")
    lines += ["", "Values are mean ± sample std over seeds, on the test split; PSDS and F1 use the strong test labels."]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"command": command, "total_seconds": total, "classes": data.classes,
                                                     "summary": summary, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
