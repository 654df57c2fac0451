#!/usr/bin/env python
"""Benchmark (outside CI): the recommended weak-label recipe against today's recipe, and its ablation.

    python recipes/soundscapes/quality.py                  # both parts (~60 min on 2 CPU cores)
    python recipes/soundscapes/quality.py --part main      # only the comparison (5 paired trials)
    python recipes/soundscapes/quality.py --part ablation  # only the ablation (3 paired trials per arm)
    python recipes/soundscapes/quality.py --smoke          # 1 trial, 2 epochs, into recipes/soundscapes/work/quality-smoke*

Data: the real-recording soundscapes of ``recipes/soundscapes/work/soundscapes.yaml`` (built from ../shared/data
if missing, as ``recipes/soundscapes/compare_soundscapes.py`` does).

1. **main**: ``weaktag compare`` of today's recipe (``recipes/soundscapes/work/soundscapes.yaml``: narrow VGGish from
   scratch, 10 epochs) for ``attention``, ``attention-self`` and ``attention-strong``, against the
   recommended recipe (``configs/recommended.yaml``) trained on weak labels only
   (``recommended:<its scheme>``) and with the strong labels (``recommended:attention-strong``);
   report -> ``recipes/soundscapes/results/quality/``.
2. **ablation**: the recommended recipe with each lever removed in turn (recipes written to
   ``recipes/soundscapes/work/quality-ablation/recipes/``), paired trials by seed with the main part's trials
   of the full recipe (whose first seeds give the table's "full" row, so they are not trained twice;
   the two parts can run at the same time); report ->
   ``recipes/soundscapes/results/quality/ablation/`` and the table ``recipes/soundscapes/results/quality/ablation.md``
   (+ ``ablation.json``): mAP, PSDS1, PSDS2, event F1 and CPU minutes per trial.

Extra arguments after the options are ``section.key=value`` overrides for every recipe.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent  # recipes/soundscapes
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
import compare_soundscapes as soundscapes  # noqa: E402  (the data builder and the report copier)
from compare_soundscapes import rel, run_compare  # noqa: E402

RECOMMENDED = REPO / "configs" / "recommended.yaml"
NARROW = yaml.safe_load((REPO / "configs" / "narrow.yaml").read_text())  # today's recipe (weaktag.recipes)
BASE_SCHEMES = ("attention", "attention-self", "attention-strong")
RESULTS = HERE / "results" / "quality"
WORK = HERE / "work"

#: the levers of the recipe (issue: quality), each removed in turn; name -> (what it removes, changes)
ABLATIONS: dict[str, tuple[str, dict]] = {
    "no-pretrained": ("narrow VGGish trained from scratch instead of the frozen pretrained aisfx backbone "
                      "(width 0.125 + batch norm, 10 epochs, as today's recipe; no neck; augmentation and event "
                      "outputs as the recipe)",
                      {"model": {**NARROW["model"], "backbone": "vggish", "freeze": 0, "time_stride": 0,
                                 "freq_pool": None, "neck_channels": 0, "dropout": 0.0},
                       "train": {key: NARROW["train"][key] for key in ("max_epochs", "batch_size")}}),
    "no-augment": ("no augmentation", {"augment": {"mixup_alpha": 0.0, "gain_db": 0.0, "shift_seconds": 0.0,
                                                   "time_masks": 0, "freq_masks": 0}}),
    "no-time-outputs": ("X^a scores time with segment-F1 thresholds and a fixed median filter (the paper's "
                        "defaults) instead of the output and per-class filters chosen on validation",
                        {"train": {"event_output": "segment", "event_calibration": "segment_f1"}}),
    "no-capacity": ("no trainable neck (a linear head on the frozen features), at most 30 epochs",
                    {"model": {"neck_channels": 0, "dropout": 0.0},
                     "train": {"max_epochs": 30, "lr_schedule": "constant", "warmup_epochs": 0,
                               "weight_decay": 0.0}}),
}
ABLATION_METRICS = ("mAP", "psds1", "psds2", "event_f1_macro")


def recommended_scheme() -> str:
    return yaml.safe_load(RECOMMENDED.read_text())["scheme"]["name"]


def _merge(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merge(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


FULL = "recommended"  # the full recipe's name: the main part's, so its trials are reused


def write_ablation_recipes(folder: Path, ablations: dict[str, tuple[str, dict]] | None = None) -> dict[str, Path]:
    """One YAML per lever of ``ablations`` (default ``ABLATIONS``) removed from the recommended recipe."""
    folder.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load(RECOMMENDED.read_text())
    base.pop("data", None)
    paths = {}
    for name, (_, changes) in (ABLATIONS if ablations is None else ablations).items():
        paths[name] = folder / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(_merge(base, changes), sort_keys=False))
    return paths


def note(argv: list[str]) -> str:
    return (f"Produced by `{shlex.join(['python', 'recipes/soundscapes/quality.py', *argv])}` on a machine with "
            f"{os.cpu_count()} CPU cores.")


def main_part(trials: int, out_dir: Path, results_dir: Path, overrides: list[str], argv: list[str]) -> None:
    scheme = recommended_scheme()
    arms = [*BASE_SCHEMES, f"recommended:{scheme}", "recommended:attention-strong"]
    run_compare(["compare", "--config", rel(soundscapes.soundscapes_config()),
                 "--recipe", f"recommended={rel(RECOMMENDED)}",
                 "--schemes", ",".join(dict.fromkeys(arms)), "--trials", str(trials), "--out-dir", rel(out_dir),
                 "--gain-pair", f"attention,recommended:{scheme}", "--note", note(argv), *overrides])
    copied = soundscapes.copy_report(out_dir, results_dir)
    print(f"main report: {len(copied)} files -> {results_dir}")


def ablation_part(trials: int, out_dir: Path, results_dir: Path, table_dir: Path, overrides: list[str],
                  argv: list[str], main_dir: Path) -> None:
    scheme = recommended_scheme()
    recipes = write_ablation_recipes(out_dir / "recipes")
    arms = [f"{name}:{scheme}" for name in recipes]
    options = ["compare", "--config", rel(soundscapes.soundscapes_config()), "--schemes", ",".join(arms),
               "--trials", str(trials),
               "--out-dir", rel(out_dir), "--gain-pair", f"no-pretrained:{scheme},no-capacity:{scheme}",
               "--note", note(argv)]
    for name, path in recipes.items():
        options += ["--recipe", f"{name}={rel(path)}"]
    run_compare(options + overrides)
    soundscapes.copy_report(out_dir, results_dir)
    results = json.loads((out_dir / "results.json").read_text())
    main_file = main_dir / "results.json"
    if not main_file.exists():
        print(f"ablation table not written: {main_file} (the main part) is missing; run --part main first")
        return
    write_ablation_table(results, json.loads(main_file.read_text()), scheme, table_dir)


def _mean_std(values: list[float]) -> dict:
    from weaktag.metrics.statistics import summarize

    finite = [v for v in values if v is not None and math.isfinite(v)]
    mean, std = summarize(finite)
    return {"mean": mean, "std": std, "n": len(finite)}


def write_ablation_table(results: dict, main: dict, scheme: str, out: Path,
                         ablations: dict[str, tuple[str, dict]] | None = None) -> None:
    """``ablation.md`` and ``ablation.json``: one row per arm of ``ablations`` (default ``ABLATIONS``), mean ± std
    and the difference from the full recipe, whose row is ``main``'s trials of the same seeds."""
    summary = dict(results["summary"])
    seeds = set(results["seeds"])
    full_runs = [t for t in main["runs"][f"{FULL}:{scheme}"] if t["seed"] in seeds]
    if {t["seed"] for t in full_runs} != seeds:
        raise SystemExit(f"the main part has no trials of {FULL}:{scheme} for every ablation seed {sorted(seeds)}")
    summary[f"{FULL}:{scheme}"] = {m: _mean_std([t["metrics"].get(m) for t in full_runs])
                                   for m in (*ABLATION_METRICS, "wall_seconds")}
    full = summary[f"{FULL}:{scheme}"]
    rows, lines = [], [
        f"**Ablation of the recommended recipe** (`{scheme}`, weak labels only; mean ± std over "
        f"{results['trials']} paired trials, seeds {results['seeds']}; Δ: difference of means from the full recipe)",
        "",
        "| recipe | what is removed | mAP (%) | PSDS1 (%) | PSDS2 (%) | event F1 macro (%) | CPU min per trial |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    ablations = ABLATIONS if ablations is None else ablations
    removed = {FULL: "nothing (the full recipe)", **{k: v[0] for k, v in ablations.items()}}
    for name in removed:
        arm = f"{name}:{scheme}"
        if arm not in summary:
            continue
        s = summary[arm]
        row = {"recipe": name, "removed": removed[name]}
        cells = []
        for m in ABLATION_METRICS:
            mean, std = s.get(m, {}).get("mean"), s.get(m, {}).get("std")
            row[m] = {"mean": mean, "std": std}
            if mean is None or not math.isfinite(mean):
                cells.append("n/a")
                continue
            text = f"{mean * 100:.1f} ± {(std or 0) * 100:.1f}"
            if name != FULL:
                delta = mean - full[m]["mean"]
                row[m]["delta"] = delta
                text += f" (Δ {delta * 100:+.1f})"
            cells.append(text)
        minutes = s.get("wall_seconds", {}).get("mean")
        row["cpu_minutes_per_trial"] = None if minutes is None else minutes / 60
        cells.append("n/a" if minutes is None else f"{minutes / 60:.1f}")
        rows.append(row)
        lines.append(f"| `{name}` | {removed[name]} | " + " | ".join(cells) + " |")
    lines += ["", "CPU minutes: wall time of one trial (training, calibration on validation, test evaluation) on "
              f"this machine's {os.cpu_count()} cores, features of a frozen backbone computed once per recipe "
              "and not counted. When the two parts run at the same time (as for the committed table), each "
              "trial shares the cores with another: an idle machine is faster. Full report: "
              "`ablation/report.md`.", ""]
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.md").write_text("\n".join(lines))
    (out / "ablation.json").write_text(json.dumps({"scheme": scheme, "trials": results["trials"],
                                                   "seeds": results["seeds"], "rows": rows}, indent=2))
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "main", "ablation"), default="all")
    parser.add_argument("--trials", type=int, default=None, help="default: 5 (main), 3 (ablation)")
    parser.add_argument("--smoke", action="store_true",
                        help="1 trial, 2 epochs, into recipes/soundscapes/work/quality-smoke*")
    parser.add_argument("overrides", nargs="*", help="config overrides for every recipe, e.g. train.max_epochs=2")
    args = parser.parse_args(argv)
    started = time.time()
    soundscapes.build_soundscapes(soundscapes.shared_data())
    suffix, results, overrides = "", RESULTS, list(args.overrides)
    if args.smoke:
        suffix, results = "-smoke", WORK / "quality-smoke-results"
        overrides = ["train.max_epochs=2", *overrides]
    if args.part in ("all", "main"):
        main_part(args.trials or (1 if args.smoke else 5), WORK / f"quality{suffix}", results, overrides, argv)
    if args.part in ("all", "ablation"):
        ablation_part(args.trials or (1 if args.smoke else 3), WORK / f"quality-ablation{suffix}",
                      results / "ablation", results, overrides, argv, WORK / f"quality{suffix}")
    print(f"total {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
