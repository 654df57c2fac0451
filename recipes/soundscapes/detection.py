#!/usr/bin/env python
"""Benchmark (outside CI): detection on the soundscapes v2 (issue 21): probes, the recipes, unlabelled clips, ablation.

    python recipes/soundscapes/detection.py --part probe NAME [section.key=value ...] [+ NAME ...]  # validation probes
    python recipes/soundscapes/detection.py --part main        # the recipes on test_final, 5 paired trials
    python recipes/soundscapes/detection.py --part unlabeled   # 25% labelled +- mean teacher, 100%, 5 trials
    python recipes/soundscapes/detection.py --part ablation    # the new recipe, each lever removed, 3 trials
    python recipes/soundscapes/detection.py --part main --smoke  # 1 trial, 1 epoch, into work/detection-*smoke*

Data: ``recipes/soundscapes/soundscapes2.py`` (built if missing), config ``work/soundscapes2.yaml``. Every part
is ``weaktag compare`` (finished trials are reused: an interrupted part resumes); extra arguments after the
options are ``section.key=value`` overrides for every arm. Settings are chosen on validation (the probes),
never on a test split; the development ``test`` split scores the ablation part, ``test_final`` only the
tables of the main and unlabeled parts.

1. **probe** NAME [overrides] [+ NAME [overrides] ...]: each probe is the recipe ``--base`` (default
   ``configs/recommended.yaml``) with its overrides, a recipe of one compare (probes on the same backbone
   features share them), seed 0
   (``--trials`` 1-3), scored on the *validation* split (``data.test`` = the validation manifest, so no test
   clip is read; the thresholds and filters are chosen on the same clips, so the figures are optimistic, alike
   for every probe); validation mAP, PSDS1, PSDS2, event F1 -> one row of
   ``results/detection/probes.md`` (a probe run again replaces its row).
2. **main**: ``narrow:attention`` (today's narrow recipe), ``recommended-v1:attention`` (the recommended recipe
   of the previous round), ``recommended:<its scheme>`` and ``recommended:attention-strong`` (the new
   ``configs/recommended.yaml``), ``data.test`` = ``test_final``; report -> ``results/detection/``.
3. **unlabeled**: the new recipe on the 25%-labelled variant: 25% labelled alone, with the other 75% as
   unlabelled clips under a mean teacher, and 100% labelled, ``data.test`` = ``test_final``: one compare of
   three recipes, each naming its own training data (``work/detection-unlabeled/recipes/``); report ->
   ``results/detection/unlabeled/``, ``results/detection/unlabeled.md`` + ``.json``: the share of the gap recovered, (MT - 25%) / (100% - 25%),
   and paired Wilcoxon p-values.
4. **ablation**: the new recipe with each lever of ``ABLATIONS`` that it uses removed in turn (a lever it does
   not use is skipped); ``results/detection/ablation.md`` + ``.json`` (as quality.py's), reports in
   ``results/detection/ablation/``.

When the new recipe turns the mean teacher on (``mean_teacher.weight`` > 0), the main and ablation parts give
its arms ``data.unlabeled`` = the ``unlabeled`` split (in a copy of the recipe under the part's work folder;
a ``--recipe`` YAML may name its own training data); the other arms get no unlabelled clips.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent  # recipes/soundscapes
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
import compare_soundscapes as soundscapes  # noqa: E402  (shared data, report copier, compare runner)
import quality  # noqa: E402  (the ablation recipes and table)
import soundscapes2 as data2  # noqa: E402  (the v2 data and its config)
from compare_soundscapes import rel, run_compare  # noqa: E402

SCRIPT = "recipes/soundscapes/detection.py"
WORK = HERE / "work"
RESULTS = HERE / "results" / "detection"
#: the frozen aisfx outputs of every part and probe, kept between runs (train.feature_cache)
FEATURE_CACHE = WORK / "feature-cache"
RECOMMENDED = quality.RECOMMENDED  # the new recipe (configs/recommended.yaml)
RECOMMENDED_V1 = REPO / "configs" / "recommended-v1.yaml"  # the previous round's
PROBE_METRICS = ("mAP", "psds1", "psds2", "event_f1_macro")
SMOKE_OVERRIDES = ["train.max_epochs=1"]
DEFAULT_TRIALS = {"probe": 1, "main": 5, "unlabeled": 5, "ablation": 3}
#: the unlabeled part's mean teacher where the recipe sets none of its own: chosen on the validation probes
#: (mean_teacher_probes.py). The first, 3-trial table (results/detection/unlabeled-gru-ema0999.md) was made before
#: them, with weight 1 alone (ema_decay 0.999, no ramp-up), which lost to 25% labelled alone there and on validation.
MEAN_TEACHER = {"weight": 1.0, "ema_decay": 0.95, "rampup_epochs": 10}

#: the new levers of the detection recipe (issue 21), each removed in turn; name -> (what it removes, changes).
#: Each change is today's default, so a lever the recipe does not set is not in the recipe and is skipped.
ABLATIONS: dict[str, tuple[str, dict]] = {
    "no-sequence-neck": ("the 1-D convolution neck of the previous recipe (model.neck conv) instead of the "
                         "sequence neck", {"model": {"neck": "conv"}}),
    "no-fine-stride": ("the backbone's time stride 8 instead of the finer one", {"model": {"time_stride": 8}}),
    "no-mean-teacher": ("no mean teacher: the unlabelled clips unused (mean_teacher.weight 0)",
                        {"mean_teacher": {"weight": 0.0}}),
    "no-durations": ("no per-class minimum event duration and gap chosen on validation",
                     {"train": {"event_durations": False}}),
    "no-hysteresis": ("no per-class lower stay-on threshold", {"train": {"event_hysteresis": False}}),
}


def recipe_yaml(path: Path = RECOMMENDED) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def uses_mean_teacher(recipe: dict) -> bool:
    return float((recipe.get("mean_teacher") or {}).get("weight", 0) or 0) > 0


def levers_used(recipe: dict, ablations: dict[str, tuple[str, dict]] = ABLATIONS) -> dict[str, tuple[str, dict]]:
    """The levers ``recipe`` sets to another value than their removal's (unset counts as the removal's value)."""
    def differs(values: dict, changes: dict) -> bool:
        return any(differs(values.get(key) or {}, change) if isinstance(change, dict)
                   else key in values and values[key] != change for key, change in changes.items())

    return {name: lever for name, lever in ablations.items() if differs(recipe, lever[1])}


def has_mean_teacher() -> bool:
    """Whether this weaktag has the mean teacher (its config section)."""
    from weaktag.config import ExperimentConfig

    return hasattr(ExperimentConfig(), "mean_teacher")


def percent(mean: float | None, std: float | None = None) -> str:
    """``mean ± std`` in %, ``n/a`` for an undefined mean, the mean alone for an undefined std (one trial)."""
    if mean is None or mean != mean:
        return "n/a"
    return f"{mean * 100:.1f}" + ("" if std is None or std != std else f" ± {std * 100:.1f}")


def write_recipe(recipe: dict, path: Path, data: dict[str, Path] | None = None) -> Path:
    """``recipe`` (without its data section) with the training ``data`` (key -> file) -> ``path``."""
    values = {key: value for key, value in recipe.items() if key != "data"}
    if data:
        values["data"] = {key: str(Path(file).resolve()) for key, file in data.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# written by {SCRIPT}\n" + yaml.safe_dump(values, sort_keys=False))
    return path


def with_overrides(recipe: dict, overrides: list[str]) -> dict:
    """``recipe`` with ``section.key=value`` overrides merged in (values parsed as YAML, as weaktag's dot lists)."""
    from omegaconf import OmegaConf

    merged = OmegaConf.merge(OmegaConf.create(recipe), OmegaConf.from_dotlist(list(overrides)))
    return OmegaConf.to_container(merged, resolve=True)


def with_unlabeled(recipe: dict) -> dict[str, Path]:
    """The training data a recipe's arm adds: the v2 unlabeled split when it turns the mean teacher on."""
    return {"unlabeled": data2.manifest("unlabeled")} if uses_mean_teacher(recipe) else {}


def new_recipe(folder: Path) -> Path:
    """The new recipe as the main and ablation parts train it: ``configs/recommended.yaml`` itself, or a copy
    under ``folder`` with the unlabeled split when it uses the mean teacher."""
    recipe = recipe_yaml()
    extra = with_unlabeled(recipe)
    return write_recipe(recipe, folder / "recommended.yaml", extra) if extra else RECOMMENDED


def note(argv: list[str], part: str, script: str = SCRIPT) -> str:
    return (f"Produced by `{shlex.join(['python', script, *argv])}` on a machine with {os.cpu_count()} CPU cores "
            f"({part} part; data: recipes/soundscapes/soundscapes2.py).")


def compare(arms: list[str], recipes: dict[str, str], trials: int, out_dir: Path, overrides: list[str],
            argv: list[str], part: str, gain_pair: tuple[str, str] | None = None, script: str = SCRIPT) -> dict:
    """``weaktag compare`` of ``arms`` on the v2 config with ``recipes`` (name -> path or packaged name), its
    report's note naming ``script`` and ``argv``; returns its results.json."""
    options = ["compare", "--config", rel(data2.soundscapes2_config()), "--schemes", ",".join(arms),
               "--trials", str(trials), "--out-dir", rel(out_dir), "--note", note(argv, part, script)]
    for name, path in recipes.items():
        options += ["--recipe", name if path == name else f"{name}={path}"]
    if gain_pair is not None:
        options += ["--gain-pair", ",".join(gain_pair)]
    run_compare(options + [f"train.feature_cache={rel(FEATURE_CACHE)}"] + overrides)
    return json.loads((out_dir / "results.json").read_text())


# --------------------------------------------------------------------------- probe


PROBE_SEPARATOR = "+"  # between probes of one run: NAME overrides + NAME overrides


def split_probes(positional: list[str]) -> list[tuple[str, list[str]]]:
    """``NAME ov ov + NAME ov`` -> [(NAME, [ov, ov]), (NAME, [ov])]."""
    probes, current = [], []
    for token in [*positional, PROBE_SEPARATOR]:
        if token != PROBE_SEPARATOR:
            current.append(token)
            continue
        if not current:
            raise SystemExit(f"--part probe: an empty probe (two {PROBE_SEPARATOR!r} in a row, or one at an end)")
        name, *overrides = current
        if "/" in name or ":" in name or "=" in name or name.startswith("-"):
            raise SystemExit(f"--part probe needs a NAME before each probe's overrides (a word without '/', ':', "
                             f"'='), got {name!r}")
        probes.append((name, overrides))
        current = []
    names = [name for name, _ in probes]
    if len(set(names)) < len(names):
        raise SystemExit(f"--part probe: probe names repeat: {names}")
    return probes


PROBE_TITLE = "Validation probes of the detection recipe (`python recipes/soundscapes/detection.py --part probe NAME ...`)"


def probe_part(probes: list[tuple[str, list[str]]], base: Path, trials: int, work: Path, results: Path,
               argv: list[str], title: str = PROBE_TITLE, script: str = SCRIPT) -> list[dict]:
    """Validation probes: ``base`` with each probe's overrides, one recipe per probe of one compare (so probes
    on the same backbone features share them: computed once), scored on validation; a row each ->
    ``results/probes.md``."""
    from weaktag.config import load_config

    recipes, arms = {}, {}
    base_recipe = recipe_yaml(base)
    for name, overrides in probes:
        scheme = load_config(base, overrides).scheme.name  # the overrides checked now, and scheme.name taken
        arms[name] = f"{name}:{scheme}"
        # the overrides go into the probed recipe, not onto --config (the v2 config is the narrow recipe, whose
        # backbone would reject, say, an aisfx time stride)
        recipe = with_overrides(base_recipe, overrides)
        recipes[name] = rel(write_recipe(recipe, work / "recipes" / f"{name}.yaml", with_unlabeled(recipe)))
    on_validation = [f"data.test={rel(data2.manifest('validation'))}"]
    out = compare(list(arms.values()), recipes, trials, work, on_validation, argv, "probe", script=script)
    rows = []
    for name, overrides in probes:
        summary = out["summary"][arms[name]]
        row = {"name": name, "base": rel(base), "overrides": overrides, "trials": out["trials"],
               "seeds": out["seeds"], **{m: summary.get(m, {}).get("mean") for m in PROBE_METRICS},
               "best_epoch": summary.get("best_epoch", {}).get("mean"),
               "minutes_per_trial": (summary.get("wall_seconds", {}).get("mean") or 0) / 60}
        write_probe_row(row, results, title)
        rows.append(row)
    return rows


def write_probe_row(row: dict, results: Path, title: str = PROBE_TITLE) -> None:
    """``probes.jsonl`` (one row per probe name, the latest kept) and ``probes.md`` made from it."""
    results.mkdir(parents=True, exist_ok=True)
    store = results / "probes.jsonl"
    rows = [json.loads(line) for line in store.read_text().splitlines() if line.strip()] if store.exists() else []
    rows = [r for r in rows if r["name"] != row["name"]] + [row]
    store.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines = [f"{title}: the validation split scored with the thresholds and filters chosen on it (optimistic, "
             "alike for every probe); mean over the trials (seed 0 first), %.", "",
             "| probe | base | overrides | trials | mAP | PSDS1 | PSDS2 | event F1 macro | best epoch | min per trial |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        cells = [percent(r.get(m)) for m in PROBE_METRICS]
        epoch = "n/a" if r.get("best_epoch") is None else f"{r['best_epoch']:.0f}"
        lines.append(f"| {r['name']} | `{r['base']}` | `{' '.join(r['overrides']) or '-'}` | {r['trials']} | "
                     + " | ".join(cells) + f" | {epoch} | {r['minutes_per_trial']:.1f} |")
    (results / "probes.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


# --------------------------------------------------------------------------- main


def main_part(trials: int, work: Path, results: Path, overrides: list[str], argv: list[str]) -> None:
    scheme = quality.recommended_scheme()
    arms = list(dict.fromkeys(["narrow:attention", "recommended-v1:attention", f"recommended:{scheme}",
                               "recommended:attention-strong"]))
    recipes = {"narrow": "narrow", "recommended-v1": rel(RECOMMENDED_V1),
               "recommended": rel(new_recipe(work / "recipes"))}
    final = [f"data.test={rel(data2.final_test())}"]
    compare(arms, recipes, trials, work, final + overrides, argv, "main",
            ("recommended-v1:attention", f"recommended:{scheme}"))
    copied = soundscapes.copy_report(work, results)
    print(f"main report: {len(copied)} files -> {rel(results)}")


# --------------------------------------------------------------------------- unlabeled


def unlabeled_recipes(recipe: dict, folder: Path, mean_teacher: bool = True) -> dict[str, tuple[str, Path]]:
    """Arm's recipe name -> (its label in the table, its YAML under ``folder``): ``recipe`` on 25% labelled, on 25%
    + 75% unlabelled under a mean teacher (left out without ``mean_teacher``: a weaktag without one), on 100%."""
    section = dict(recipe.get("mean_teacher") or {})
    off = {**recipe, "mean_teacher": {**section, "weight": 0.0}} if section else recipe
    weight = section.get("weight") or MEAN_TEACHER["weight"]
    on = {**recipe, "mean_teacher": {**MEAN_TEACHER, **section, "weight": weight}}
    arms = {"labelled25": ("25% labelled", write_recipe(off, folder / "labelled25.yaml", {"train": data2.LABELLED}))}
    if mean_teacher:
        arms["mean-teacher"] = ("25% + 75% unlabelled, mean teacher", write_recipe(
            on, folder / "mean-teacher.yaml", {"train": data2.LABELLED, "unlabeled": data2.UNLABELLED}))
    arms["labelled100"] = ("100% labelled", write_recipe(off, folder / "labelled100.yaml"))
    return arms


def unlabeled_part(trials: int, work: Path, results: Path, overrides: list[str], argv: list[str],
                   mean_teacher: bool = True) -> None:
    """One compare of the three training sets, then the table (not without the mean-teacher arm)."""
    scheme = quality.recommended_scheme()
    recipes = unlabeled_recipes(recipe_yaml(), work / "recipes", mean_teacher)
    arms = [f"{name}:{scheme}" for name in recipes]
    final = [f"data.test={rel(data2.final_test())}"]  # the teacher was chosen on validation, dev test looked at
    out = compare(arms, {name: rel(path) for name, (_, path) in recipes.items()}, trials, work, final + overrides,
                  argv, "unlabeled", (arms[0], arms[1]))
    soundscapes.copy_report(work, results / "unlabeled")
    if not mean_teacher:
        print("unlabeled table not written: no mean-teacher arm (this weaktag has no mean teacher)")
        return
    write_unlabeled_table({name: (label, out["runs"][f"{name}:{scheme}"]) for name, (label, _) in recipes.items()},
                          scheme, results)


def write_unlabeled_table(outcomes: dict[str, tuple[str, list[dict]]], scheme: str, results: Path) -> dict:
    """``unlabeled.md`` and ``unlabeled.json``: each arm's mean ± std, the share of the gap between 25% and 100%
    labelled that the mean teacher recovers, and paired Wilcoxon p-values (trials paired by seed)."""
    from weaktag.files import plain
    from weaktag.metrics.statistics import summarize, wilcoxon_pairs

    seeds = sorted(set.intersection(*({t["seed"] for t in runs} for _, runs in outcomes.values())))
    values = {key: {m: [next(t for t in runs if t["seed"] == s)["metrics"].get(m) for s in seeds]
                    for m in PROBE_METRICS} for key, (_, runs) in outcomes.items()}
    table = {"scheme": scheme, "seeds": seeds, "arms": {}, "recovered": {}, "wilcoxon": {}}
    for key, (label, _) in outcomes.items():
        table["arms"][key] = {"label": label}
        for m in PROBE_METRICS:
            finite = [v for v in values[key][m] if v is not None]
            mean, std = summarize(finite) if finite else (None, None)
            table["arms"][key][m] = {"mean": mean, "std": std, "values": values[key][m]}
    for m in ("mAP", "psds1"):
        low, mt, high = (table["arms"][k][m]["mean"] for k in ("labelled25", "mean-teacher", "labelled100"))
        gap = None if None in (low, mt, high) or high == low else (mt - low) / (high - low)
        table["recovered"][m] = gap
        nan = float("nan")
        series = {k: [nan if v is None else v for v in values[k][m]] for k in values}
        table["wilcoxon"][m] = {f"{t.a} vs {t.b}": {"p": t.p_value, "mean_diff": t.mean_diff}
                                for t in wilcoxon_pairs(series, m)}

    def cell(key: str, m: str) -> str:
        return percent(table["arms"][key][m]["mean"], table["arms"][key][m]["std"])

    def p(m: str, a: str, b: str) -> str:
        value = table["wilcoxon"][m].get(f"{a} vs {b}", {}).get("p")
        return "n/a" if value is None or value != value else f"{value:.3f}"

    lines = [f"**Unlabelled clips under a mean teacher** (`recommended:{scheme}`, the final test split; "
             f"mean ± std over {len(seeds)} paired trials, seeds {seeds}, %)", "",
             "| training data | mAP (%) | PSDS1 (%) | PSDS2 (%) | event F1 macro (%) |", "|---|---:|---:|---:|---:|"]
    for key, (label, _) in outcomes.items():
        lines.append(f"| {label} | " + " | ".join(cell(key, m) for m in PROBE_METRICS) + " |")
    lines += ["", "| | mAP | PSDS1 |", "|---|---:|---:|"]
    share = ["n/a" if table["recovered"][m] is None else f"{table['recovered'][m] * 100:.0f}%" for m in ("mAP", "psds1")]
    lines.append("| gap recovered, (MT - 25%) / (100% - 25%) | " + " | ".join(share) + " |")
    lines.append("| Wilcoxon p, MT vs 25% labelled | " + " | ".join(p(m, "labelled25", "mean-teacher")
                                                               for m in ("mAP", "psds1")) + " |")
    lines.append("| Wilcoxon p, MT vs 100% labelled | " + " | ".join(p(m, "mean-teacher", "labelled100")
                                                                for m in ("mAP", "psds1")) + " |")
    lines += ["", "Two-sided paired Wilcoxon signed-rank tests over the seeds (weaktag.metrics.statistics); the "
              "three arms are recipes of one `weaktag compare` on their own training data (full report: "
              "`unlabeled/report.md`).", ""]
    results.mkdir(parents=True, exist_ok=True)
    (results / "unlabeled.md").write_text("\n".join(lines))
    (results / "unlabeled.json").write_text(json.dumps(plain(table), indent=2))
    print("\n".join(lines))
    return table


# --------------------------------------------------------------------------- ablation


def ablation_part(trials: int, work: Path, results: Path, overrides: list[str], argv: list[str]) -> None:
    recipe = recipe_yaml()
    levers = levers_used(recipe)
    if not levers:
        raise SystemExit(f"{rel(RECOMMENDED)} uses none of the levers {', '.join(ABLATIONS)}: nothing to ablate "
                         "(write the new recipe first)")
    skipped = [name for name in ABLATIONS if name not in levers]
    if skipped:
        print(f"ablation: {rel(RECOMMENDED)} does not use {', '.join(skipped)}; skipped")
    scheme = quality.recommended_scheme()
    paths = quality.write_ablation_recipes(work / "recipes", levers)
    for path in paths.values():  # the unlabelled clips to every arm with a mean teacher
        lever = yaml.safe_load(path.read_text())
        write_recipe(lever, path, with_unlabeled(lever))
    full = f"{quality.FULL}:{scheme}"
    arms = [full, *(f"{name}:{scheme}" for name in paths)]
    recipes = {quality.FULL: rel(new_recipe(work / "recipes")), **{name: rel(path) for name, path in paths.items()}}
    out = compare(arms, recipes, trials, work, overrides, argv, "ablation", (full, arms[1]))
    soundscapes.copy_report(work, results / "ablation")
    quality.write_ablation_table(out, out, scheme, results, levers)  # the full recipe's row: this compare's arm


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("probe", "main", "unlabeled", "ablation"), required=True)
    parser.add_argument("--trials", type=int, default=None, help=f"default: {DEFAULT_TRIALS}")
    parser.add_argument("--base", default=str(RECOMMENDED), help="probe: the recipe probed (default: %(default)s)")
    parser.add_argument("--smoke", action="store_true", help="1 trial, 1 epoch, into recipes/soundscapes/work/"
                        "detection-*smoke*")
    parser.add_argument("args", nargs="*", help="probe: NAME, then overrides; other parts: overrides "
                        "(section.key=value, for every arm)")
    args = parser.parse_args(argv)
    started = time.time()
    data2.build_soundscapes2(soundscapes.shared_data())
    positional = list(args.args)
    probes = split_probes(positional) if args.part == "probe" else []
    if args.smoke:
        probes = [(name, [*SMOKE_OVERRIDES, *overrides]) for name, overrides in probes]
    overrides = [*SMOKE_OVERRIDES, *positional] if args.smoke else positional
    trials = args.trials or (1 if args.smoke else DEFAULT_TRIALS[args.part])
    suffix = "-smoke" if args.smoke else ""
    results = WORK / "detection-smoke-results" if args.smoke else RESULTS
    if args.part == "probe":
        probe_part(probes, Path(args.base), trials, WORK / f"detection-probes{suffix}", results, argv)
    elif args.part == "main":
        main_part(trials, WORK / f"detection{suffix}", results, overrides, argv)
    elif args.part == "unlabeled":
        if not has_mean_teacher():
            print("this weaktag has no mean teacher (no mean_teacher config section): the mean-teacher arm is "
                  "left out")
        unlabeled_part(trials, WORK / f"detection-unlabeled{suffix}", results, overrides, argv, has_mean_teacher())
    else:
        ablation_part(trials, WORK / f"detection-ablation{suffix}", results, overrides, argv)
    print(f"total {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
