#!/usr/bin/env python
"""Benchmark (outside CI, issue 22): self-supervised attention on the recommended recipe and the soundscapes v2.

    python recipes/soundscapes/self_supervision_v2.py --part probe NAME [section.key=value ...] [+ NAME ...]
    python recipes/soundscapes/self_supervision_v2.py --part final    # 10 paired trials on test_final
    python recipes/soundscapes/self_supervision_v2.py --part study    # training-set size x event duration
    python recipes/soundscapes/self_supervision_v2.py --part scratch  # the narrow net from scratch, to early stopping
    python recipes/soundscapes/self_supervision_v2.py --part final --smoke   # 1 trial, 1 epoch, into work/*-smoke

Data: ``recipes/soundscapes/soundscapes2.py`` (built if missing), as ``detection.py``. Arms, all on
``configs/recommended.yaml`` with :data:`SCHEME_SETTINGS`: ``attention`` (Table I row 4), ``attention-strong``
(row 5, the strong labels as well), ``attention-self`` (row 6, the paper's rule) and ``attention-self-ext``
(weaktag's extension). ``weaktag compare`` puts each weak-only arm's recovered share of strong labels' gain,
(arm - attention) / (attention-strong - attention), with its paired p-value, at the top of the report.

1. **probe**: validation probes (``detection.py``'s: each probe a recipe of one compare, scored on the
   validation split, seed 0 unless ``--trials``); a row each in ``results/self_supervision/v2/probes.md``.
   :data:`SCHEME_SETTINGS` were chosen from them.
2. **final**: the four arms, 10 paired trials, ``data.test`` = ``test_final``; report ->
   ``results/self_supervision/v2/``.
3. **study**: when does it help? The four arms trained on :data:`FRACTIONS` of the training clips (each a
   recipe naming its own training subset, drawn once with a fixed seed), 3 paired trials, the development
   test split: ``results/self_supervision/v2/study.md`` + ``.json`` (per fraction: each arm's mAP and PSDS1,
   the recovered shares, and Spearman's rho between a class's median event duration and its AP gain over
   ``attention``, the paper's Fig. 4) and ``study.png``; reports in ``results/self_supervision/v2/study/``.

4. **scratch**: the paper-like regime, fairly trained: the four arms on the narrow VGGish from scratch
   (``narrow`` recipe) trained until validation mAP stops improving (:data:`SCRATCH_SCHEDULE`) instead of
   the fixed 10 epochs at which ``attention`` was still improving, so that no arm wins by training longer;
   ``data.test`` = ``test_final``; report -> ``results/self_supervision/v2/scratch/``.

Finished trials are reused (``compare`` resumes an interrupted part).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent  # recipes/soundscapes
sys.path.insert(0, str(HERE))
import compare_soundscapes as soundscapes  # noqa: E402  (shared data, report copier)
import detection  # noqa: E402  (the v2 compare, probes and recipe writing)
import soundscapes2 as data2  # noqa: E402  (the v2 data)
from compare_soundscapes import rel  # noqa: E402

SCRIPT = "recipes/soundscapes/self_supervision_v2.py"
WORK = HERE / "work"
RESULTS = HERE / "results" / "self_supervision" / "v2"
ARMS = ("attention", "attention-strong", "attention-self", "attention-self-ext")
#: the scheme settings of every arm (each scheme takes those it declares), chosen on the validation probes
SCHEME_SETTINGS: dict = {}
FRACTIONS = (0.1, 0.3, 1.0)
STUDY_SEED = 0  # which clips each fraction keeps
DEFAULT_TRIALS = {"probe": 1, "final": 10, "study": 3, "scratch": 3}
#: the scratch part's schedule: up to 60 epochs, stopped 8 epochs after the best validation mAP
SCRATCH_SCHEDULE = {"max_epochs": 60, "early_stopping_patience": 8}
PROBE_TITLE = ("Validation probes of self-supervised attention on the recommended recipe (`python "
               f"{SCRIPT} --part probe NAME ...`)")


def recipe_with_settings(folder: Path, data: dict[str, Path] | None = None, name: str = "recommended") -> Path:
    recipe = detection.recipe_yaml()
    recipe["scheme"] = {**recipe.get("scheme", {}), **SCHEME_SETTINGS}
    return detection.write_recipe(recipe, folder / f"{name}.yaml", data)


def final_part(trials: int, work: Path, results: Path, overrides: list[str], argv: list[str]) -> None:
    arms = [f"recommended:{a}" for a in ARMS]
    recipes = {"recommended": rel(recipe_with_settings(work / "recipes"))}
    final = [f"data.test={rel(data2.final_test())}"]
    detection.compare(arms, recipes, trials, work, final + overrides, argv, "final",
                      ("recommended:attention", "recommended:attention-self-ext"), SCRIPT)
    copied = soundscapes.copy_report(work, results)
    print(f"final report: {len(copied)} files -> {rel(results)}")


def scratch_part(trials: int, work: Path, results: Path, overrides: list[str], argv: list[str],
                 arms: tuple[str, ...] = ARMS) -> None:
    from importlib.resources import files

    narrow = detection.recipe_yaml(Path(str(files("weaktag.recipes") / "narrow.yaml")))
    narrow["train"] = {**narrow.get("train", {}), **SCRATCH_SCHEDULE}
    narrow["scheme"] = {**narrow.get("scheme", {}), **SCHEME_SETTINGS}
    recipe = detection.write_recipe(narrow, work / "recipes" / "narrow-es.yaml")
    final = [f"data.test={rel(data2.final_test())}"]
    pair = ("narrow-es:attention", "narrow-es:attention-self-ext")
    names = [f"narrow-es:{a}" for a in arms]
    detection.compare(names, {"narrow-es": rel(recipe)}, trials, work, final + overrides, argv, "scratch",
                      pair if set(pair) <= set(names) else None, SCRIPT)
    copied = soundscapes.copy_report(work, results / "scratch")
    print(f"scratch report: {len(copied)} files -> {rel(results / 'scratch')}")


def fraction_name(fraction: float) -> str:
    return f"train{round(fraction * 100):d}"


def fraction_manifest(fraction: float) -> Path:
    """The training clips kept at ``fraction`` (all of them at 1.0), drawn once with :data:`STUDY_SEED`."""
    if fraction >= 1.0:
        return data2.manifest("train")
    kept = data2.DATA / "train" / f"{fraction_name(fraction)}.jsonl"
    if not kept.is_file():
        data2.write_labelled_fraction(fraction, STUDY_SEED, kept, data2.DATA / "train" / f"rest-{kept.name}")
    return kept


def study_part(trials: int, work: Path, results: Path, overrides: list[str], argv: list[str]) -> dict:
    recipes, arms = {}, []
    for fraction in FRACTIONS:
        name = fraction_name(fraction)
        path = recipe_with_settings(work / "recipes", {"train": fraction_manifest(fraction)}, name)
        recipes[name] = rel(path)
        arms += [f"{name}:{a}" for a in ARMS]
    out = detection.compare(arms, recipes, trials, work, overrides, argv, "study",
                            (f"{fraction_name(1.0)}:attention", f"{fraction_name(1.0)}:attention-self-ext"), SCRIPT)
    soundscapes.copy_report(work, results / "study")
    return write_study(out, results)


def duration_gain(out: dict, baseline: str, arm: str) -> dict:
    """Spearman's rho between each class's median event duration and its mean AP gain of ``arm`` over
    ``baseline`` (over the paired trials)."""
    import numpy as np
    from scipy.stats import spearmanr

    per_class = out["per_class"]
    durations = np.asarray(per_class["median_duration"], dtype=float)
    ap = per_class["ap"]
    gain = np.asarray(ap[arm], dtype=float) - np.asarray(ap[baseline], dtype=float)
    usable = np.isfinite(durations) & np.isfinite(gain)
    if usable.sum() < 3 or np.ptp(gain[usable]) == 0 or np.ptp(durations[usable]) == 0:  # rho undefined
        return {"rho": None, "p": None, "n": int(usable.sum()), "gain": gain.tolist()}
    result = spearmanr(durations[usable], gain[usable])
    return {"rho": float(result.statistic), "p": float(result.pvalue), "n": int(usable.sum()), "gain": gain.tolist()}


def write_study(out: dict, results: Path) -> dict:
    """``study.md`` / ``study.json`` and ``study.png`` from the study's results.json."""
    shares = {(r["arm"], r["metric"]): r for r in out.get("recovered", [])}
    table: dict = {"trials": out["trials"], "seeds": out["seeds"], "fractions": {}}
    lines = [f"**When does self-supervision help?** (`python {SCRIPT} --part study`: the recommended recipe on a "
             f"fraction of the soundscapes v2 training clips, the development test split, mean over "
             f"{out['trials']} paired trials, seeds {out['seeds']}, %; share: of strong labels' paired gain over "
             "`attention`, with the arm's paired Wilcoxon p against `attention`; rho: Spearman's rho between a "
             "class's median event duration and its AP gain over `attention`, negative when shorter events gain "
             "more)", "",
             "| training clips | scheme | mAP | PSDS1 | share of mAP gain (p) | share of PSDS1 gain (p) | rho (p) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for fraction in FRACTIONS:
        name = fraction_name(fraction)
        rows = {}
        for scheme in ARMS:
            arm = f"{name}:{scheme}"
            summary = out["summary"][arm]
            row = {m: summary.get(m, {}).get("mean") for m in ("mAP", "psds1")}
            for m in ("mAP", "psds1"):
                share = shares.get((arm, m))
                row[f"share_{m}"] = None if share is None else share["share"]
                row[f"p_{m}"] = None if share is None else share["p_value"]
            row["duration"] = None if scheme == "attention" else duration_gain(out, f"{name}:attention", arm)
            rows[scheme] = row

            def share_cell(m: str) -> str:
                if row[f"share_{m}"] is None:
                    return "-" if scheme in ("attention", "attention-strong") else "undefined"
                p = row[f"p_{m}"]  # None with one trial: no paired test
                return f"{row[f'share_{m}'] * 100:.0f}% ({'n/a' if p is None else f'{p:.3f}'})"

            rho = row["duration"]
            rho_cell = "-" if rho is None or rho["rho"] is None else f"{rho['rho']:+.2f} ({rho['p']:.2f})"
            lines.append(f"| {fraction * 100:.0f}% | `{scheme}` | {detection.percent(row['mAP'])} | "
                         f"{detection.percent(row['psds1'])} | {share_cell('mAP')} | {share_cell('psds1')} | "
                         f"{rho_cell} |")
        table["fractions"][name] = rows
    lines += ["", "Full reports: `study/report.md` (one compare of every fraction's recipe).", ""]
    results.mkdir(parents=True, exist_ok=True)
    (results / "study.md").write_text("\n".join(lines))
    (results / "study.json").write_text(json.dumps(table, indent=2))
    study_figure(table, results / "study.png")
    print("\n".join(lines))
    return table


def study_figure(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric, label in ((axes[0], "mAP", "mAP (%)"), (axes[1], "psds1", "PSDS1 (%)")):
        for scheme in ARMS:
            xs, ys = [], []
            for fraction in FRACTIONS:
                value = table["fractions"][fraction_name(fraction)][scheme][metric]
                if value is not None:
                    xs.append(fraction * 100)
                    ys.append(value * 100)
            ax.plot(xs, ys, marker="o", label=scheme)
        ax.set_xlabel("training clips (%)")
        ax.set_ylabel(label)
        ax.set_xscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("probe", "final", "study", "scratch"), required=True)
    parser.add_argument("--trials", type=int, default=None, help=f"default: {DEFAULT_TRIALS}")
    parser.add_argument("--smoke", action="store_true", help="1 trial, 1 epoch, into recipes/soundscapes/work/"
                        "ssl-v2-*smoke*")
    parser.add_argument("--arms", default=",".join(ARMS), help="scratch: the arms to run (a subset runs beside "
                        "another process's; a run of all of them reuses both)")
    parser.add_argument("args", nargs="*", help="probe: NAME, then overrides; other parts: overrides")
    args = parser.parse_args(argv)
    started = time.time()
    data2.build_soundscapes2(soundscapes.shared_data())
    positional = list(args.args)
    suffix = "-smoke" if args.smoke else ""
    results = WORK / "ssl-v2-smoke-results" if args.smoke else RESULTS
    trials = args.trials or (1 if args.smoke else DEFAULT_TRIALS[args.part])
    overrides = [*detection.SMOKE_OVERRIDES, *positional] if args.smoke else positional
    if args.part == "probe":
        probes = detection.split_probes(positional)
        if args.smoke:
            probes = [(name, [*detection.SMOKE_OVERRIDES, *o]) for name, o in probes]
        detection.probe_part(probes, detection.RECOMMENDED, trials, WORK / f"ssl-v2-probes{suffix}", results, argv,
                             PROBE_TITLE, SCRIPT)
    elif args.part == "final":
        final_part(trials, WORK / f"ssl-v2{suffix}", results, overrides, argv)
    elif args.part == "scratch":
        scratch_part(trials, WORK / f"ssl-v2-scratch{suffix}", results, overrides, argv, tuple(args.arms.split(",")))
    else:
        study_part(trials, WORK / f"ssl-v2-study{suffix}", results, overrides, argv)
    print(f"total {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
