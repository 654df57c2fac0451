"""Reports of repeated-trial comparisons, and the paper's figures drawn straight from checkpoints.

Two parts:

* **Formatting** (pure): the Table-I-style markdown table, Wilcoxon tables and ``report.md``, all
  built from :class:`CompareResults`, what ``weaktag compare`` writes as ``results.json`` (so a
  report can be rebuilt from that file alone).
* **Figures from checkpoints**: :func:`gain_vs_duration_for_checkpoints` (Fig. 4 for two trained
  models on a labelled set) and :func:`attention_figure_for_audio` (Fig. 5 for one recording and
  one or more models); ``weaktag plot`` calls them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import DataError
from ..files import plain
from ..supervision import SCHEMES, TrainingScheme
from .pairs import finite as _finite
from .pairs import oriented
from .plots import GainRow, GainVsDuration

RESULTS_FORMAT = "weaktag-compare/1"


@dataclass
class CompareResults:
    """What ``results.json`` holds: one comparison's settings, summaries, tests, figures and every trial's
    metrics, in JSON types (NaN as None). Keys that results of older weaktag versions lack are None."""

    command: str | None
    note: str | None
    created: str  # UTC, ISO 8601
    wall_seconds: float
    trial_seconds_total: float
    ran: int  # trials run by this invocation
    reused: int  # finished trials read back
    schemes: list[str]  # the arms, in report order
    trials: int
    seeds: list[int]
    compare: dict[str, Any]  # the CompareConfig
    config: dict[str, Any]  # the shared ExperimentConfig
    data: dict[str, Any]  # label files, classes, clips per split
    metrics: list[str]  # metrics some trial defines, in report order
    headline_metrics: list[str]  # those tested pairwise
    summary: dict[str, dict[str, dict[str, Any]]]  # arm -> metric -> {"mean", "std", "n"}
    wilcoxon: list[dict[str, Any]]  # one test per pair of arms and headline metric
    per_class: dict[str, Any]  # classes, median_duration, durations_from, ap (arm -> mean AP per class)
    gain_vs_duration: dict[str, Any] | None  # Fig. 4's numbers; None when not drawn (gain_skipped says why)
    gain_skipped: str | None
    attention_figure: dict[str, Any] | None  # the first Fig. 5
    attention_skipped: str | None
    runs: dict[str, list[dict[str, Any]]]  # arm -> trial, seed, metrics, per_class_ap, checkpoint of each trial
    scheme_labels: dict[str, str] | None = None  # which labels each arm's training used
    scheme_info: dict[str, dict[str, Any]] | None = None  # what each arm's scheme declares (scheme_info())
    recipes: dict[str, dict[str, Any]] | None = None  # name -> source and config of each recipe
    attention_figures: list[dict[str, Any]] | None = None  # one Fig. 5 per recipe
    diagnostics: dict[str, dict[str, Any]] | None = None  # self-supervision diagnostics per arm
    recovered: list[dict[str, Any]] | None = None  # recovered_shares(): weak-only arms vs strong labels' gain
    folds: list[str] | None = None  # leave-one-fold-out: the fold trial i tests on
    confusion: dict[str, dict[str, Any]] | None = None  # single-label: arm -> figure, pooled_accuracy, counts
    files: dict[str, str] = field(default_factory=dict)  # file name -> what it holds

    #: results.json's key order
    KEYS = ("format", "command", "note", "created", "wall_seconds", "trial_seconds_total", "ran", "reused",
            "schemes", "trials", "seeds", "folds", "scheme_labels", "scheme_info", "recipes", "compare", "config", "data",
            "metrics", "headline_metrics", "summary", "wilcoxon", "per_class", "gain_vs_duration", "gain_skipped",
            "attention_figure", "attention_figures", "attention_skipped", "diagnostics", "recovered", "confusion", "runs",
            "files")

    def to_json(self) -> dict[str, Any]:
        """``results.json``'s contents."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return plain({key: RESULTS_FORMAT if key == "format" else values[key] for key in self.KEYS})

    @classmethod
    def from_json(cls, results: Mapping[str, Any], file: str | Path = "results.json") -> "CompareResults":
        """Results read back from ``results.json``; raises ValueError naming ``file`` when it is not one."""
        if not isinstance(results, Mapping) or results.get("format") != RESULTS_FORMAT:
            raise DataError(f"{file}: not a {RESULTS_FORMAT} results file")
        names = {f.name for f in fields(cls)}
        missing = [f.name for f in fields(cls) if f.name not in results and f.default is not None
                   and f.name != "files"]
        if missing:
            raise DataError(f"{file}: results lack {', '.join(missing)}")
        return cls(**{k: v for k, v in results.items() if k in names})


# --------------------------------------------------------------------------- metrics and schemes


@dataclass(frozen=True)
class MetricInfo:
    """How one metric is named and printed: ``scale`` 100 prints a fraction as a percentage."""

    label: str
    scale: float = 100.0
    mean_decimals: int = 1
    std_decimals: int = 2
    higher_is_better: bool = True


#: every metric a trial records, in report order (keys of ``trial.json``'s ``metrics``)
METRICS: dict[str, MetricInfo] = {
    "mAP": MetricInfo("mAP"),
    "accuracy": MetricInfo("accuracy"),
    "AUC": MetricInfo("AUC"),
    "d_prime": MetricInfo("d'", 1.0, 2, 2),
    "f1_macro": MetricInfo("F1 macro"),
    "f1_micro": MetricInfo("F1 micro"),
    "psds1": MetricInfo("PSDS1"),
    "psds2": MetricInfo("PSDS2"),
    "segment_f1_macro": MetricInfo("segment F1 macro"),
    "segment_f1_micro": MetricInfo("segment F1 micro"),
    "event_f1_macro": MetricInfo("event F1 macro"),
    "event_f1_micro": MetricInfo("event F1 micro"),
    "psds1_operating_f1": MetricInfo("F1 at PSDS1 point"),
    "val_mAP": MetricInfo("validation mAP"),
    "best_epoch": MetricInfo("best epoch", 1.0, 1, 1, higher_is_better=False),
    "wall_seconds": MetricInfo("time per trial (s)", 1.0, 0, 0, higher_is_better=False),
}
TAGGING_COLUMNS = ("mAP", "accuracy", "AUC", "d_prime", "f1_macro", "f1_micro")
EVENT_COLUMNS = ("psds1", "psds2", "segment_f1_macro", "event_f1_macro", "event_f1_micro", "psds1_operating_f1")
TRAINING_COLUMNS = ("val_mAP", "best_epoch", "wall_seconds")
#: metrics tested pairwise when present: the paper's mAP, plus AUC and the event-level summaries
HEADLINE_METRICS = ("mAP", "accuracy", "AUC", "psds1", "psds2", "event_f1_macro")

#: Table I's columns: attention with no / strong / self supervision, strong labels, weak labels.
#: "Strong label": onsets/offsets enter the loss; "weak label": clip labels enter the loss.
TABLE_I_HEADER = ("Attention: no supervision", "strongly supervised", "self-supervised", "Strong label", "Weak label")


def scheme_info(scheme: type[TrainingScheme]) -> dict[str, Any]:
    """What a scheme declares about itself, as ``results.json`` records it (so a report rebuilds from that file)."""
    return {"labels": scheme.labels, "table_i": list(scheme.table_i_marks()), "table_i_row": scheme.table_i_row,
            "attention_supervision": scheme.attention_supervision, "description": scheme.description}


def _table_i_marks(scheme: str, info: Mapping[str, Any] | None) -> list[bool] | None:
    if info and scheme in info:
        return list(info[scheme]["table_i"])
    return list(SCHEMES[scheme].table_i_marks()) if scheme in SCHEMES else None  # results.json of older runs

#: key comparisons quoted first in the report (the paper's claims), as (baseline, challenger)
KEY_PAIRS = (("attention", "attention-self"), ("attention-strong", "attention-self"),
             ("attention", "attention-strong"), ("pool-weak", "attention"))


def fmt_mean_std(mean: float | None, std: float | None, info: MetricInfo) -> str:
    """``54.4 ± 0.12`` (scaled; ``n/a`` when undefined; no ``±`` for a single trial)."""
    if mean is None or not math.isfinite(mean):
        return "n/a"
    text = f"{mean * info.scale:.{info.mean_decimals}f}"
    if std is not None and math.isfinite(std):
        text += f" ± {std * info.scale:.{info.std_decimals}f}"
    return text


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def fmt_p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "n/a"
    return f"{p:.3g}" + (" *" if p < 0.05 else "")


def min_two_sided_p(n: int) -> float:
    """The smallest p-value the exact two-sided Wilcoxon signed-rank test can give for n pairs."""
    return min(1.0, 2.0 / 2**n) if n > 0 else float("nan")


def _stat(summary: Mapping[str, Any], scheme: str, metric: str) -> tuple[float | None, float | None]:
    entry = summary.get(scheme, {}).get(metric)
    if not entry:
        return None, None
    return entry.get("mean"), entry.get("std")


def _best(summary: Mapping[str, Any], schemes: Sequence[str], metric: str) -> set[str]:
    """The schemes with the best mean as printed (ties included); none when all print the same."""
    info = METRICS.get(metric, MetricInfo(metric))
    printed = {s: fmt_mean_std(_stat(summary, s, metric)[0], None, info) for s in schemes}
    values = {s: float(t) for s, t in printed.items() if t != "n/a"}
    if len(values) < 2 or len(set(values.values())) == 1:
        return set()
    top = (max if info.higher_is_better else min)(values.values())
    return {s for s, v in values.items() if v == top}


def metrics_table(summary: Mapping[str, Any], schemes: Sequence[str], metrics: Sequence[str],
                  table_i: bool = False, bold_best: bool = True, schemes_info: Mapping[str, Any] | None = None) -> str:
    """Markdown: one row per scheme, mean ± std per metric (percent where the metric is a fraction).

    ``table_i`` adds the paper's Table I columns (attention supervision, label kinds) in front.
    """
    labels = []
    for m in metrics:
        info = METRICS.get(m, MetricInfo(m))
        labels.append(info.label + (" (%)" if info.scale == 100.0 else ""))
    head = (list(TABLE_I_HEADER) if table_i else []) + ["Scheme"] + labels
    align = (["---:"] * len(TABLE_I_HEADER) if table_i else []) + ["---"] + ["---:"] * len(metrics)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    best = {m: _best(summary, schemes, m) if bold_best else set() for m in metrics}
    for scheme in schemes:
        cells = []
        if table_i:
            marks = _table_i_marks(scheme, schemes_info)
            cells += ["✓" if x else "" for x in marks] if marks else ["?"] * len(TABLE_I_HEADER)
        cells.append(f"`{scheme}`")
        for m in metrics:
            text = fmt_mean_std(*_stat(summary, scheme, m), METRICS.get(m, MetricInfo(m)))
            cells.append(f"**{text}**" if scheme in best[m] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def present_metrics(summary: Mapping[str, Any], candidates: Iterable[str]) -> list[str]:
    """The candidates with a finite mean for at least one scheme."""
    out = []
    for m in candidates:
        if any(_finite(entry.get(m, {}).get("mean")) for entry in summary.values()):
            out.append(m)
    return out


def table_markdown(results: CompareResults) -> str:
    """``table.md``: the Table-I-style tagging table, then event metrics and training statistics."""
    summary, schemes, n = results.summary, results.schemes, results.trials
    parts = [
        f"**Table I style: audio tagging on the test set** (mean ± std over {plural(n, 'trial')}; "
        "bold: best mean; F1 with per-class thresholds chosen on validation)",
        "",
        metrics_table(summary, schemes, present_metrics(summary, TAGGING_COLUMNS), table_i=True,
                      schemes_info=results.scheme_info),
        "",
        "Strong label ✓: onsets/offsets enter the loss; weak label ✓: clip labels enter the loss. "
        "No mark under Attention: no attention layer (mean pooling over time).",
    ]
    events = present_metrics(summary, EVENT_COLUMNS)
    if events:
        parts += ["", f"**Event metrics on the strongly labelled test clips** (mean ± std over {plural(n, 'trial')}; "
                  "F1 from events decoded with thresholds chosen on validation)", "",
                  metrics_table(summary, schemes, events)]
    parts += ["", "**Training**", "", metrics_table(summary, schemes, present_metrics(summary, TRAINING_COLUMNS),
                                                  bold_best=False)]
    return "\n".join(parts) + "\n"


def wilcoxon_markdown(tests: Sequence[Mapping[str, Any]], metrics: Sequence[str] | None = None) -> str:
    """One row per pair and metric: mean(B - A), how many trials B beat A, W and the two-sided p."""
    lines = ["| metric | A | B | mean(B − A) | B > A in | W | p |", "|---|---|---|---:|---:|---:|---:|"]
    order = {m: i for i, m in enumerate(metrics or [])}
    for t in sorted(tests, key=lambda t: order.get(t["metric"], len(order))) if metrics else tests:
        info = METRICS.get(t["metric"], MetricInfo(t["metric"]))
        diff = t["mean_diff"]
        diff_text = f"{diff * info.scale:+.{max(info.std_decimals, 1)}f}" if _finite(diff) else "n/a"
        better = f"{t['b_better']}/{t['n']}" if t.get("b_better") is not None else ""
        stat = f"{t['statistic']:g}" if _finite(t["statistic"]) else "n/a"
        lines.append(f"| {info.label} | `{t['a']}` | `{t['b']}` | {diff_text} | {better} | {stat} "
                     f"| {fmt_p(t['p_value'])} |")
    return "\n".join(lines)


def wilcoxon_note(n: int) -> str:
    text = (f"Two-sided Wilcoxon signed-rank test (scipy) over {plural(n, 'paired trial')} (trial i of every scheme "
            "uses the same seed); mean(B − A) in percentage points (d' in units); * marks p < 0.05.")
    if n < 2:
        text += " With fewer than 2 pairs no test is possible (p = n/a)."
    elif min_two_sided_p(n) >= 0.05:
        text += (f" With {n} pairs the smallest attainable two-sided p is {min_two_sided_p(n):.4g} (2/2^{n}), so no "
                 "difference can reach p < 0.05 however consistent it is: read the 'B > A in' column "
                 "(the paper used 20 trials).")
    return text


def key_comparisons(results: CompareResults) -> list[dict[str, Any]]:
    """The paper's claims (:data:`KEY_PAIRS`) among the compared schemes, oriented challenger vs baseline."""
    out = []
    for baseline, challenger in KEY_PAIRS:
        for t in results.wilcoxon:
            if {t["a"], t["b"]} == {baseline, challenger}:
                out.append(oriented(t, baseline, challenger))
    return out


#: the metrics of the report's one-line reading of each share (tagging, then events)
SHARE_READING_METRICS = ("psds1", "mAP")


def _points(value: float | None, metric: str) -> str:
    info = METRICS.get(metric, MetricInfo(metric))
    return f"{value * info.scale:+.{max(info.std_decimals - 1, 1)}f}" if _finite(value) else "n/a"


def recovered_reading(shares: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per arm: the share of strong labels' PSDS1 gain it recovers, and what it costs or adds in mAP."""
    lines = []
    for arm in dict.fromkeys(r["arm"] for r in shares):
        rows = {r["metric"]: r for r in shares if r["arm"] == arm}
        metrics = [m for m in SHARE_READING_METRICS if m in rows]
        if not metrics:
            continue
        first, label = rows[metrics[0]], METRICS.get(metrics[0], MetricInfo(metrics[0])).label
        if first["share"] is not None:
            text = (f"`{arm}` recovers {first['share']:.0%} of strong labels' {label} gain "
                    f"({_points(first['arm_gain'], metrics[0])} of {_points(first['strong_gain'], metrics[0])} "
                    f"points, p = {fmt_p(first['p_value'])})")
        else:
            text = (f"`{arm}`: {_points(first['arm_gain'], metrics[0])} {label} against `{first['baseline']}` "
                    f"(p = {fmt_p(first['p_value'])}); strong labels add {_points(first['strong_gain'], metrics[0])}, "
                    "so there is no gain to recover")
        for metric in metrics[1:]:
            r = rows[metric]
            text += (f", at {_points(r['arm_gain'], metric)} {METRICS.get(metric, MetricInfo(metric)).label} "
                     f"(p = {fmt_p(r['p_value'])})")
        lines.append(text + ".")
    return lines


def recovered_markdown(shares: Sequence[Mapping[str, Any]]) -> str:
    """Arm x metric: its gain, strong labels' gain, the share recovered and the paired p-values."""
    lines = ["| arm | metric | arm − attention | strong − attention | share recovered | p (arm) | p (strong) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in shares:
        label = METRICS.get(r["metric"], MetricInfo(r["metric"])).label
        share = f"{r['share']:.0%}" if r["share"] is not None else "n/a"
        lines.append(f"| `{r['arm']}` | {label} | {_points(r['arm_gain'], r['metric'])} | "
                     f"{_points(r['strong_gain'], r['metric'])} | {share} | {fmt_p(r['p_value'])} | "
                     f"{fmt_p(r['strong_p_value'])} |")
    return "\n".join(lines)


def gain_finding(gain: Mapping[str, Any]) -> str:
    """One sentence answering "is the gain larger for short events?" (paper, Fig. 4)."""
    rho, p, n = gain.get("spearman_rho"), gain.get("spearman_p"), gain.get("n", 0)
    a, b = gain["a"], gain["b"]
    rows = [r for r in gain["rows"] if _finite(r["median_duration"]) and _finite(r["gain"])]
    if n < 3 or not _finite(rho):
        return f"Too few classes with a duration and an AP ({n}) to relate the gain of `{b}` over `{a}` to duration."
    median = float(np.median([r["median_duration"] for r in rows]))
    short = [r["gain"] for r in rows if r["median_duration"] <= median]
    long = [r["gain"] for r in rows if r["median_duration"] > median]
    split = ""
    if long:
        split = (f" Mean AP gain of classes with median duration ≤ {median:.2f} s: {np.mean(short) * 100:+.2f} points "
                 f"({len(short)} classes); longer: {np.mean(long) * 100:+.2f} points ({len(long)} classes).")
    if rho < 0 and p < 0.05:
        verdict = "Yes: the gain of `{b}` over `{a}` is larger for shorter events"
    elif rho < 0:
        verdict = ("Not shown: the gain of `{b}` over `{a}` tends to be larger for shorter events, but the "
                   "correlation is not significant")
    elif p < 0.05:
        verdict = "No: the gain of `{b}` over `{a}` is larger for longer events"
    else:
        verdict = "No: the gain of `{b}` over `{a}` is not larger for shorter events"
    return (verdict.format(a=a, b=b) + f" (Spearman rho(duration, gain) = {rho:.2f}, p = {p:.2g}, n = {n} classes)."
            + split)


# --------------------------------------------------------------------------- report.md


def recipe_summary(recipe: Mapping[str, Any]) -> str:
    """One line: where a recipe came from and what it trains (backbone, neck, schedule, augmentation)."""
    config = recipe.get("config", {})
    m, t, a = config.get("model", {}), config.get("train", {}), config.get("augment", {})
    parts = [f"`{recipe['source']}`"] if recipe.get("source") else []
    backbone = f"backbone {m.get('backbone')}"
    if m.get("freeze"):
        backbone += f" ({m['freeze']} leading layers frozen)"
    parts.append(backbone)
    if m.get("time_stride"):
        parts.append(f"time stride {m['time_stride']}")
    if m.get("neck_channels"):
        parts.append(f"{m.get('neck') or 'conv'} neck {m.get('neck_layers')} x {m['neck_channels']} channels, "
                     f"dropout {m.get('dropout')}")
    parts.append(f"lr {t.get('lr')} ({t.get('lr_schedule')}), batch {t.get('batch_size')}, "
                 f"{plural(t.get('max_epochs') or 0, 'epoch')}")
    used = [k for k in ("gain_db", "shift_seconds", "mixup_alpha", "time_masks", "freq_masks") if a.get(k)]
    parts.append("augmentation " + (", ".join(f"{k} {a[k]}" for k in used) if used else "off"))
    decoding = [what for key, what in (("event_durations", "minimum durations and gaps"),
                                       ("event_hysteresis", "hysteresis")) if t.get(key)]
    parts.append(f"event output {t.get('event_output')}, thresholds{''.join(', ' + d for d in decoding)} "
                 f"for {t.get('event_calibration')}")
    return "; ".join(parts)


def report_markdown(results: CompareResults) -> str:
    """The one-file report: command, data, Table I, events, Wilcoxon, Fig. 4 and Fig. 5 (relative links)."""
    lines = ["# Scheme comparison: weakly labelled audio event classification", ""]
    if results.recovered:
        lines += [*recovered_reading(results.recovered), ""]
    for section in (_setup_section, _table_section, _confusion_section, _tests_section, _recovered_section, _gain_section,
                    _diagnostics_section,
                    _attention_section, _per_class_section, _files_section):
        lines += section(results)
    return "\n".join(lines)


def _setup_section(results: CompareResults) -> list[str]:
    """The command, the note, and what was compared on which data."""
    n, data = results.trials, results.data
    lines = []
    if results.command:
        lines += ["Command:", "", "```", results.command, "```", ""]
    if results.note:
        lines += [results.note, ""]
    lines += [
        f"- schemes: {', '.join(f'`{s}`' for s in results.schemes)}; {plural(n, 'trial')} each, seeds "
        f"{results.seeds} (trial i of every scheme uses the same seed: paired)",
        f"- wall time of this invocation: {results.wall_seconds:.0f} s; training + evaluation time summed over "
        f"all trials: {results.trial_seconds_total:.0f} s ({plural(results.ran, 'trial')} run now, "
        f"{results.reused} reused from earlier runs)",
        f"- written {results.created}",
    ]
    if results.folds:
        lines.append(f"- leave-one-fold-out cross-validation: trial i tests on the i-th of the folds "
                     f"{', '.join(results.folds)} and trains on the others (validation held out of them); the data "
                     "below are the first trial's")
    for split in ("train", "validation", "test"):
        if data.get(split):
            info = data.get("clips", {}).get(split)
            extra = f" ({info['clips']} clips, {info['strong']} with strong labels)" if info else ""
            lines.append(f"- {split}: `{data[split]}`{extra}")
    if data.get("classes"):
        lines.append(f"- {len(data['classes'])} classes: {', '.join(data['classes'])}")
    if results.config:
        m, t, s = (results.config.get(k, {}) for k in ("model", "train", "scheme"))
        norm = ", batch norm" if m.get("batch_norm") else ""
        lines.append(f"- model width {m.get('width')}{norm}, L7 {m.get('l7_channels')} channels; lr {t.get('lr')}, "
                     f"batch {t.get('batch_size')}, {plural(t.get('max_epochs') or 0, 'epoch')} "
                     f"(best epoch on validation mAP); alpha {s.get('alpha')}")
    for name, recipe in (results.recipes or {}).items():
        lines.append(f"- recipe `{name}` (arms `{name}:<scheme>`): {recipe_summary(recipe)}")
    return lines


def _table_section(results: CompareResults) -> list[str]:
    return ["", "## Results (Table I)", "", table_markdown(results).rstrip(), ""]


def _confusion_section(results: CompareResults) -> list[str]:
    """Single-label test sets: each arm's confusion matrix over every trial's test clips."""
    lines = ["## Confusion matrices", "", "Top-1 predictions of each arm on the test clips of all its trials "
             "(with folds, every clip once), rows shaded by the share of the true class's clips.", ""]
    for arm, entry in (results.confusion or {}).items():
        lines += [f"`{arm}`: pooled top-1 accuracy {100 * entry['pooled_accuracy']:.1f}%", "",
                  f"![confusion matrix of {arm}]({entry['figure']})", ""]
    return lines if results.confusion else []


def _tests_section(results: CompareResults) -> list[str]:
    """The key comparisons first, then every pair folded away."""
    keys = key_comparisons(results)
    lines = ["## Statistical tests", "", wilcoxon_note(results.trials), ""]
    if keys:
        lines += ["Key comparisons (the paper's claims):", "", wilcoxon_markdown(keys), ""]
    headline = results.headline_metrics
    return lines + ["<details><summary>Every pair of schemes on every headline metric "
                    f"({', '.join(METRICS[m].label for m in headline)})</summary>", "",
                    wilcoxon_markdown(results.wilcoxon, headline), "", "</details>", ""]


def _recovered_section(results: CompareResults) -> list[str]:
    if not results.recovered:
        return []
    return ["## What weak labels alone recover of strong labels' gain", "",
            "Per weak-only arm and tested metric: (arm − attention) / (attention-strong − attention), paired mean "
            "differences in percentage points over the same trials (n/a where strong labels gain nothing); p: "
            "two-sided Wilcoxon of the arm against attention, and of attention-strong against attention.", "",
            recovered_markdown(results.recovered), ""]


def _gain_section(results: CompareResults) -> list[str]:
    gain = results.gain_vs_duration
    lines = ["## Per-class gain vs. event duration (Fig. 4)", ""]
    if not gain:
        return lines + [f"Not drawn: {results.gain_skipped or 'no pair of schemes'}.", ""]
    return lines + [
        f"AP of `{gain['b']}` minus AP of `{gain['a']}` per class (mean AP over {plural(results.trials, 'trial')}), "
        f"against the class's median event duration from the {gain['durations_from']}.", "",
        f"![gain vs duration]({gain['figure']})", "", gain_finding(gain), "",
        gain_markdown(gain), "",
    ]


def _diagnostics_section(results: CompareResults) -> list[str]:
    diagnostics = results.diagnostics
    if not diagnostics:
        return []
    from .diagnostics import diagnostics_finding, diagnostics_markdown

    return ["## Self-supervision diagnostics", "",
            "On the strongly labelled validation clips, every epoch, for the present classes: the share of "
            "segments the pseudo-labels P mark (P by each arm's own rule; the paper's rule for arms that do "
            "not train on P) against the share the true labels Y mark, P's precision and recall against Y, "
            "the attention mass inside true events, and A's entropy over time (1 = flat). Best epoch, first "
            "epoch in brackets; mean over trials.", "",
            diagnostics_markdown(diagnostics), "", diagnostics_finding(diagnostics), "",
            "![diagnostics](diagnostics.png)", ""]


def _attention_section(results: CompareResults) -> list[str]:
    figures = results.attention_figures or ([results.attention_figure] if results.attention_figure else [])
    lines = ["## Attention matrices (Fig. 5)", ""]
    for att in figures:
        events = ", ".join(f"{e['label']} {e['onset']:.2f}-{e['offset']:.2f} s" for e in att["events"]) or "none"
        whose = f"each arm of recipe `{att['recipe']}`" if att.get("recipe") else "each scheme"
        lines += [
            f"Test clip `{att['clip']}` (events: {events}). Rows: log-mel spectrogram, ground truth, then for the "
            f"first trial of {whose} " + ("its attention A and segment output X^a" if att.get("attention") else
                                          "its segment output X^a (no scheme here has attention)") + ".", "",
            f"![attention matrices]({att['figure']})", "",
        ]
    if not figures:
        lines += [f"Not drawn: {results.attention_skipped or 'no strongly labelled test clip'}.", ""]
    return lines


def _per_class_section(results: CompareResults) -> list[str]:
    per_class = results.per_class
    if not per_class:
        return []
    return [f"## Per-class AP (mean over trials, %; durations from the {per_class['durations_from']})", "",
            per_class_markdown(per_class["classes"], per_class["median_duration"], per_class["ap"]), ""]


def _files_section(results: CompareResults) -> list[str]:
    if not results.files:
        return []
    return ["## Files", ""] + [f"- `{name}`: {what}" for name, what in results.files.items()] + [""]


def per_class_markdown(classes: Sequence[str], durations: Sequence[float | None],
                       per_class: Mapping[str, Sequence[float | None]]) -> str:
    """Classes (sorted by median duration) x schemes, mean AP in percent."""
    schemes = list(per_class)
    lines = ["| class | median duration (s) | " + " | ".join(f"`{s}`" for s in schemes) + " |",
             "|---|---:|" + "---:|" * len(schemes)]
    order = sorted(range(len(classes)), key=lambda c: (not _finite(durations[c]), durations[c] or 0.0))
    for c in order:
        d = f"{durations[c]:.2f}" if _finite(durations[c]) else "n/a"
        cells = [f"{per_class[s][c] * 100:.1f}" if _finite(per_class[s][c]) else "n/a" for s in schemes]
        lines.append(f"| {classes[c]} | {d} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gain_markdown(gain: Mapping[str, Any]) -> str:
    """The Fig. 4 table (as :meth:`GainVsDuration.to_markdown`) from its ``results.json`` form."""
    table = GainVsDuration(
        label_a=gain["a"], label_b=gain["b"],
        rows=[GainRow(r["class"], _nan(r["median_duration"]), _nan(r["ap_a"]), _nan(r["ap_b"]), _nan(r["gain"]))
              for r in gain["rows"]],
        spearman_rho=_nan(gain["spearman_rho"]), spearman_p=_nan(gain["spearman_p"]), n=gain["n"])
    return table.to_markdown()


def _nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


def gain_rows(table: GainVsDuration) -> list[dict[str, Any]]:
    return [{"class": r.class_name, "median_duration": r.median_duration, "ap_a": r.ap_a, "ap_b": r.ap_b,
             "gain": r.gain} for r in table.rows]
