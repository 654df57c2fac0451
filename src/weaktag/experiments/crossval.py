"""``weaktag compare --folds``: leave-one-fold-out cross-validation as paired trials (see :mod:`.folds`)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Mapping

from ..config import ExperimentConfig
from ..errors import UsageError
from .compare import CompareConfig, CompareResult, Recipe, plan_compare, run_plan
from .folds import fold_config, read_folded_set, write_fold_splits


def run_fold_compare(config: ExperimentConfig, options: CompareConfig, out_dir: str | Path, *,
                     recipes: Mapping[str, Recipe] | None = None,
                     log: Callable[[str], None] | None = print) -> CompareResult:
    """One paired trial per fold of ``config.data.train``: trial ``i`` of every arm tests on fold ``i`` (folds in
    numeric order) and trains on the others, with seed ``options.seeds[i]`` (default ``train.seed + i``);
    ``options.trials`` is set to the number of folds. Every recipe trains on the same folds."""
    started = time.time()
    out_dir = Path(out_dir)
    manifest = read_folded_set(config)
    splits = write_fold_splits(manifest, out_dir)
    if options.seeds is not None and len(options.seeds) != len(splits):
        raise UsageError(f"--seeds: {len(options.seeds)} seeds for {len(splits)} folds (one trial per fold)")
    options = dataclasses.replace(options, trials=len(splits), folds=True)
    plans = []
    for split in splits:
        fold_recipes = {name: Recipe(fold_config(r.config, split, manifest.classes), r.source)
                        for name, r in (recipes or {}).items()}
        plans.append(plan_compare(fold_config(config, split, manifest.classes), options, out_dir, fold_recipes))
    plan = dataclasses.replace(plans[0], per_trial=plans, folds=[s.fold for s in splits])
    return run_plan(plan, started, log)
