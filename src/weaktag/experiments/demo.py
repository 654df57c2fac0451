"""``weaktag demo``: synthesize soundscapes, train ``attention`` and ``attention-self`` in a
narrow configuration, and print their test mAP side by side. Needs no data and no GPU."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..config import ExperimentConfig, config_from_dict
from ..synth import SynthConfig, synthesize_splits
from ..training import TrainResult, prepare_data, train

DEMO_SPLITS = {"train": 240, "validation": 80, "test": 120}
DEMO_SCHEMES = ("attention", "attention-self")


@dataclass
class DemoResult:
    results: dict[str, TrainResult]
    wall_seconds: float

    def table(self) -> str:
        rows = ["| scheme | test mAP | best epoch | train time (s) |", "|---|---|---|---|"]
        for name, r in self.results.items():
            rows.append(f"| {name} | {r.test_map:.3f} | {r.best_epoch} | {r.wall_seconds:.0f} |")
        return "\n".join(rows)


def demo_config(out_dir: Path, scheme: str, epochs: int, seed: int) -> ExperimentConfig:
    return config_from_dict({
        "data": {
            "train": str(out_dir / "data" / "train" / "manifest.jsonl"),
            "validation": str(out_dir / "data" / "validation" / "manifest.jsonl"),
            "test": str(out_dir / "data" / "test" / "manifest.jsonl"),
        },
        "model": {"width": 0.125, "batch_norm": True},
        "scheme": {"name": scheme},
        "train": {"lr": 1e-3, "batch_size": 16, "max_epochs": epochs, "seed": seed, "progress": False,
                  "logger": "csv", "accelerator": "cpu"},
        "output_dir": str(out_dir / "runs" / scheme),
    })


def run_demo(out_dir: str | Path = "weaktag-demo", epochs: int = 12, seed: int = 0,
             splits: dict[str, int] | None = None, log=print) -> DemoResult:
    started = time.time()
    out_dir = Path(out_dir)
    splits = splits or DEMO_SPLITS
    log(f"synthesizing {sum(splits.values())} soundscapes into {out_dir / 'data'} ...")
    synthesize_splits(out_dir / "data", splits, SynthConfig(seed=seed))
    data = prepare_data(demo_config(out_dir, DEMO_SCHEMES[0], epochs, seed))
    results = {}
    for scheme in DEMO_SCHEMES:
        log(f"training {scheme} ({epochs} epochs, narrow model) ...")
        results[scheme] = train(demo_config(out_dir, scheme, epochs, seed), data=data)
        log(f"  {scheme}: test mAP {results[scheme].test_map:.3f} (best epoch {results[scheme].best_epoch})")
    return DemoResult(results, time.time() - started)
