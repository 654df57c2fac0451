#!/usr/bin/env python
"""Benchmark (outside CI, issue 24): small students distilled from the recommended model, on the soundscapes v2.

    python recipes/soundscapes/distill.py                # 3 paired trials on test_final
    python recipes/soundscapes/distill.py --trials 1     # fewer
    python recipes/soundscapes/distill.py --smoke        # 1 trial, 1 epoch, into work/distill-smoke

Data: ``recipes/soundscapes/soundscapes2.py`` (built if missing), as ``detection.py``. Arms, each trial i on
seed i, ``data.test`` = ``test_final``:

* ``recommended:attention``: the teacher (the recommended recipe);
* ``narrow:attention``: the narrow VGGish on the clip labels alone;
* ``narrow-distill:distill``: the same network distilled from the teacher's same-seed trial (``weaktag distill``:
  the teacher's clip and segment outputs on 2 s chunks, the clip labels mixed in);
* ``mobilenet-distill:distill``: a MobileNetV2-style student (``model.backbone=mobilenetv2``, width
  :data:`MOBILENET_WIDTH`, on the 16 kHz log-mel) distilled the same way.

The teacher's and ``narrow:attention``'s trials of ``peers_v2.py --part final`` (same recipes and seeds) are
linked in and reused (compare checks their fingerprints). Report -> ``results/distill/``; the speed of each model
is ``benchmarks/inference_speed.py``'s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent  # recipes/soundscapes
sys.path.insert(0, str(HERE))
import compare_soundscapes as soundscapes  # noqa: E402  (shared data, report copier)
import detection  # noqa: E402  (the v2 compare and recipe writing)
import soundscapes2 as data2  # noqa: E402  (the v2 data)
from compare_soundscapes import rel  # noqa: E402

SCRIPT = "recipes/soundscapes/distill.py"
WORK = HERE / "work"
RESULTS = HERE / "results" / "distill"
TEACHER = "recommended:attention"
ARMS = (TEACHER, "narrow:attention", "narrow-distill:distill", "mobilenet-distill:distill")
MOBILENET_WIDTH = 0.5  # a half-width MobileNetV2: its MACs per 10 s near the narrow VGGish's few
REUSED_FROM = WORK / "peers-v2"  # the same teacher and narrow trials


def student_recipe(folder: Path, name: str, model: dict | None = None) -> Path:
    """The narrow recipe (with ``model`` settings over its own) as a distilled student of :data:`TEACHER`."""
    from importlib.resources import files

    recipe = detection.recipe_yaml(Path(str(files("weaktag.recipes") / "narrow.yaml")))
    recipe["model"] = {**recipe.get("model", {}), **(model or {})}
    recipe["scheme"] = {"name": "distill", "teacher_arm": TEACHER}
    return detection.write_recipe(recipe, folder / f"{name}.yaml")


def link_reused_trials(work: Path, trials: int) -> None:
    """Hard links of :data:`REUSED_FROM`'s finished trials of the arms this run shares with it."""
    for arm in (TEACHER, "narrow:attention"):
        recipe, scheme = arm.split(":")
        for seed in range(trials):
            source = REUSED_FROM / "runs" / recipe / scheme / f"seed{seed}"
            target = work / "runs" / recipe / scheme / f"seed{seed}"
            if not (source / "trial.json").exists() or target.exists():
                continue
            for path in sorted(source.rglob("*")):
                destination = target / path.relative_to(source)
                if path.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                else:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    os.link(path, destination)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="1 trial, 1 epoch, into recipes/soundscapes/work/"
                        "distill-smoke")
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides of every arm")
    args = parser.parse_args(argv)
    started = time.time()
    data2.build_soundscapes2(soundscapes.shared_data())
    work = WORK / ("distill-smoke" if args.smoke else "distill")
    trials = 1 if args.smoke else args.trials
    smoke = detection.SMOKE_OVERRIDES if args.smoke else []
    if not args.smoke:
        link_reused_trials(work, trials)
    recipes = {"recommended": rel(detection.RECOMMENDED), "narrow": "narrow",
               "narrow-distill": rel(student_recipe(work / "recipes", "narrow-distill")),
               "mobilenet-distill": rel(student_recipe(work / "recipes", "mobilenet-distill",
                                                       {"backbone": "mobilenetv2", "width": MOBILENET_WIDTH}))}
    final = [f"data.test={rel(data2.final_test())}"]
    detection.compare(list(ARMS), recipes, trials, work, final + smoke + args.overrides, argv, "distill", None,
                      SCRIPT)
    results = WORK / "distill-smoke-results" if args.smoke else RESULTS
    copied = soundscapes.copy_report(work, results)
    print(f"report: {len(copied)} files -> {rel(results)}; total {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
