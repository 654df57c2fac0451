"""The trials of a comparison: arms (a scheme, under the shared config or a named recipe), where a
trial lives, its fingerprint (what must match for a finished trial to be reused), and running one.

``compare`` drives these; a trial is one ``train()`` run whose ``trial.json`` is written last,
atomically, so a trial is finished exactly when that file exists.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..config import ExperimentConfig, TrainSection
from ..errors import DataError, UsageError
from ..settings import result_fields
from ..files import plain, write_json
from ..supervision import SCHEMES, scheme_parameters
from ..training import PreparedData, TrainResult, train
from ..training.run import seed_independent_frozen_backbone

TRIAL_FILE = "trial.json"
TRIAL_FORMAT = "weaktag-trial/2"

#: the arm whose trial of the same seed teaches a PSL arm when ``scheme.teacher`` is not set
TEACHER_SCHEME = "attention"

#: separates a recipe's name from the scheme in an arm name: ``recommended:attention``
RECIPE_SEPARATOR = ":"


@dataclass(frozen=True)
class Arm:
    """One compared arm: a scheme trained under the shared config (``recipe`` None) or under a named recipe."""

    scheme: str
    recipe: str | None = None

    @property
    def name(self) -> str:
        return self.scheme if self.recipe is None else f"{self.recipe}{RECIPE_SEPARATOR}{self.scheme}"

    @classmethod
    def parse(cls, text: str) -> "Arm":
        recipe, sep, scheme = text.strip().rpartition(RECIPE_SEPARATOR)
        if sep and not recipe:
            raise UsageError(f"arm {text!r}: a recipe name is missing before {RECIPE_SEPARATOR!r}")
        return cls(scheme, recipe or None)


def scheme_of(arm: str) -> str:
    """The training scheme of an arm name (``recommended:attention`` -> ``attention``)."""
    return Arm.parse(arm).scheme



def trial_dir(out_dir: str | Path, scheme: str, seed: int) -> Path:
    """``runs/<scheme>/seed<k>``; an arm of a recipe (``recipe:scheme``) has ``runs/<recipe>/<scheme>/seed<k>``."""
    arm = Arm.parse(scheme)
    folder = Path(out_dir) / "runs"
    if arm.recipe is not None:
        folder = folder / arm.recipe
    return folder / arm.scheme / f"seed{seed}"


def fingerprint(config: ExperimentConfig, scheme: str | None = None) -> dict[str, Any]:
    """The parts of a config that change a trial's result, except the scheme name and seed it varies.

    Train settings that only change how a run runs (marked so in :class:`~weaktag.config.TrainSection`:
    progress bar, logger, workers) and the output folder are left out, so changing them does not
    invalidate finished trials; with ``scheme`` (an arm), so are the scheme settings
    that scheme does not take (PSL's chunk length does not change an ``attention`` trial).
    """
    d = config.to_dict()
    settings = {k: v for k, v in d["scheme"].items() if k != "name"}
    if scheme is not None:
        settings = asdict(scheme_parameters(scheme_of(scheme), config.scheme))  # as the arm's trial takes them
        declared = SCHEMES[scheme_of(scheme)].parameters
        # per-class loss weights change every scheme's trial; 0 (off) is left out, so trials made without them match
        settings = {k: v for k, v in settings.items() if k in declared or (k == "class_weight_beta" and v)}
    return {
        "data": d["data"],
        "model": d["model"],
        "scheme": settings,
        "train": {k: d["train"][k] for k in result_fields(TrainSection) if k != "seed"},  # a trial varies the seed
        "augment": d["augment"],
        "mean_teacher": d["mean_teacher"],
    }


_MISSING = object()


def _differences(then: Any, now: Any, default: Any, prefix: str = "") -> list[str]:
    """Settings that differ between a finished trial's fingerprint and the current one.

    A key the trial's record lacks (a setting added to weaktag since) counts as its default,
    and a key the current config lacks (a setting since removed) is ignored.
    """
    if isinstance(then, dict) and isinstance(now, dict):
        out = []
        for key in sorted(now):
            default_value = default.get(key, _MISSING) if isinstance(default, dict) else _MISSING
            old = then.get(key, default_value)
            if old is _MISSING:
                old = None
            out += _differences(old, now[key], default_value, f"{prefix}{key}.")
        return out
    if then is None and now == default:  # records made before each scheme declared its defaults held None
        return []
    return [] if then == now else [f"{prefix[:-1]} ({then!r} then, {now!r} now)"]


def teacher_arm(arm: str, params: object | None = None) -> str:
    """The arm whose same-seed trial teaches the PSL arm ``arm``: its ``scheme.teacher_arm``, else the same
    recipe's ``attention``."""
    named = getattr(params, "teacher_arm", None)
    return named if named else Arm(TEACHER_SCHEME, Arm.parse(arm).recipe).name


def trial_config(config: ExperimentConfig, scheme: str, seed: int, out_dir: Path) -> ExperimentConfig:
    c = copy.deepcopy(config)
    c.scheme = scheme_parameters(scheme_of(scheme), c.scheme)
    c.train.seed = seed
    c.output_dir = str(trial_dir(out_dir, scheme, seed))
    if SCHEMES[c.scheme.name].needs_teacher and not c.scheme.teacher:
        c.scheme.teacher = str(trial_dir(out_dir, teacher_arm(scheme, c.scheme), seed) / "model.pt")
    return c


@dataclass
class TrialRecord:
    """One finished trial, as its ``trial.json`` holds it: test metrics (``metrics`` also has ``val_mAP``,
    ``best_epoch`` and ``wall_seconds``; None where a metric is undefined), per-class AP/AUC on the test
    set, and the fingerprint of the config that made it."""

    scheme: str  # the arm name (``recipe:scheme`` for a recipe's arm)
    seed: int
    trial: int  # its index among the comparison's seeds
    checkpoint: str  # file name inside the trial folder
    classes: list[str]
    n_test: int
    metrics: dict[str, Any]
    per_class_ap: list[float | None]
    per_class_auc: list[float | None]
    test_support: list[int]
    fingerprint: dict[str, Any]
    skipped: dict[str, int]
    diagnostics: list[dict[str, Any]]
    finished: str  # UTC, ISO 8601
    confusion: list[list[int]] | None = None  # single-label test sets: (C, C) counts, row = true class

    #: fields that records written before they existed lack
    OPTIONAL = ("confusion",)

    def to_json(self) -> dict[str, Any]:
        """``trial.json``'s contents (NaN as None)."""
        return plain({"format": TRIAL_FORMAT, **asdict(self)})

    @classmethod
    def from_json(cls, record: dict[str, Any], file: Path | str = TRIAL_FILE) -> "TrialRecord":
        """A record read back from ``trial.json``; raises ValueError naming ``file`` when it is not one."""
        if not isinstance(record, dict) or record.get("format") != TRIAL_FORMAT:
            raise DataError(f"{file}: not a {TRIAL_FORMAT} record; delete it to run the trial again")
        try:
            return cls(**{f.name: record[f.name] for f in fields(cls) if f.name in record or f.name not in cls.OPTIONAL})
        except KeyError as exc:
            raise DataError(f"{file}: trial record lacks {exc}; delete it to run the trial again") from None


def read_trial(path: Path, scheme: str, seed: int, expected: dict[str, Any]) -> TrialRecord | None:
    """A finished trial's record, or None when it has not finished; raises if it was made differently."""
    file = path / TRIAL_FILE
    if not file.exists():
        return None
    try:
        record = TrialRecord.from_json(json.loads(file.read_text()), file)
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{file}: unreadable trial record ({exc}); delete it to run the trial again") from None
    if record.scheme != scheme or record.seed != seed:
        raise DataError(f"{file}: not the record of {scheme} seed {seed}; delete it to run the trial again")
    defaults = fingerprint(ExperimentConfig(), scheme)
    # what a record made before a setting existed, or before its default changed, was made with
    defaults["scheme"].update(SCHEMES[scheme_of(scheme)].Parameters.recorded_defaults)
    diffs = _differences(record.fingerprint or {}, expected, defaults)
    if diffs:
        raise DataError(f"{file} was made with a different config ({'; '.join(diffs)}); use another --out-dir, "
                         f"or delete {path.parent.parent} to start over")
    return record


def trial_metrics(result: TrainResult) -> dict[str, Any]:
    """Test metrics of one trained trial, as ``train()`` computed them (validation thresholds; events when
    the test labels are strong): nothing is reloaded or predicted again."""
    if result.test is None:
        raise DataError("no usable test clip: nothing to evaluate")
    tagging = result.test.tagging
    metrics: dict[str, Any] = {"mAP": tagging.mAP, "AUC": tagging.AUC, "d_prime": tagging.d_prime,
                               "f1_macro": tagging.f1_macro, "f1_micro": tagging.f1_micro}
    if tagging.accuracy is not None:  # a single-label test set
        metrics["accuracy"] = tagging.accuracy
    if result.test.events is not None:
        metrics.update(result.test.events)
    metrics["val_mAP"] = result.best_val_map
    return {"metrics": metrics, "per_class_ap": tagging.per_class_ap, "per_class_auc": tagging.per_class_auc,
            "support": tagging.support, "confusion": None if tagging.confusion is None else tagging.confusion.tolist()}


def run_trial(config: ExperimentConfig, scheme: str, seed: int, index: int, out_dir: Path, data: PreparedData,
              expected: dict[str, Any]) -> TrialRecord:
    """Train and evaluate one trial from scratch; write its ``trial.json`` last (atomically)."""
    started = time.time()
    folder = trial_dir(out_dir, scheme, seed)
    if folder.exists():  # an interrupted trial: start over, never continue from its leftovers
        shutil.rmtree(folder)
    if data.test is None or len(data.test) == 0:
        raise DataError("no usable test clip: nothing to evaluate")
    result = train(trial_config(config, scheme, seed, out_dir), data=data)
    evaluation = trial_metrics(result)
    metrics = {**evaluation["metrics"], "best_epoch": result.best_epoch, "wall_seconds": time.time() - started}
    record = TrialRecord(
        scheme=scheme, seed=seed, trial=index, checkpoint=Path(result.checkpoint).name, classes=list(data.classes),
        n_test=len(data.test), metrics=metrics, per_class_ap=evaluation["per_class_ap"],
        per_class_auc=evaluation["per_class_auc"], test_support=evaluation["support"], fingerprint=expected,
        skipped={k: len(v) for k, v in result.skipped.items()}, diagnostics=result.diagnostics,
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"), confusion=evaluation["confusion"])
    write_json(folder / TRIAL_FILE, record.to_json())
    return TrialRecord.from_json(record.to_json())  # as a reused trial reads back: plain values, NaN as None


def features_key(config: ExperimentConfig) -> str:
    """What a config's prepared features depend on: the front end and time step (log-mel), plus the
    frozen backbone when its outputs are computed once for every trial."""
    grid = config.model.grid
    key: dict[str, Any] = {"frontend": asdict(grid.frontend), "time_stride": grid.time_stride}
    if seed_independent_frozen_backbone(config):
        m = config.model
        key["backbone"] = {**asdict(m.backbone_config()), "init": m.init, "freeze": m.freeze}
    return json.dumps(key, sort_keys=True, default=str)
