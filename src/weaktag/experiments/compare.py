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

from ..checkpoint import load_checkpoint
from ..config import ExperimentConfig
from ..data import FeatureSet, build_feature_set
from ..files import plain, write_csv, write_json, write_text_atomic
from ..labels import Clip
from ..metrics.statistics import summarize, wilcoxon_pairs
from ..supervision import SCHEMES, make_scheme, scheme_parameters
from ..labels.summary import report_labels
from ..training import PreparedData, build_model, predict_features, prepare_data, read_manifests
from ..training.run import embed_prepared, seed_independent_frozen_backbone
from . import report as rep
from .trials import Arm, features_key, fingerprint, read_trial, run_trial, scheme_of, teacher_arm, trial_dir
from .diagnostics import diagnostics_markdown, plot_diagnostics, summarize_diagnostics, trial_diagnostics
from .figures import ModelOutputs, attention_panels
from .plots import gain_vs_duration_table, median_event_durations, plot_attention, plot_gain_vs_duration

RESULTS_FORMAT = "weaktag-compare/1"
#: events at most this long make a clip a good Fig. 5 example (the paper's gain is on short events)
SHORT_EVENT_SECONDS = 1.0


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

    def validate(self, base_seed: int) -> list[int]:
        """Check the options; return the seed of every trial."""
        if not self.schemes:
            raise ValueError("give at least one scheme")
        if len(set(self.schemes)) != len(self.schemes):
            raise ValueError(f"a scheme is listed twice: {self.schemes}")
        for name in self.schemes:
            arm = Arm.parse(name)
            if arm.scheme not in SCHEMES:
                raise ValueError(f"unknown scheme {arm.scheme!r}; choose from: {', '.join(SCHEMES)}")
        if self.trials < 1:
            raise ValueError(f"trials must be >= 1, got {self.trials}")
        seeds = list(self.seeds) if self.seeds is not None else [base_seed + i for i in range(self.trials)]
        if len(seeds) != self.trials:
            raise ValueError(f"{len(seeds)} seeds for {self.trials} trials")
        if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
            raise ValueError(f"seeds must be distinct and >= 0: {seeds}")
        if self.gain_pair is not None:
            if len(self.gain_pair) != 2 or self.gain_pair[0] == self.gain_pair[1]:
                raise ValueError(f"gain pair must be two different schemes, got {self.gain_pair}")
            missing = [s for s in self.gain_pair if s not in self.schemes]
            if missing:
                raise ValueError(f"gain pair scheme(s) {missing} are not among the compared schemes {self.schemes}")
        if self.durations_from not in ("auto", "train", "test"):
            raise ValueError(f"durations_from must be auto, train or test, not {self.durations_from!r}")
        return seeds


@dataclass
class CompareResult:
    """Everything ``run_compare`` found; ``results`` is what ``results.json`` holds."""

    out_dir: Path
    schemes: list[str]
    seeds: list[int]
    trials: dict[str, list[dict]]  # scheme -> trial records (trial.json contents), in seed order
    summary: dict[str, dict[str, dict]]  # scheme -> metric -> {"mean", "std", "n"}
    results: dict[str, Any]
    files: dict[str, Path]
    ran: list[tuple[str, int]] = field(default_factory=list)  # (scheme, seed) trained in this call
    reused: list[tuple[str, int]] = field(default_factory=list)  # finished earlier, read back
    wall_seconds: float = 0.0

    def values(self, scheme: str, metric: str) -> list[float]:
        """The metric over the trials of one scheme (NaN where undefined)."""
        return [_num(t["metrics"].get(metric)) for t in self.trials[scheme]]

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
            raise ValueError("compare needs a test set: set data.test in the config")

    @property
    def prepared(self) -> PreparedData:
        if self._prepared is None:
            self._prepared = prepare_data(self.config, manifests=(self.classes, self.manifests))
            self._test = self._prepared.test  # log-mel, for the figures
            if seed_independent_frozen_backbone(self.config):  # once for every trial, not once per trial
                model = build_model(self.config, len(self.classes), make_scheme("attention"))
                self._prepared = embed_prepared(model, self._prepared)
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


def choose_attention_clip(clips: Sequence[Clip], classes: Sequence[str], clip_id: str | None = None) -> Clip | None:
    """The Fig. 5 example: ``clip_id``, or the strongly labelled test clip that best shows short events.

    Preference: a target-class event of at most ``SHORT_EVENT_SECONDS``, then more distinct
    classes (up to 3; the paper's example has two), then the shortest such event, then clip id.
    """
    if clip_id is not None:
        for clip in clips:
            if clip.clip_id == clip_id:
                return clip
        raise ValueError(f"clip {clip_id!r} is not in the test set")
    known = set(classes)
    best, best_key = None, None
    for clip in clips:
        events = [e for e in (clip.events or ()) if e.label in known and e.onset < 10.0]
        if not events:
            continue
        shortest = min(e.duration for e in events)
        key = (shortest > SHORT_EVENT_SECONDS, -min(len({e.label for e in events}), 3), shortest, clip.clip_id)
        if best_key is None or key < best_key:
            best, best_key = clip, key
    return best


def _safe_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def draw_attention(out_dir: Path, schemes: Sequence[str], seed: int, test: FeatureSet,
                   clip_id: str | None = None) -> dict[str, Any] | None:
    """Fig. 5 for one test clip from the trial-``seed`` checkpoint of each scheme (attention schemes; all when none)."""
    clip = choose_attention_clip(test.clips, test.classes, clip_id)
    if clip is None:
        return None
    index = next(i for i, c in enumerate(test.clips) if c.clip_id == clip.clip_id)
    chosen = [s for s in schemes if SCHEMES[scheme_of(s)].uses_attention] or list(schemes)
    one = FeatureSet([clip], list(test.classes), test.features[index : index + 1], grid=test.grid,
                     clip_seconds=test.clip_seconds)
    outputs = []
    for scheme in chosen:
        ckpt = load_checkpoint(trial_dir(out_dir, scheme, seed) / "model.pt")
        pred = predict_features(ckpt.model, one)
        outputs.append(ModelOutputs(f"{scheme} (seed {seed})", pred.segment_probs[0],
                                    None if pred.attention is None else pred.attention[0], test.grid.segment_seconds))
    recipe = Arm.parse(chosen[0]).recipe
    name = f"attention_{_safe_name(recipe) + '_' if recipe else ''}{_safe_name(clip.clip_id)}.png"
    events = list(clip.events or ())
    plot_attention(test.features[index].numpy(), events, test.classes, attention_panels(outputs), out_dir / name,
                   hop_seconds=test.grid.frontend.frame_seconds)
    return {"clip": clip.clip_id, "figure": name, "seed": seed, "schemes": chosen, "recipe": recipe,
            "attention": any(o.attention is not None for o in outputs),
            "events": [{"label": e.label, "onset": e.onset, "offset": e.offset} for e in events]}


# --------------------------------------------------------------------------- the comparison


def run_compare(
    config: ExperimentConfig,
    schemes: Sequence[str],
    trials: int,
    out_dir: str | Path,
    seeds: Sequence[int] | None = None,
    *,
    gain_pair: tuple[str, str] | None = None,
    attention_clip: str | None = None,
    durations_from: str = "auto",
    command: str | None = None,
    note: str | None = None,
    data: PreparedData | None = None,
    recipes: Mapping[str, ExperimentConfig] | None = None,
    recipe_sources: Mapping[str, str] | None = None,
    log: Callable[[str], None] | None = print,
) -> CompareResult:
    """Train ``trials`` paired seeds of every scheme (skipping finished trials) and write the report.

    ``config`` is the experiment every trial shares; its ``scheme.name``, ``train.seed`` and
    ``output_dir`` are replaced per trial. ``data``: features already prepared for ``config``.
    ``schemes`` may name arms ``recipe:scheme``, trained under ``recipes[recipe]`` (a config on
    the same data; ``recipe_sources`` says where each came from, for the report).
    """
    started = time.time()
    options = CompareConfig(list(schemes), trials, list(seeds) if seeds is not None else None,
                            tuple(gain_pair) if gain_pair else None, attention_clip, durations_from, command, note)
    seeds = options.validate(config.train.seed)
    schemes = options.schemes
    arms = {name: Arm.parse(name) for name in schemes}
    recipes = dict(recipes or {})
    unknown = sorted({a.recipe for a in arms.values() if a.recipe is not None and a.recipe not in recipes})
    if unknown:
        raise ValueError(f"unknown recipe(s) {', '.join(unknown)} in --schemes; define each with "
                         f"--recipe NAME=CONFIG.yaml" + (f" (defined: {', '.join(recipes)})" if recipes else ""))
    out_dir = Path(out_dir)
    say = log or (lambda _msg: None)
    if not config.data.test:
        raise ValueError("compare needs a test set: set data.test in the config")
    source = _Data(config, data)
    sources: dict[str | None, _Data] = {None: source}
    by_features = {features_key(config): source}  # recipes on the same features share them
    for name in sorted({a.recipe for a in arms.values() if a.recipe is not None}):
        key = features_key(recipes[name])
        if key not in by_features:
            by_features[key] = _Data(recipes[name], None, manifests=(source.classes, source.manifests))
        sources[name] = by_features[key]
    configs = {None: config, **recipes}
    if any(SCHEMES[a.scheme].needs_strong for a in arms.values()) and not source.manifests["train"].has_strong:
        needing = [n for n, a in arms.items() if SCHEMES[a.scheme].needs_strong]
        raise ValueError(f"scheme(s) {needing} need strong labels (onset/offset) and {config.data.train} has none")
    for position, (name, a) in enumerate(arms.items()):
        params = scheme_parameters(a.scheme, configs[a.recipe].scheme)  # the arm's: the shared values it takes
        make_scheme(a.scheme, params)  # fail now on bad scheme settings
        if SCHEMES[a.scheme].needs_teacher and not getattr(params, "teacher", None):
            teacher = teacher_arm(name)
            if teacher not in schemes[:position]:
                raise ValueError(f"arm {name} learns from the {teacher} trial of each seed: list {teacher} before "
                                 f"it in --schemes, or set scheme.teacher to a checkpoint")
    expected = {name: fingerprint(configs[a.recipe], name) for name, a in arms.items()}

    records: dict[str, list[dict | None]] = {s: [None] * len(seeds) for s in schemes}
    ran, reused = [], []
    for i, seed in enumerate(seeds):
        for scheme in schemes:
            record = read_trial(trial_dir(out_dir, scheme, seed), scheme, seed, expected[scheme])
            if record is not None:
                if record["classes"] != source.classes:
                    raise ValueError(f"{trial_dir(out_dir, scheme, seed)} was trained on other classes than the "
                                     f"config's ({len(record['classes'])} vs {len(source.classes)}); use another "
                                     "--out-dir")
                records[scheme][i] = record
                reused.append((scheme, seed))
    todo = [(i, seed, s) for i, seed in enumerate(seeds) for s in schemes if records[s][i] is None]
    if reused:
        say(f"compare: {len(reused)} finished trial(s) reused, {len(todo)} to run")
    for n, (i, seed, scheme) in enumerate(todo, start=1):
        say(f"compare: trial {n}/{len(todo)}: {scheme} seed {seed} ...")
        recipe = arms[scheme].recipe
        record = run_trial(configs[recipe], scheme, seed, i, out_dir, sources[recipe].prepared, expected[scheme])
        records[scheme][i] = record
        ran.append((scheme, seed))
        m = record["metrics"]
        say(f"compare:   {scheme} seed {seed}: test mAP {_num(m['mAP']):.4f}, best epoch {m['best_epoch']}, "
            f"{m['wall_seconds']:.0f} s")

    finished: dict[str, list[dict]] = {s: [r for r in records[s] if r is not None] for s in schemes}
    recipe_info = {name: {"source": (recipe_sources or {}).get(name), "config": recipes[name].to_dict()}
                   for name in sources if name is not None}
    return write_report(out_dir, config, options, seeds, finished, sources, ran, reused, started, say, recipe_info)


def _shown(path: str) -> str:
    """A data path as the report shows it: relative to the working folder when inside it."""
    if not path:
        return path
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def _summary(trials: dict[str, list[dict]]) -> tuple[dict[str, dict[str, dict]], list[str]]:
    metrics = [m for m in rep.METRICS if any(
        math.isfinite(_num(t["metrics"].get(m))) for ts in trials.values() for t in ts)]
    summary = {}
    for scheme, ts in trials.items():
        summary[scheme] = {}
        for m in metrics:
            values = [_num(t["metrics"].get(m)) for t in ts]
            finite = [v for v in values if math.isfinite(v)]
            mean, std = summarize(finite)
            summary[scheme][m] = {"mean": mean, "std": std, "n": len(finite)}
    return summary, metrics


def write_report(out_dir: Path, config: ExperimentConfig, options: CompareConfig, seeds: list[int],
                 trials: dict[str, list[dict]], sources: Mapping[str | None, _Data], ran: list, reused: list,
                 started: float, say: Callable[[str], None],
                 recipes: Mapping[str, Any] | None = None) -> CompareResult:
    """Every table, figure and ``report.md`` from the finished trial records."""
    source = sources[None]
    schemes, classes = options.schemes, source.classes
    summary, metrics = _summary(trials)
    headline = [m for m in rep.HEADLINE_METRICS if m in metrics]
    files: dict[str, Path] = {}
    described: dict[str, str] = {}

    def add(name: str, path: Path, what: str) -> None:
        files[name] = path
        described[name] = what

    # results.csv: one row per scheme x trial
    rows = []
    for scheme in schemes:
        for t in trials[scheme]:
            row = {"scheme": scheme, "trial": t["trial"], "seed": t["seed"]}
            row.update({m: t["metrics"].get(m) for m in metrics})
            row.update({f"AP:{c}": ap for c, ap in zip(classes, t["per_class_ap"])})
            rows.append(row)
    add("results.csv", write_csv(out_dir / "results.csv", rows),
        "one row per scheme x trial: every metric, per-class AP")
    srows = [{"scheme": s, "trials": len(trials[s]),
              **{f"{m}_{k}": summary[s][m][k] for m in metrics for k in ("mean", "std")}} for s in schemes]
    add("summary.csv", write_csv(out_dir / "summary.csv", srows),
        "mean and std (ddof=1) of every metric per scheme")

    # Wilcoxon: every pair x headline metric, on trial indices every scheme finished
    tests = []
    for m in headline:
        values = {s: [_num(t["metrics"].get(m)) for t in trials[s]] for s in schemes}
        for test in wilcoxon_pairs(values, m) if len(schemes) >= 2 else []:
            a, b = np.asarray(values[test.a]), np.asarray(values[test.b])
            keep = np.isfinite(a) & np.isfinite(b)
            tests.append({**asdict(test), "b_better": int((b[keep] > a[keep]).sum()),
                          "a_better": int((a[keep] > b[keep]).sum())})

    # per-class AP (mean over trials) and median event durations
    durations_from = options.durations_from
    if durations_from == "auto":
        durations_from = "train" if source.manifests["train"].has_strong else "test"
    duration_manifest = source.manifests[durations_from]
    durations = median_event_durations(duration_manifest, classes)
    durations_label = f"{durations_from} strong labels ({sum(len(c.events or ()) for c in duration_manifest)} events)"
    per_class_ap = {s: np.nanmean(np.array([[_num(x) for x in t["per_class_ap"]] for t in trials[s]]), axis=0)
                    if trials[s] else np.full(len(classes), np.nan) for s in schemes}
    pc_rows = [{"class": c, "median_duration": durations[k], **{s: per_class_ap[s][k] for s in schemes}}
               for k, c in enumerate(classes)]
    add("per_class_ap.csv", write_csv(out_dir / "per_class_ap.csv", pc_rows),
        f"mean AP per class and scheme, with median event duration from the {durations_label}")

    # Fig. 4
    pair = options.gain_pair or default_gain_pair(schemes)
    gain, gain_skipped = None, None
    if pair is None:
        gain_skipped = "needs two schemes"
    elif not np.isfinite(durations).any():
        gain_skipped = f"no strong labels in the {durations_from} set, so no event durations"
    else:
        a, b = pair
        table = gain_vs_duration_table(per_class_ap[a], per_class_ap[b], classes, durations, a, b)
        png = out_dir / "gain_vs_duration.png"
        plot_gain_vs_duration(per_class_ap[a], per_class_ap[b], classes, durations, a, b, png)
        add(png.name, png, f"Fig. 4: per-class AP gain of {b} over {a} vs. median event duration")
        add("gain_vs_duration.csv", write_csv(out_dir / "gain_vs_duration.csv", rep.gain_rows(table)),
            "Fig. 4's numbers")
        gain = {"a": a, "b": b, "durations_from": durations_label, "figure": "gain_vs_duration.png",
                "rows": rep.gain_rows(table), "spearman_rho": table.spearman_rho, "spearman_p": table.spearman_p,
                "n": table.n}
        text = rep.gain_markdown(plain(gain)) + "\n\n" + rep.gain_finding(plain(gain)) + "\n"
        add("gain_vs_duration.md", write_text_atomic(out_dir / "gain_vs_duration.md", text),
            "Fig. 4's table, Spearman's rho and the finding")

    # Fig. 5: one figure per recipe (each has its own front end and time grid)
    figures, attention_skipped = [], None
    groups: dict[str | None, list[str]] = {}
    for scheme in schemes:
        groups.setdefault(Arm.parse(scheme).recipe, []).append(scheme)
    for recipe, members in groups.items():
        figure = draw_attention(out_dir, members, seeds[0], sources[recipe].test, options.attention_clip)
        if figure is not None:
            figures.append(figure)
            add(figure["figure"], out_dir / figure["figure"],
                f"Fig. 5: attention A and X^a of test clip {figure['clip']} (first trial of "
                + (f"each arm of recipe {recipe})" if recipe else "each scheme)"))
    drawn = {f["figure"] for f in figures}
    for old in out_dir.glob("attention_*.png"):  # a figure of another clip, from an earlier run
        if old.name not in drawn:
            old.unlink()
    if not figures:
        attention_skipped = "no test clip has strong labels"
    attention = figures[0] if figures else None

    # self-supervision diagnostics (attention arms, strongly labelled validation clips)
    diag_runs = {s: [(trial_diagnostics(t, trial_dir(out_dir, s, t["seed"])) or [], int(t["metrics"]["best_epoch"]))
                     for t in trials[s]] for s in schemes}
    diagnostics = summarize_diagnostics(diag_runs)
    if diagnostics:
        png = out_dir / "diagnostics.png"
        add(png.name, plot_diagnostics(diagnostics, png),
            "self-supervision diagnostics against epochs (P vs Y, attention mass and entropy)")
        add("diagnostics.md", write_text_atomic(out_dir / "diagnostics.md", diagnostics_markdown(diagnostics) + "\n"),
            "the diagnostics at the best (first) epoch per arm")

    split_info = {k: {"clips": len(m), "strong": sum(1 for c in m if c.has_strong)}
                  for k, m in source.manifests.items()}
    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "command": options.command, "note": options.note,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": time.time() - started,
        "trial_seconds_total": sum(_num(t["metrics"]["wall_seconds"]) for ts in trials.values() for t in ts),
        "ran": len(ran), "reused": len(reused),
        "schemes": schemes, "trials": options.trials, "seeds": seeds,
        # which labels each arm's training used (weak, strong or weak+strong): its scheme's declaration
        "scheme_labels": {s: SCHEMES[scheme_of(s)].labels for s in schemes},
        "scheme_info": {s: rep.scheme_info(SCHEMES[scheme_of(s)]) for s in schemes},
        "recipes": dict(recipes or {}),
        "compare": asdict(options),
        "config": config.to_dict(),
        "data": {**{k: _shown(getattr(config.data, k)) for k in ("train", "validation", "test")},
                 "classes": classes, "clips": split_info},
        "metrics": metrics, "headline_metrics": headline,
        "summary": summary, "wilcoxon": tests,
        "per_class": {"classes": classes, "median_duration": durations, "durations_from": durations_label,
                      "ap": per_class_ap},
        "gain_vs_duration": gain, "gain_skipped": gain_skipped,
        "attention_figure": attention, "attention_figures": figures, "attention_skipped": attention_skipped,
        "diagnostics": diagnostics,
        "runs": {s: [{k: t[k] for k in ("trial", "seed", "metrics", "per_class_ap", "checkpoint")}
                     for t in trials[s]] for s in schemes},
    }
    results = plain(results)
    add("table.md", write_text_atomic(out_dir / "table.md", rep.table_markdown(results)),
        "Table I style: mean ± std per scheme (tagging, events, training)")
    columns = ["metric", "a", "b", "mean_diff", "b_better", "a_better", "n", "statistic", "p_value"]
    add("wilcoxon.csv", write_csv(out_dir / "wilcoxon.csv", results["wilcoxon"], columns),
        "Wilcoxon signed-rank test of every pair on every headline metric")
    text = rep.wilcoxon_note(options.trials) + "\n\n" + rep.wilcoxon_markdown(results["wilcoxon"], headline) + "\n"
    add("wilcoxon.md", write_text_atomic(out_dir / "wilcoxon.md", text), "the same as markdown")
    files["results.json"] = out_dir / "results.json"
    described["results.json"] = "everything above, and every trial's metrics"
    files["report.md"] = out_dir / "report.md"
    described["report.md"] = "this report"
    results["files"] = described
    results["wall_seconds"] = time.time() - started
    write_json(out_dir / "results.json", results)
    write_text_atomic(out_dir / "report.md", rep.report_markdown(results))
    say(f"compare: report -> {out_dir / 'report.md'}")
    return CompareResult(out_dir, schemes, seeds, trials, summary, results, files, ran, reused, results["wall_seconds"])
