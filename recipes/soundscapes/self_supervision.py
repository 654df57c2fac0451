#!/usr/bin/env python
"""Benchmark (outside CI): self-supervised attention, the paper's and weaktag's extension, and PSL.

    python recipes/soundscapes/self_supervision.py                       # both parts
    python recipes/soundscapes/self_supervision.py --part scratch        # 10 paired trials, today's recipe
    python recipes/soundscapes/self_supervision.py --part recommended    # 5 paired trials, the recommended recipe
    python recipes/soundscapes/self_supervision.py --smoke               # 1 trial, 2 epochs, into recipes/soundscapes/work/*-smoke

Data: the real-recording soundscapes of ``recipes/soundscapes/work/soundscapes.yaml`` (built from ../shared/data if
missing). Arms: ``attention`` (Table I row 4), ``attention-self`` (row 6, the paper's rule),
``attention-self-ext`` (weaktag's extension), ``psl`` (Dinkel et al. 2022; its teacher is the
``attention`` trial of the same seed) and ``attention-strong`` (row 5, uses the strong labels).

1. **scratch**: today's recipe (narrow VGGish from scratch, 10 epochs), 10 paired trials so that
   Wilcoxon p < 0.05 is reachable; report -> ``recipes/soundscapes/results/self_supervision/``.
2. **recommended**: the same arms on the recommended recipe (frozen pretrained aisfx), 5 paired
   trials; report -> ``recipes/soundscapes/results/self_supervision/recommended/``.

Trials of the quality benchmark (``recipes/soundscapes/work/quality``) made with the same settings are copied
in (hard links) and reused rather than trained again; ``compare`` checks their fingerprints.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent  # recipes/soundscapes
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
import compare_soundscapes as soundscapes  # noqa: E402  (the data builder and the report copier)
from compare_soundscapes import compare_part, rel  # noqa: E402

RECOMMENDED = REPO / "configs" / "recommended.yaml"
ARMS = ("attention", "attention-self", "attention-self-ext", "psl", "attention-strong")
RESULTS = HERE / "results" / "self_supervision"
WORK = HERE / "work"
QUALITY = WORK / "quality"  # quality.py's comparison: its finished trials are reused where they match


def reuse_quality_trials(out_dir: Path, arms: list[str]) -> int:
    """Hard-link finished quality-benchmark trials of these arms into ``out_dir`` (never overwriting)."""
    from weaktag.experiments.trials import trial_dir

    linked = 0
    for arm in arms:
        src = trial_dir(QUALITY, arm, 0).parent
        dst = trial_dir(out_dir, arm, 0).parent
        if not src.is_dir():
            continue
        for seed_dir in sorted(src.glob("seed*")):
            target = dst / seed_dir.name
            if (seed_dir / "trial.json").exists() and not target.exists():
                shutil.copytree(seed_dir, target, copy_function=os.link)
                linked += 1
    return linked


def part(name: str, trials: int, out_dir: Path, results_dir: Path, overrides: list[str], argv: list[str],
         smoke: bool) -> None:
    recipe = name == "recommended"
    arms = [f"recommended:{a}" if recipe else a for a in ARMS]
    if not smoke:
        print(f"{name}: {reuse_quality_trials(out_dir, arms)} finished trial(s) linked from {rel(QUALITY)}")
    compare_part("recipes/soundscapes/self_supervision.py", name, arms, trials, out_dir, results_dir,
                 soundscapes.soundscapes_config(),
                 (arms[0], arms[2]), overrides, argv, RECOMMENDED if recipe else None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "scratch", "recommended"), default="all")
    parser.add_argument("--trials", type=int, default=None, help="default: 10 (scratch), 5 (recommended)")
    parser.add_argument("--smoke", action="store_true", help="1 trial, 2 epochs, into recipes/soundscapes/work/*-smoke")
    parser.add_argument("overrides", nargs="*", help="config overrides for every arm, e.g. train.max_epochs=2")
    args = parser.parse_args(argv)
    started = time.time()
    soundscapes.build_soundscapes(soundscapes.shared_data())
    suffix, results, overrides = "", RESULTS, list(args.overrides)
    if args.smoke:
        suffix, results = "-smoke", WORK / "self_supervision-smoke-results"
        overrides = ["train.max_epochs=2", *overrides]
    if args.part in ("all", "scratch"):
        part("scratch", args.trials or (1 if args.smoke else 10), WORK / f"self_supervision{suffix}", results,
             overrides, argv, args.smoke)
    if args.part in ("all", "recommended"):
        part("recommended", args.trials or (1 if args.smoke else 5), WORK / f"self_supervision-recommended{suffix}",
             results / "recommended", overrides, argv, args.smoke)
    print(f"total {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
