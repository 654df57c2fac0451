#!/usr/bin/env python
"""Validation probes of the mean teacher's settings (issue 21), outside CI.

    python recipes/soundscapes/mean_teacher_probes.py

The new recipe (``configs/recommended.yaml``) trained on the 25%-labelled variant of the soundscapes v2
(``train/labelled25.jsonl``), alone or with the other 75% of the training clips as unlabelled clips under a
mean teacher of each setting below; seed 0, scored on the *validation* split (no test clip is read; thresholds
and filters are chosen on the same clips, so the figures are optimistic, alike for every probe). Three rounds,
each one ``weaktag compare`` (finished trials are reused, so running this again only rewrites the table):
the EMA decay and the ramp-up; the teacher's own dropout and the unlabelled share of a batch; those two with
the best decay of the first round.

Writes ``results/detection/mean_teacher_probes.md`` and ``.json``; each round's report goes to
``results/detection/mean_teacher_probes/<round>/``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import compare_soundscapes as soundscapes  # noqa: E402
import detection  # noqa: E402
import soundscapes2 as data2  # noqa: E402
from compare_soundscapes import rel  # noqa: E402

WORK = detection.WORK / "mt-probe"
RESULTS = detection.RESULTS
#: round (its compare's folder under WORK) -> probe -> the recipe's mean_teacher section (None: no unlabelled clips)
ROUNDS: dict[str, dict[str, dict | None]] = {
    "run": {"labelled25": None,
            "mt999": {"weight": 1.0},
            "mt99r10": {"weight": 1.0, "ema_decay": 0.99, "rampup_epochs": 10},
            "mt95r10": {"weight": 1.0, "ema_decay": 0.95, "rampup_epochs": 10}},
    "run2": {"mtdrop": {"weight": 1.0, "ema_decay": 0.99, "rampup_epochs": 10, "teacher_dropout": True},
             "mtdropf25": {"weight": 1.0, "ema_decay": 0.99, "rampup_epochs": 10, "teacher_dropout": True,
                           "unlabeled_fraction": 0.25}},
    "run3": {"mt95r10f25": {"weight": 1.0, "ema_decay": 0.95, "rampup_epochs": 10, "unlabeled_fraction": 0.25},
             "mt95r10drop": {"weight": 1.0, "ema_decay": 0.95, "rampup_epochs": 10, "teacher_dropout": True}},
}
METRICS = ("mAP", "psds1", "psds2", "event_f1_macro")


def probe_recipe(name: str, mean_teacher: dict | None) -> Path:
    """The recommended recipe on the 25% labelled clips, plus the other 75% under ``mean_teacher``."""
    recipe = detection.recipe_yaml()
    data = {"train": data2.LABELLED}
    if mean_teacher is not None:
        recipe["mean_teacher"] = dict(mean_teacher)
        data["unlabeled"] = data2.UNLABELLED
    return detection.write_recipe(recipe, WORK / "recipes" / f"{name}.yaml", data)


def run_round(folder: str, probes: dict[str, dict | None], argv: list[str]) -> dict:
    recipes = {name: rel(probe_recipe(name, mt)) for name, mt in probes.items()}
    on_validation = [f"data.test={rel(data2.manifest('validation'))}"]
    out = detection.compare([f"{name}:attention" for name in probes], recipes, 1, WORK / folder, on_validation,
                            argv, "mean-teacher probe")
    soundscapes.copy_report(WORK / folder, RESULTS / "mean_teacher_probes" / folder)
    return out


def probe_row(name: str, mean_teacher: dict | None, trial: dict) -> dict:
    metrics = trial["metrics"]
    return {"probe": name, "mean_teacher": mean_teacher, "seed": trial["seed"],
            **{m: metrics.get(m) for m in METRICS}, "best_epoch": metrics.get("best_epoch"),
            "minutes": (metrics.get("wall_seconds") or 0) / 60}


def table(rows: list[dict]) -> str:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}"

    lines = ["Mean-teacher probes (`python recipes/soundscapes/mean_teacher_probes.py`): `configs/recommended.yaml` "
             "on the 25% labelled training clips, with the other 75% unlabelled under each mean teacher; seed 0, "
             "scored on the validation split (settings chosen on the same clips: optimistic, alike for every "
             "probe), %.", "",
             "| probe | mean_teacher | mAP | PSDS1 | PSDS2 | event F1 macro | best epoch | min per trial |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        settings = "none (25% labelled only)" if r["mean_teacher"] is None else " ".join(
            f"{k}={v}" for k, v in r["mean_teacher"].items())
        lines.append(f"| {r['probe']} | `{settings}` | " + " | ".join(pct(r[m]) for m in METRICS)
                     + f" | {r['best_epoch']} | {r['minutes']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    started = time.time()
    data2.build_soundscapes2(soundscapes.shared_data())
    rows = []
    for folder, probes in ROUNDS.items():
        out = run_round(folder, probes, argv)
        for name, mean_teacher in probes.items():
            rows += [probe_row(name, mean_teacher, t) for t in out["runs"][f"{name}:attention"]]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "mean_teacher_probes.json").write_text(json.dumps(rows, indent=2) + "\n")
    (RESULTS / "mean_teacher_probes.md").write_text(table(rows))
    print(table(rows))
    print(f"total {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
