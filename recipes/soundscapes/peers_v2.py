#!/usr/bin/env python
"""Benchmark (outside CI, issue 23): M&mnet at its paper's level, and PSL as its paper runs it, on the soundscapes v2.

    python recipes/soundscapes/peers_v2.py --part probe NAME [section.key=value ...] [+ NAME ...]
    python recipes/soundscapes/peers_v2.py --part ablation   # the M&mnet probes of the difference list
    python recipes/soundscapes/peers_v2.py --part final      # 5 paired trials on test_final
    python recipes/soundscapes/peers_v2.py --part final --smoke   # 1 trial, 1 epoch, into work/peers-v2-*smoke

Data: ``recipes/soundscapes/soundscapes2.py`` (built if missing), as ``detection.py``.

1. **probe**: validation probes on the recommended recipe (``detection.py``'s: each probe a recipe of one
   compare, scored on the validation split, seed 0 unless ``--trials``); a row each in
   ``results/peers/v2/probes.md``.
2. **ablation**: the probes of :data:`ABLATION`: the paper-following ``mmnet``, the class-wise extension,
   weaktag's earlier ``mmnet``, and the paper-following one with one choice of docs/peers.md's difference
   list put back to the earlier one (those that fit the session: M and f_cls).
3. **final**: 6 paired trials (the fewest whose Wilcoxon test can reach p < 0.05), ``data.test`` =
   ``test_final``: on the recommended recipe ``attention`` and the best M&mnet arm of the ablation,
   ``mmnet-classwise``; and PSL's claim: a narrow VGGish trained from scratch on the clip labels
   (``narrow:attention``) against the same network taught by the recommended model of the same seed
   (``narrow-psl:psl``, ``scheme.teacher_arm=recommended:attention``: the teacher labels 2 s chunks of each
   training clip through its own front end). Report -> ``results/peers/v2/``.

Finished trials are reused (``compare`` resumes an interrupted part).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent  # recipes/soundscapes
sys.path.insert(0, str(HERE))
import compare_soundscapes as soundscapes  # noqa: E402  (shared data, report copier)
import detection  # noqa: E402  (the v2 compare, probes and recipe writing)
import soundscapes2 as data2  # noqa: E402  (the v2 data)
from compare_soundscapes import rel  # noqa: E402

SCRIPT = "recipes/soundscapes/peers_v2.py"
WORK = HERE / "work"
RESULTS = HERE / "results" / "peers" / "v2"
DEFAULT_TRIALS = {"probe": 1, "ablation": 1, "final": 6}
PROBE_TITLE = f"Validation probes of M&mnet on the recommended recipe (`python {SCRIPT} --part probe NAME ...`)"
TEACHER = "recommended:attention"
#: the ablation of the difference list: each probe the paper-following mmnet with one choice put back
ABLATION = [
    ("attention", ["scheme.name=attention"]),
    ("mmnet", ["scheme.name=mmnet"]),
    ("classwise", ["scheme.name=mmnet-classwise"]),
    ("mmnet-weaktag-v1", ["scheme.name=mmnet", "scheme.micro_heads=4", "scheme.micro_hidden=256",
                          "scheme.macro_layers=0", "scheme.class_weight_beta=0"]),
    ("mmnet-M4", ["scheme.name=mmnet", "scheme.micro_heads=4"]),
    ("mmnet-fcls-linear", ["scheme.name=mmnet", "scheme.macro_layers=0"]),
]


def psl_recipe(folder: Path) -> Path:
    """The narrow recipe with the PSL student's scheme, taught by :data:`TEACHER`'s same-seed trial."""
    from importlib.resources import files

    narrow = detection.recipe_yaml(Path(str(files("weaktag.recipes") / "narrow.yaml")))
    narrow["scheme"] = {"name": "psl", "teacher_arm": TEACHER}
    return detection.write_recipe(narrow, folder / "narrow-psl.yaml")


def final_part(trials: int, work: Path, results: Path, overrides: list[str], argv: list[str]) -> None:
    arms = [TEACHER, "recommended:mmnet-classwise", "narrow:attention", "narrow-psl:psl"]
    recipes = {"recommended": rel(detection.RECOMMENDED), "narrow": "narrow",
               "narrow-psl": rel(psl_recipe(work / "recipes"))}
    final = [f"data.test={rel(data2.final_test())}"]
    detection.compare(arms, recipes, trials, work, final + overrides, argv, "final", None, SCRIPT)
    copied = soundscapes.copy_report(work, results)
    print(f"final report: {len(copied)} files -> {rel(results)}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("probe", "ablation", "final"), required=True)
    parser.add_argument("--trials", type=int, default=None, help=f"default: {DEFAULT_TRIALS}")
    parser.add_argument("--smoke", action="store_true", help="1 trial, 1 epoch, into recipes/soundscapes/work/"
                        "peers-v2-*smoke*")
    parser.add_argument("args", nargs="*", help="probe: NAME, then overrides; final: overrides")
    args = parser.parse_args(argv)
    started = time.time()
    data2.build_soundscapes2(soundscapes.shared_data())
    suffix = "-smoke" if args.smoke else ""
    results = WORK / "peers-v2-smoke-results" if args.smoke else RESULTS
    trials = args.trials or (1 if args.smoke else DEFAULT_TRIALS[args.part])
    smoke = detection.SMOKE_OVERRIDES if args.smoke else []
    if args.part == "final":
        final_part(trials, WORK / f"peers-v2{suffix}", results, [*smoke, *args.args], argv)
    else:
        probes = ABLATION if args.part == "ablation" else detection.split_probes(list(args.args))
        probes = [(name, [*smoke, *o]) for name, o in probes]
        detection.probe_part(probes, detection.RECOMMENDED, trials, WORK / f"peers-v2-probes{suffix}", results,
                             argv, PROBE_TITLE, SCRIPT)
    print(f"total {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
