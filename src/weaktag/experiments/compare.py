"""``weaktag compare``: N paired trials of several training schemes on the same data, and one report.

Trial ``i`` of every scheme trains with seed ``seeds[i]`` (default ``config.train.seed + i``),
so results are paired and the Wilcoxon signed-rank test applies (the paper, Sec. IV, trains
every variant 20 times). Features are computed once and shared by all trials.

**Recipes**: besides the schemes of the shared config, an entry ``NAME:SCHEME`` trains ``SCHEME``
under another recipe (``recipes[NAME]``: another experiment config on the same data, e.g.
``configs/recommended.yaml``), so one comparison pits recipes against each other with paired
seeds. Each recipe computes its own features (its backbone's front end), once.

Layout under ``out_dir``::

    runs/<scheme>/seed<k>/         one trial: train()'s model.pt, summary.json, logs
    runs/<scheme>/seed<k>/trial.json   its test metrics; written atomically, last
    runs/<recipe>/<scheme>/seed<k>/    a trial of a recipe arm (``recipe:scheme``)
    results.json  results.csv  summary.csv  table.md  wilcoxon.md  wilcoxon.csv
    per_class_ap.csv  gain_vs_duration.png/.md/.csv  attention_<clip>.png  report.md

Resuming: a trial is finished when its ``trial.json`` exists; it is never run again. A trial
folder without one (an interrupted trial) is deleted and the trial run from scratch. A
finished trial made with a different experiment config is an error, not silently mixed in.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..config import ExperimentConfig
from ..data import FeatureSet, build_feature_set
from ..errors import DataError, UsageError
from ..files import plain, write_csv, write_json, write_text_atomic
from ..metrics.statistics import summarize, wilcoxon_pairs
from ..supervision import SCHEMES, make_scheme, scheme_parameters
from ..labels.summary import report_labels
from ..training import PreparedData, build_model, prepare_data, read_manifests
from ..training.run import embed_prepared, seed_independent_frozen_backbone
from . import report as rep
from .pairs import recovered_shares
from .report import CompareResults
from .trials import (Arm, TrialRecord, features_key, fingerprint, read_trial, run_trial, scheme_of, teacher_arm,
                     trial_dir)
from .diagnostics import diagnostics_markdown, plot_diagnostics, summarize_diagnostics
from .figures import draw_attention
from .folds import draw_confusion_matrices
from .plots import gain_vs_duration_table, median_event_durations, plot_gain_vs_duration

@dataclass
class CompareConfig:
    """What to compare and how to report it (the experiment itself is an :class:`ExperimentConfig`)."""

    schemes: list[str]
    trials: int = 5
    seeds: list[int] | None = None  # None: config.train.seed + i for trial i
    gain_pair: tuple[str, str] | None = None  # Fig. 4 (a, b): gain = AP(b) - AP(a); None: see default_gain_pair
    attention_clip: str | None = None  # Fig. 5 test clip id; None: chosen by choose_attention_clip
    durations_from: str = "auto"  # median event durations from "train" or "test" strong labels; auto: train if strong
    command: str | None = None  # recorded in the report
    note: str | None = None  # a line for the report (e.g. which script ran the command)
    folds: bool = False  # leave-one-fold-out: trial i tests on fold i (run by weaktag.experiments.folds)

    def validate(self, base_seed: int) -> list[int]:
        """Check the options; return the seed of every trial."""
        if not self.schemes:
            raise UsageError("give at least one scheme")
        if len(set(self.schemes)) != len(self.schemes):
            raise UsageError(f"a scheme is listed twice: {self.schemes}")
        for name in self.schemes:
            arm = Arm.parse(name)
            if arm.scheme not in SCHEMES:
                raise UsageError(f"unknown scheme {arm.scheme!r}; choose from: {', '.join(SCHEMES)}")
        if self.trials < 1:
            raise UsageError(f"trials must be >= 1, got {self.trials}")
        seeds = list(self.seeds) if self.seeds is not None else [base_seed + i for i in range(self.trials)]
        if len(seeds) != self.trials:
            raise UsageError(f"{len(seeds)} seeds for {self.trials} trials")
        if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
            raise UsageError(f"seeds must be distinct and >= 0: {seeds}")
        if self.gain_pair is not None:
            if len(self.gain_pair) != 2 or self.gain_pair[0] == self.gain_pair[1]:
                raise UsageError(f"gain pair must be two different schemes, got {self.gain_pair}")
            missing = [s for s in self.gain_pair if s not in self.schemes]
            if missing:
                raise UsageError(f"gain pair scheme(s) {missing} are not among the compared schemes {self.schemes}")
        if self.durations_from not in ("auto", "train", "test"):
            raise UsageError(f"durations_from must be auto, train or test, not {self.durations_from!r}")
        return seeds


@dataclass(frozen=True)
class Recipe:
    """Another recipe on the same data, compared as arms ``NAME:SCHEME``; ``source`` (where it came from) is
    for the report."""

    config: ExperimentConfig
    source: str | None = None


@dataclass
class CompareResult:
    """Everything ``run_compare`` found; ``results`` is what ``results.json`` holds."""

    out_dir: Path
    schemes: list[str]
    seeds: list[int]
    trials: dict[str, list[TrialRecord]]  # scheme -> trial records, in seed order
    summary: dict[str, dict[str, dict]]  # scheme -> metric -> {"mean", "std", "n"}
    results: CompareResults
    files: dict[str, Path]
    ran: list[tuple[str, int]] = field(default_factory=list)  # (scheme, seed) trained in this call
    reused: list[tuple[str, int]] = field(default_factory=list)  # finished earlier, read back
    wall_seconds: float = 0.0

    def values(self, scheme: str, metric: str) -> list[float]:
        """The metric over the trials of one scheme (NaN where undefined)."""
        return [_num(t.metrics.get(metric)) for t in self.trials[scheme]]

    @property
    def report(self) -> Path:
        return self.files["report.md"]


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


class _Data:
    """Manifests read once per run; features computed on demand (not at all when every trial is finished
    but the test set), once, for every trial."""

    def __init__(self, config: ExperimentConfig, data: PreparedData | None,
                 manifests: tuple[list[str], dict[str, Any]] | None = None) -> None:
        self.config = config
        self._prepared = data
        self._test: FeatureSet | None = data.test if data is not None else None
        if data is not None and data.manifests:
            self.classes, self.manifests = list(data.classes), dict(data.manifests)
        elif manifests is not None:  # a recipe on the same data: its labels are read once, by the shared config
            self.classes, self.manifests = list(manifests[0]), dict(manifests[1])
        else:
            self.classes, self.manifests = read_manifests(config)
            report_labels(self.classes, self.manifests)  # once per compare, not per trial
        if "test" not in self.manifests:
            raise DataError("compare needs a test set: set data.test in the config")

    @property
    def prepared(self) -> PreparedData:
        if self._prepared is None:
            self._prepared = prepare_data(self.config, manifests=(self.classes, self.manifests))
            self._test = self._prepared.test  # log-mel, for the figures
            if seed_independent_frozen_backbone(self.config):  # once for every trial, not once per trial
                model = build_model(self.config, len(self.classes), make_scheme("attention"))
                self._prepared = embed_prepared(model, self._prepared, cache=self.config.train.feature_cache)
        return self._prepared

    @property
    def test(self) -> FeatureSet:
        if self._test is None:
            self._test = build_feature_set(self.manifests["test"], self.classes,
                                           grid=self.config_grid())
        return self._test

    def config_grid(self):
        return self.config.model.grid


# --------------------------------------------------------------------------- figures


def default_gain_pair(schemes: Sequence[str]) -> tuple[str, str] | None:
    """``attention`` vs ``attention-self`` (the paper's Fig. 4) when both are compared, else the first two."""
    if "attention" in schemes and "attention-self" in schemes:
        return "attention", "attention-self"
    return (schemes[0], schemes[1]) if len(schemes) >= 2 else None


# --------------------------------------------------------------------------- the comparison


@dataclass
class ComparePlan:
    """A checked comparison: its arms and seeds, each recipe's config and data, and the fingerprint every
    trial of an arm must match to be reused."""

    config: ExperimentConfig  # the shared one
    options: CompareConfig
    out_dir: Path
    seeds: list[int]
    arms: dict[str, Arm]
    recipes: dict[str, Recipe]
    sources: dict[str | None, _Data]  # recipe (None: the shared config) -> its data
    expected: dict[str, dict[str, Any]]  # arm -> fingerprint
    # leave-one-fold-out: trial i's own plan (its fold's data and fingerprints) and the fold it tests on;
    # the report describes the first fold's data
    per_trial: list["ComparePlan"] | None = None
    folds: list[str] | None = None

    def trial(self, i: int) -> "ComparePlan":
        """The plan trial ``i`` trains under: its fold's with folds, else this one."""
        return self.per_trial[i] if self.per_trial else self

    def release(self, keep_test: bool) -> None:
        """Forget the prepared features (the test set's too unless ``keep_test``: the figures draw the first one's)."""
        for source in self.sources.values():
            source._prepared, source._test = None, source._test if keep_test else None

    @property
    def schemes(self) -> list[str]:
        return self.options.schemes

    @property
    def source(self) -> _Data:
        return self.sources[None]

    def config_of(self, arm: str) -> ExperimentConfig:
        recipe = self.arms[arm].recipe
        return self.config if recipe is None else self.recipes[recipe].config

    def recipe_info(self) -> dict[str, dict[str, Any]]:
        """Where each compared recipe came from and its config, for the report."""
        return {name: {"source": self.recipes[name].source, "config": self.recipes[name].config.to_dict()}
                for name in self.sources if name is not None}


def run_compare(config: ExperimentConfig, options: CompareConfig, out_dir: str | Path, *,
                recipes: Mapping[str, Recipe] | None = None, data: PreparedData | None = None,
                log: Callable[[str], None] | None = print) -> CompareResult:
    """Train ``options.trials`` paired seeds of every arm (skipping finished trials) and write the report.

    ``config`` is the experiment every trial shares; its ``scheme.name``, ``train.seed`` and
    ``output_dir`` are replaced per trial. ``data``: features already prepared for ``config``.
    ``options.schemes`` may name arms ``recipe:scheme``, trained under ``recipes[recipe]``.
    """
    started = time.time()
    plan = plan_compare(config, options, Path(out_dir), recipes or {}, data)
    return run_plan(plan, started, log)


def run_plan(plan: ComparePlan, started: float, log: Callable[[str], None] | None = print) -> CompareResult:
    """Every trial of a checked plan that is not finished yet, then the report."""
    say = log or (lambda _msg: None)
    records, reused = finished_trials(plan)
    ran = run_missing_trials(plan, records, say, reused=len(reused))
    trials = {s: [r for r in records[s] if r is not None] for s in plan.schemes}
    return write_report(plan, trials, ran, reused, started, say)


def plan_compare(config: ExperimentConfig, options: CompareConfig, out_dir: Path, recipes: Mapping[str, Recipe],
                 data: PreparedData | None = None) -> ComparePlan:
    """Check the options, the arms' recipes and schemes, and read the labels; nothing is trained."""
    seeds = options.validate(config.train.seed)
    arms = {name: Arm.parse(name) for name in options.schemes}
    recipes = dict(recipes)
    unknown = sorted({a.recipe for a in arms.values() if a.recipe is not None and a.recipe not in recipes})
    if unknown:
        raise UsageError(f"unknown recipe(s) {', '.join(unknown)} in --schemes; define each with "
                         f"--recipe NAME=CONFIG.yaml" + (f" (defined: {', '.join(recipes)})" if recipes else ""))
    if not config.data.test:
        raise DataError("compare needs a test set: set data.test in the config")
    plan = ComparePlan(config, options, out_dir, seeds, arms, recipes, _data_sources(config, data, arms, recipes), {})
    _check_arms(plan)
    plan.expected = {name: fingerprint(plan.config_of(name), name) for name in arms}
    return plan


def _data_sources(config: ExperimentConfig, data: PreparedData | None, arms: Mapping[str, Arm],
                  recipes: Mapping[str, Recipe]) -> dict[str | None, _Data]:
    """The shared config's data, and each recipe's: recipes on the same features and clips share them; a recipe
    with training data of its own (``weaktag.config.RECIPE_DATA_KEYS``) reads its labels, of the same classes."""
    source = _Data(config, data)
    sources: dict[str | None, _Data] = {None: source}
    by_features = {(features_key(config), repr(config.data)): source}
    for name in sorted({a.recipe for a in arms.values() if a.recipe is not None}):
        recipe = recipes[name].config
        key = (features_key(recipe), repr(recipe.data))
        if key not in by_features:
            same_clips = recipe.data == config.data
            by_features[key] = _Data(recipe, None, manifests=(source.classes, source.manifests) if same_clips else None)
            if by_features[key].classes != source.classes:
                raise DataError(f"recipe {name}: its training labels {recipe.data.train} have other classes than "
                                f"{config.data.train} ({len(by_features[key].classes)} vs {len(source.classes)}); "
                                "compared recipes need the same classes (set data.classes)")
        sources[name] = by_features[key]
    return sources


def _check_arms(plan: ComparePlan) -> None:
    """Fail before training on labels a scheme lacks, bad scheme settings, or a teacher listed too late."""
    arms = plan.arms
    if any(SCHEMES[a.scheme].needs_strong for a in arms.values()) and not plan.source.manifests["train"].has_strong:
        needing = [n for n, a in arms.items() if SCHEMES[a.scheme].needs_strong]
        raise DataError(f"scheme(s) {needing} need strong labels (onset/offset) and {plan.config.data.train} has "
                         "none")
    for position, (name, a) in enumerate(arms.items()):
        config = plan.config_of(name)
        params = scheme_parameters(a.scheme, config.scheme)  # the arm's: the shared values it takes
        make_scheme(a.scheme, params)  # fail now on bad scheme settings
        if SCHEMES[a.scheme].needs_teacher and not getattr(params, "teacher", None):
            teacher = teacher_arm(name, params)
            if teacher not in plan.schemes[:position]:
                raise UsageError(f"arm {name} learns from the {teacher} trial of each seed: list {teacher} before "
                                 f"it in --schemes, or set scheme.teacher to a checkpoint")


def finished_trials(plan: ComparePlan) -> tuple[dict[str, list[TrialRecord | None]], list[tuple[str, int]]]:
    """Every arm's trial records in seed order (None: not finished), and the (arm, seed) of those found."""
    records: dict[str, list[TrialRecord | None]] = {s: [None] * len(plan.seeds) for s in plan.schemes}
    reused = []
    classes = plan.source.classes
    for i, seed in enumerate(plan.seeds):
        for scheme in plan.schemes:
            folder = trial_dir(plan.out_dir, scheme, seed)
            record = read_trial(folder, scheme, seed, plan.trial(i).expected[scheme])
            if record is not None:
                if record.classes != classes:
                    raise DataError(f"{folder} was trained on other classes than the config's "
                                     f"({len(record.classes)} vs {len(classes)}); use another --out-dir")
                records[scheme][i] = record
                reused.append((scheme, seed))
    return records, reused


def run_missing_trials(plan: ComparePlan, records: dict[str, list[TrialRecord | None]], say: Callable[[str], None],
                       reused: int = 0) -> list[tuple[str, int]]:
    """Train every trial ``records`` lacks (filling it in); returns the (arm, seed) of each."""
    todo = [(i, seed, s) for i, seed in enumerate(plan.seeds) for s in plan.schemes if records[s][i] is None]
    if reused:
        say(f"compare: {reused} finished trial(s) reused, {len(todo)} to run")
    ran = []
    for n, (i, seed, scheme) in enumerate(todo, start=1):
        if plan.per_trial and n > 1 and todo[n - 2][0] != i:  # a fold's trials are done: free its features
            plan.trial(todo[n - 2][0]).release(keep_test=todo[n - 2][0] == 0)
        fold = f" (test: fold {plan.folds[i]})" if plan.folds else ""
        say(f"compare: trial {n}/{len(todo)}: {scheme} seed {seed}{fold} ...")
        trial = plan.trial(i)
        data = trial.sources[plan.arms[scheme].recipe].prepared
        record = run_trial(trial.config_of(scheme), scheme, seed, i, plan.out_dir, data, trial.expected[scheme])
        records[scheme][i] = record
        ran.append((scheme, seed))
        m = record.metrics
        say(f"compare:   {scheme} seed {seed}: test mAP {_num(m['mAP']):.4f}, best epoch {m['best_epoch']}, "
            f"{m['wall_seconds']:.0f} s")
    return ran


def _shown(path: str) -> str:
    """A data path as the report shows it: relative to the working folder when inside it."""
    if not path:
        return path
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


# --------------------------------------------------------------------------- the report


class _Files:
    """The files a report writes, each with a line saying what it holds (``report.md``'s Files section)."""

    def __init__(self) -> None:
        self.paths: dict[str, Path] = {}
        self.described: dict[str, str] = {}

    def add(self, name: str, path: Path, what: str) -> None:
        self.paths[name] = path
        self.described[name] = what


@dataclass
class _PerClass:
    """Mean AP per class and arm over the trials, and the classes' median event durations."""

    ap: dict[str, np.ndarray]
    durations: np.ndarray
    durations_from: str  # "train" or "test"
    label: str  # where the durations come from, as the report says it


def write_report(plan: ComparePlan, trials: dict[str, list[TrialRecord]], ran: list[tuple[str, int]],
                 reused: list[tuple[str, int]], started: float, say: Callable[[str], None]) -> CompareResult:
    """Every table, figure and ``report.md`` from the finished trial records."""
    out_dir, files = plan.out_dir, _Files()
    summary, metrics = _summary(trials)
    headline = [m for m in rep.HEADLINE_METRICS if m in metrics]
    _write_trial_tables(plan, trials, summary, metrics, files)
    per_class = _per_class(plan, trials, files)
    gain, gain_skipped = _draw_gain(plan, per_class, files)
    figures = _draw_attention_figures(plan, files)
    diagnostics = _diagnostics(plan, trials, files)
    results = _results(plan, trials, summary, metrics, headline, per_class, ran, reused, started)
    results.gain_vs_duration, results.gain_skipped = gain, gain_skipped
    results.attention_figures, results.attention_figure = figures, figures[0] if figures else None
    results.attention_skipped = None if figures else "no test clip has strong labels"
    results.diagnostics = diagnostics
    results.confusion = draw_confusion_matrices(plan.out_dir, trials, plan.source.classes, files.add)
    results = CompareResults.from_json(results.to_json())  # JSON types (NaN as None), as results.json holds them
    _write_summaries(plan, results, files)
    files.add("results.json", out_dir / "results.json", "everything above, and every trial's metrics")
    files.add("report.md", out_dir / "report.md", "this report")
    results.files = files.described
    results.wall_seconds = time.time() - started
    write_json(out_dir / "results.json", results.to_json())
    write_text_atomic(out_dir / "report.md", rep.report_markdown(results))
    say(f"compare: report -> {out_dir / 'report.md'}")
    return CompareResult(out_dir, plan.schemes, plan.seeds, trials, summary, results, files.paths, ran, reused,
                         results.wall_seconds)


def _summary(trials: dict[str, list[TrialRecord]]) -> tuple[dict[str, dict[str, dict]], list[str]]:
    """Mean, std and count of every metric some trial defines, per arm; and those metrics, in report order."""
    metrics = [m for m in rep.METRICS if any(
        math.isfinite(_num(t.metrics.get(m))) for ts in trials.values() for t in ts)]
    summary = {}
    for scheme, ts in trials.items():
        summary[scheme] = {}
        for m in metrics:
            finite = [v for v in (_num(t.metrics.get(m)) for t in ts) if math.isfinite(v)]
            mean, std = summarize(finite)
            summary[scheme][m] = {"mean": mean, "std": std, "n": len(finite)}
    return summary, metrics


def _write_trial_tables(plan: ComparePlan, trials: dict[str, list[TrialRecord]], summary: dict[str, dict[str, dict]],
                        metrics: list[str], files: _Files) -> None:
    """``results.csv`` (one row per arm x trial) and ``summary.csv`` (mean and std per arm)."""
    rows = []
    for scheme in plan.schemes:
        for t in trials[scheme]:
            row = {"scheme": scheme, "trial": t.trial, "seed": t.seed}
            row.update({m: t.metrics.get(m) for m in metrics})
            row.update({f"AP:{c}": ap for c, ap in zip(plan.source.classes, t.per_class_ap)})
            rows.append(row)
    files.add("results.csv", write_csv(plan.out_dir / "results.csv", rows),
              "one row per scheme x trial: every metric, per-class AP")
    srows = [{"scheme": s, "trials": len(trials[s]),
              **{f"{m}_{k}": summary[s][m][k] for m in metrics for k in ("mean", "std")}} for s in plan.schemes]
    files.add("summary.csv", write_csv(plan.out_dir / "summary.csv", srows),
              "mean and std (ddof=1) of every metric per scheme")


def _wilcoxon_tests(trials: dict[str, list[TrialRecord]], schemes: Sequence[str],
                    headline: Sequence[str]) -> list[dict[str, Any]]:
    """Every pair x headline metric, on trial indices every scheme finished, with how often each side won."""
    tests = []
    for m in headline:
        values = {s: [_num(t.metrics.get(m)) for t in trials[s]] for s in schemes}
        for test in wilcoxon_pairs(values, m) if len(schemes) >= 2 else []:
            a, b = np.asarray(values[test.a]), np.asarray(values[test.b])
            keep = np.isfinite(a) & np.isfinite(b)
            tests.append({**asdict(test), "b_better": int((b[keep] > a[keep]).sum()),
                          "a_better": int((a[keep] > b[keep]).sum())})
    return tests


def _per_class(plan: ComparePlan, trials: dict[str, list[TrialRecord]], files: _Files) -> _PerClass:
    """Mean AP per class and arm, median event durations, and ``per_class_ap.csv``."""
    source, classes = plan.source, plan.source.classes
    durations_from = plan.options.durations_from
    if durations_from == "auto":
        durations_from = "train" if source.manifests["train"].has_strong else "test"
    duration_manifest = source.manifests[durations_from]
    durations = median_event_durations(duration_manifest, classes)
    label = f"{durations_from} strong labels ({sum(len(c.events or ()) for c in duration_manifest)} events)"
    ap = {s: np.nanmean(np.array([[_num(x) for x in t.per_class_ap] for t in trials[s]]), axis=0)
          if trials[s] else np.full(len(classes), np.nan) for s in plan.schemes}
    rows = [{"class": c, "median_duration": durations[k], **{s: ap[s][k] for s in plan.schemes}}
            for k, c in enumerate(classes)]
    files.add("per_class_ap.csv", write_csv(plan.out_dir / "per_class_ap.csv", rows),
              f"mean AP per class and scheme, with median event duration from the {label}")
    return _PerClass(ap, durations, durations_from, label)


def _draw_gain(plan: ComparePlan, per_class: _PerClass, files: _Files) -> tuple[dict[str, Any] | None, str | None]:
    """Fig. 4 with its table and finding; or None and why it was not drawn."""
    pair = plan.options.gain_pair or default_gain_pair(plan.schemes)
    if pair is None:
        return None, "needs two schemes"
    if not np.isfinite(per_class.durations).any():
        return None, f"no strong labels in the {per_class.durations_from} set, so no event durations"
    out_dir, classes, (a, b) = plan.out_dir, plan.source.classes, pair
    ap_a, ap_b = per_class.ap[a], per_class.ap[b]
    table = gain_vs_duration_table(ap_a, ap_b, classes, per_class.durations, a, b)
    png = out_dir / "gain_vs_duration.png"
    plot_gain_vs_duration(ap_a, ap_b, classes, per_class.durations, a, b, png)
    files.add(png.name, png, f"Fig. 4: per-class AP gain of {b} over {a} vs. median event duration")
    files.add("gain_vs_duration.csv", write_csv(out_dir / "gain_vs_duration.csv", rep.gain_rows(table)),
              "Fig. 4's numbers")
    gain = plain({"a": a, "b": b, "durations_from": per_class.label, "figure": "gain_vs_duration.png",
                  "rows": rep.gain_rows(table), "spearman_rho": table.spearman_rho, "spearman_p": table.spearman_p,
                  "n": table.n})
    text = rep.gain_markdown(gain) + "\n\n" + rep.gain_finding(gain) + "\n"
    files.add("gain_vs_duration.md", write_text_atomic(out_dir / "gain_vs_duration.md", text),
              "Fig. 4's table, Spearman's rho and the finding")
    return gain, None


def _draw_attention_figures(plan: ComparePlan, files: _Files) -> list[dict[str, Any]]:
    """Fig. 5: one figure per recipe (each has its own front end and time grid); an earlier run's others removed."""
    figures = []
    groups: dict[str | None, list[str]] = {}
    for scheme in plan.schemes:
        groups.setdefault(plan.arms[scheme].recipe, []).append(scheme)
    for recipe, members in groups.items():
        figure = draw_attention(plan.out_dir, members, plan.seeds[0], plan.sources[recipe].test,
                                plan.options.attention_clip)
        if figure is not None:
            figures.append(figure)
            files.add(figure["figure"], plan.out_dir / figure["figure"],
                      f"Fig. 5: attention A and X^a of test clip {figure['clip']} (first trial of "
                      + (f"each arm of recipe {recipe})" if recipe else "each scheme)"))
    drawn = {f["figure"] for f in figures}
    for old in plan.out_dir.glob("attention_*.png"):  # a figure of another clip, from an earlier run
        if old.name not in drawn:
            old.unlink()
    return figures


def _diagnostics(plan: ComparePlan, trials: dict[str, list[TrialRecord]], files: _Files) -> dict[str, dict]:
    """Self-supervision diagnostics (attention arms, strongly labelled validation clips): table and figure."""
    runs = {s: [(t.diagnostics, int(t.metrics["best_epoch"])) for t in trials[s]] for s in plan.schemes}
    diagnostics = summarize_diagnostics(runs)
    if diagnostics:
        png = plan.out_dir / "diagnostics.png"
        files.add(png.name, plot_diagnostics(diagnostics, png),
                  "self-supervision diagnostics against epochs (P vs Y, attention mass and entropy)")
        text = diagnostics_markdown(diagnostics) + "\n"
        files.add("diagnostics.md", write_text_atomic(plan.out_dir / "diagnostics.md", text),
                  "the diagnostics at the best (first) epoch per arm")
    return diagnostics


def _results(plan: ComparePlan, trials: dict[str, list[TrialRecord]], summary: dict[str, dict[str, dict]],
             metrics: list[str], headline: list[str], per_class: _PerClass, ran: list, reused: list,
             started: float) -> CompareResults:
    """The settings, summaries and tests of ``results.json``; the figures are filled in by the caller."""
    config, options, schemes, classes = plan.config, plan.options, plan.schemes, plan.source.classes
    split_info = {k: {"clips": len(m), "strong": sum(1 for c in m if c.has_strong)}
                  for k, m in plan.source.manifests.items()}
    tests = _wilcoxon_tests(trials, schemes, headline)
    # which labels each arm's training used (weak, strong or weak+strong): its scheme's declaration
    labels = {s: SCHEMES[scheme_of(s)].labels for s in schemes}
    return CompareResults(
        command=options.command, note=options.note,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        wall_seconds=time.time() - started,
        trial_seconds_total=sum(_num(t.metrics["wall_seconds"]) for ts in trials.values() for t in ts),
        ran=len(ran), reused=len(reused), schemes=schemes, trials=options.trials, seeds=plan.seeds,
        scheme_labels=labels,
        scheme_info={s: rep.scheme_info(SCHEMES[scheme_of(s)]) for s in schemes},
        recipes=plan.recipe_info(), compare=asdict(options), config=config.to_dict(),
        data={**{k: _shown(getattr(config.data, k)) for k in ("train", "validation", "test")},
              "classes": classes, "clips": split_info},
        metrics=metrics, headline_metrics=headline, summary=summary,
        wilcoxon=tests,
        recovered=recovered_shares(tests, schemes, labels),
        per_class={"classes": classes, "median_duration": per_class.durations, "durations_from": per_class.label,
                   "ap": per_class.ap},
        gain_vs_duration=None, gain_skipped=None, attention_figure=None, attention_skipped=None, folds=plan.folds,
        runs={s: [{"trial": t.trial, "seed": t.seed, "metrics": t.metrics, "per_class_ap": t.per_class_ap,
                   "checkpoint": t.checkpoint} for t in trials[s]] for s in schemes},
    )


def _write_summaries(plan: ComparePlan, results: CompareResults, files: _Files) -> None:
    """``table.md``, ``wilcoxon.csv`` and ``wilcoxon.md`` from the results."""
    out_dir = plan.out_dir
    files.add("table.md", write_text_atomic(out_dir / "table.md", rep.table_markdown(results)),
              "Table I style: mean ± std per scheme (tagging, events, training)")
    columns = ["metric", "a", "b", "mean_diff", "b_better", "a_better", "n", "statistic", "p_value"]
    files.add("wilcoxon.csv", write_csv(out_dir / "wilcoxon.csv", results.wilcoxon, columns),
              "Wilcoxon signed-rank test of every pair on every headline metric")
    text = (rep.wilcoxon_note(results.trials) + "\n\n" + rep.wilcoxon_markdown(results.wilcoxon,
                                                                                 results.headline_metrics) + "\n")
    files.add("wilcoxon.md", write_text_atomic(out_dir / "wilcoxon.md", text), "the same as markdown")
