#!/usr/bin/env python
"""Benchmark (outside CI): M&mnet (Chou et al. 2018) and M&mnet-MS against weaktag's attention schemes and PSL.

    python recipes/soundscapes/peers.py                       # both parts, 5 paired trials each
    python recipes/soundscapes/peers.py --part scratch        # today's recipe (narrow VGGish from scratch)
    python recipes/soundscapes/peers.py --part recommended    # the recommended recipe (frozen pretrained aisfx)
    python recipes/soundscapes/peers.py --smoke               # tiny generated data, 1 trial, 1 epoch, into recipes/soundscapes/work/peers-smoke*

Data: the real-recording soundscapes of ``recipes/soundscapes/work/soundscapes.yaml`` (built from ../shared/data if
missing). Arms: ``attention`` (Table I row 4, = M&mnet's ATT baseline), ``attention-self`` (row 6),
``attention-self-ext`` (weaktag's extension), ``mmnet``, ``mmnet-ms`` and ``psl`` (its teacher is the
``attention`` trial of the same seed, so ``attention`` is listed first). Every arm of a part has the same
backbone, optimiser and data: only the supervision differs. Seeds 0 .. trials-1 are paired across arms,
so compare's report gives Wilcoxon p-values against the first arm.

Finished trials of the self-supervision benchmark (``recipes/soundscapes/work/self_supervision*``) and of the
quality benchmark (``recipes/soundscapes/work/quality``) with the same settings are hard-linked in and reused, not
trained again; a trial whose fingerprint (the settings that change its result) differs is left alone.
Reports -> ``recipes/soundscapes/results/peers/`` (scratch) and ``recipes/soundscapes/results/peers/recommended/``.
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
ARMS = ("attention", "attention-self", "attention-self-ext", "mmnet", "mmnet-ms", "psl")
RESULTS = HERE / "results" / "peers"
WORK = HERE / "work"
# finished comparisons whose trials are reused where they match, per part
REUSE = {"scratch": (WORK / "self_supervision", WORK / "quality"),
         "recommended": (WORK / "self_supervision-recommended", WORK / "quality")}
SMOKE_SPLITS = {"train": 24, "validation": 12, "test": 12}


def arm_configs(config_path: Path, recipe: bool, overrides: list[str]):
    """The configs compare will give each arm (the recipe on the soundscapes' data when ``recipe``)."""
    from weaktag.config import load_config, recipe_config

    base = load_config(config_path, overrides)
    return recipe_config(base, RECOMMENDED, overrides) if recipe else base


def reuse_trials(out_dir: Path, arms: list[str], sources: tuple[Path, ...], config) -> int:
    """Hard-link finished trials of these arms from ``sources`` into ``out_dir`` when their fingerprint
    matches this benchmark's (never overwriting, never linking a trial compare would refuse)."""
    from weaktag.experiments.trials import fingerprint, read_trial, trial_dir

    linked = 0
    for arm in arms:
        expected = fingerprint(config, arm)
        dst = trial_dir(out_dir, arm, 0).parent
        for source in sources:
            src = trial_dir(source, arm, 0).parent
            for seed_dir in sorted(src.glob("seed*")) if src.is_dir() else []:
                target = dst / seed_dir.name
                seed = seed_dir.name.removeprefix("seed")
                if target.exists() or not seed.isdigit():
                    continue
                try:
                    if read_trial(seed_dir, arm, int(seed), expected) is None:
                        continue  # not finished
                except ValueError:
                    continue  # made with other settings
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(seed_dir, target, copy_function=os.link)
                linked += 1
    return linked


def part(name: str, trials: int, out_dir: Path, results_dir: Path, config_path: Path, overrides: list[str],
         argv: list[str], smoke: bool) -> None:
    recipe = name == "recommended"
    arms = [f"recommended:{a}" if recipe else a for a in ARMS]
    if not smoke:
        linked = reuse_trials(out_dir, arms, REUSE[name], arm_configs(config_path, recipe, overrides))
        print(f"{name}: {linked} finished trial(s) linked from {', '.join(rel(p) for p in REUSE[name])}")
    compare_part("recipes/soundscapes/peers.py", name, arms, trials, out_dir, results_dir, config_path,
                 (arms[0], arms[3]),
                 overrides, argv, RECOMMENDED if recipe else None)


def smoke_config() -> Path:
    """Tiny generated soundscapes (no shared data needed) and a config on them, for checking the script."""
    import yaml
    from weaktag.synth import SynthConfig, synthesize_splits

    root = WORK / "peers-smoke-data"
    if not (root / "test" / "manifest.jsonl").exists():
        synthesize_splits(root, SMOKE_SPLITS, SynthConfig(seed=0, clip_seconds=4.0))
    config = yaml.safe_load(soundscapes.soundscapes_config().read_text())
    config["data"] = {s: str(root / s / "manifest.jsonl") for s in SMOKE_SPLITS}
    config["model"] = {"width": 0.0625, "l7_channels": 64, "batch_norm": True}
    path = root / "smoke.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "scratch", "recommended"), default="all")
    parser.add_argument("--trials", type=int, default=None, help="paired trials per arm (default 5; smoke: 1)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny generated data, 1 trial, 1 epoch, into recipes/soundscapes/work/peers-smoke*")
    parser.add_argument("overrides", nargs="*", help="config overrides for every arm, e.g. train.max_epochs=6")
    args = parser.parse_args(argv)
    started = time.time()
    suffix, results, overrides = "", RESULTS, list(args.overrides)
    if args.smoke:
        config_path = smoke_config()
        suffix, results = "-smoke", WORK / "peers-smoke-results"
        overrides = ["train.max_epochs=1", "train.batch_size=8", *overrides]
    else:
        soundscapes.build_soundscapes(soundscapes.shared_data())
        config_path = soundscapes.soundscapes_config()
    trials = args.trials or (1 if args.smoke else 5)
    if args.part in ("all", "scratch"):
        part("scratch", trials, WORK / f"peers{suffix}", results, config_path, overrides, argv, args.smoke)
    if args.part in ("all", "recommended"):
        part("recommended", trials, WORK / f"peers-recommended{suffix}", results / "recommended", config_path,
             overrides, argv, args.smoke)
    print(f"total {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
