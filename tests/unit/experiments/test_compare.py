"""``weaktag compare`` and ``weaktag plot``: paired trials, resuming, every table and figure, the CLI."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import matplotlib.image
import pytest
import yaml

from conftest import REPO
import weaktag.experiments.compare as compare_mod
import weaktag.experiments.trials as trials_mod
from weaktag.checkpoint import load_checkpoint
from weaktag.cli import main
from weaktag.config import config_from_dict
from weaktag.data import build_feature_set
from weaktag.experiments import report as rep
from weaktag.experiments.compare import CompareConfig, Recipe, default_gain_pair, run_compare, trial_dir
from weaktag.experiments.figures import choose_attention_clip
from weaktag.experiments.pairs import recovered_shares
from weaktag.experiments.plots import DPI, GAIN_FIGURE_SIZE, attention_figure_size
from weaktag.experiments.trials import TrialRecord
from weaktag.labels import Clip, Event, read_labels
from weaktag.metrics import tagging_metrics
from weaktag.synth import SynthConfig, synthesize_splits
from weaktag.training import predict_features

SCHEMES = ["attention", "attention-self"]
SPLITS = {"train": 40, "validation": 16, "test": 24}


def _pixels(path: Path) -> tuple[int, int]:
    image = matplotlib.image.imread(path)
    return image.shape[1], image.shape[0]


def _config_dict(data: Path) -> dict:
    return {
        "data": {split: str(data / split / "manifest.jsonl") for split in SPLITS},
        "model": {"width": 0.0625, "l7_channels": 64},
        "train": {"lr": 1e-3, "batch_size": 16, "max_epochs": 1, "seed": 0, "progress": False, "logger": "none",
                  "accelerator": "cpu"},
    }


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory):
    """2 schemes x 2 trials, 1 epoch, on 40/16/24 generated soundscapes (about 20 s on 2 cores)."""
    root = tmp_path_factory.mktemp("compare")
    synthesize_splits(root / "data", SPLITS, SynthConfig(seed=0))
    config = config_from_dict(_config_dict(root / "data"))
    result = run_compare(config, CompareConfig(SCHEMES, 2, command="weaktag compare (test)"), root / "out", log=None)
    return root, config, result


@pytest.fixture
def copy(compared, tmp_path: Path) -> Path:
    """A private copy of the finished comparison, for tests that change it."""
    root, _, _ = compared
    shutil.copytree(root / "out", tmp_path / "out")
    return tmp_path / "out"


def test_compare_writes_every_table_and_figure(compared) -> None:
    root, _, result = compared
    out = root / "out"
    for name in ("results.json", "results.csv", "summary.csv", "table.md", "wilcoxon.md", "wilcoxon.csv",
                 "per_class_ap.csv", "gain_vs_duration.png", "gain_vs_duration.md", "gain_vs_duration.csv",
                 "report.md"):
        assert (out / name).stat().st_size > 0, name
    assert result.ran == [("attention", 0), ("attention-self", 0), ("attention", 1), ("attention-self", 1)]
    for scheme in SCHEMES:
        for seed in (0, 1):
            assert (trial_dir(out, scheme, seed) / "trial.json").exists()
            assert (trial_dir(out, scheme, seed) / "model.pt").exists()

    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    assert {(r["scheme"], r["seed"]) for r in rows} == {(s, str(k)) for s in SCHEMES for k in (0, 1)}
    # compare reuses what train() computed; the figures equal an independent reload and re-prediction
    test = build_feature_set(read_labels(root / "data" / "test" / "manifest.jsonl"), result.results.data["classes"])
    for r in rows:
        ckpt = load_checkpoint(trial_dir(out, r["scheme"], int(r["seed"])) / "model.pt")
        again = tagging_metrics(test.weak, predict_features(ckpt.model, test).clip_probs, test.classes)
        assert float(r["mAP"]) == pytest.approx(again.mAP, abs=1e-9), (r["scheme"], r["seed"])
    with (out / "summary.csv").open() as f:
        assert [r["scheme"] for r in csv.DictReader(f)] == SCHEMES

    results = json.loads((out / "results.json").read_text())
    assert results["seeds"] == [0, 1] and results["schemes"] == SCHEMES
    tests = {(t["metric"], t["a"], t["b"]): t for t in results["wilcoxon"]}
    for metric in ("mAP", "AUC", "psds1", "psds2", "event_f1_macro"):  # test labels are strong: events included
        assert (metric, "attention", "attention-self") in tests
        pair = tests[(metric, "attention", "attention-self")]
        a = [t["metrics"][metric] for t in results["runs"]["attention"]]
        b = [t["metrics"][metric] for t in results["runs"]["attention-self"]]
        assert pair["n"] == 2 and pair["mean_diff"] == pytest.approx(sum(b) / 2 - sum(a) / 2, abs=1e-12)
        if a != b:  # the exact two-sided test on 2 pairs: p = 0.5 when both differences share a sign, else 1
            same_sign = (b[0] - a[0]) * (b[1] - a[1]) > 0
            assert pair["p_value"] == pytest.approx(0.5 if same_sign else 1.0)
    assert results["scheme_labels"] == {"attention": "weak", "attention-self": "weak"}
    assert results["recovered"] == []  # no attention-strong arm: no share of its gain to recover
    assert results["scheme_info"]["attention-self"]["table_i"] == [False, False, True, False, True]
    assert results["gain_vs_duration"]["a"] == "attention" and results["gain_vs_duration"]["b"] == "attention-self"

    # figures: non-empty PNGs of the promised pixel size
    assert _pixels(out / "gain_vs_duration.png") == (GAIN_FIGURE_SIZE[0] * DPI, GAIN_FIGURE_SIZE[1] * DPI)
    figure = out / results["attention_figure"]["figure"]
    width, height = attention_figure_size(4)  # A and X^a for each of the two schemes
    assert _pixels(figure) == (width * DPI, height * DPI)

    table = (out / "table.md").read_text()
    assert "mAP (%)" in table and "±" in table and "`attention-self`" in table and "✓" in table and "PSDS1" in table
    report = (out / "report.md").read_text()
    assert "](gain_vs_duration.png)" in report and f"]({figure.name})" in report
    assert "weaktag compare (test)" in report and "Wilcoxon" in report and "Spearman" in report


def test_second_run_resumes_without_training(compared, copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, config, first = compared

    def no_training(*args, **kwargs):
        raise AssertionError("a finished trial was trained again")

    monkeypatch.setattr(trials_mod, "train", no_training)
    monkeypatch.setattr(compare_mod, "prepare_data", no_training)  # not even features for training are needed
    again = run_compare(config, CompareConfig(SCHEMES, 2), copy, log=None)
    assert again.ran == [] and len(again.reused) == 4
    for scheme in SCHEMES:
        for metric in ("mAP", "AUC", "psds1"):
            assert again.values(scheme, metric) == first.values(scheme, metric)
    assert again.results.summary == first.results.summary


def test_deleted_trial_record_reruns_exactly_that_trial(compared, copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, config, first = compared
    (trial_dir(copy, "attention-self", 1) / "trial.json").unlink()  # as if interrupted before its record was written
    calls = []
    real_train = trials_mod.train

    def counting_train(cfg, data=None):
        calls.append((cfg.scheme.name, cfg.train.seed))
        return real_train(cfg, data=data)

    monkeypatch.setattr(trials_mod, "train", counting_train)
    again = run_compare(config, CompareConfig(SCHEMES, 2), copy, log=None)
    assert calls == [("attention-self", 1)]
    assert again.ran == [("attention-self", 1)] and len(again.reused) == 3
    assert again.values("attention", "mAP") == first.values("attention", "mAP")
    assert (trial_dir(copy, "attention-self", 1) / "trial.json").exists()
    # same seed, same data, CPU: the re-run trial reproduces the interrupted one
    assert again.values("attention-self", "mAP") == pytest.approx(first.values("attention-self", "mAP"), abs=1e-6)


def test_other_config_is_refused_cosmetic_change_is_not(compared, copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, config, _ = compared
    data = Path(config.data.train).parents[1]
    changed = config_from_dict({**_config_dict(data), "train": {**_config_dict(data)["train"], "max_epochs": 2}})
    with pytest.raises(ValueError, match="different config.*max_epochs"):
        run_compare(changed, CompareConfig(SCHEMES, 2), copy, log=None)
    with pytest.raises(ValueError, match="unknown scheme"):
        run_compare(config, CompareConfig(["attention", "nope"], 2), copy, log=None)
    monkeypatch.setattr(trials_mod, "train", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    cosmetic = config_from_dict({**_config_dict(data), "train": {**_config_dict(data)["train"], "logger": "csv",
                                                                 "progress": True}, "output_dir": "elsewhere"})
    assert run_compare(cosmetic, CompareConfig(SCHEMES, 2), copy, log=None).ran == []


def test_more_trials_run_only_the_new_ones(compared, copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, config, _ = compared
    calls = []
    real_train = trials_mod.train

    def counting_train(cfg, data=None):
        calls.append((cfg.scheme.name, cfg.train.seed))
        return real_train(cfg, data=data)

    monkeypatch.setattr(trials_mod, "train", counting_train)
    result = run_compare(config, CompareConfig(SCHEMES, 3), copy, log=None)
    assert calls == [("attention", 2), ("attention-self", 2)]
    assert result.seeds == [0, 1, 2] and all(len(result.values(s, "mAP")) == 3 for s in SCHEMES)
    assert json.loads((copy / "results.json").read_text())["wilcoxon"][0]["n"] == 3


def test_cli_compare_reuses_and_reports(compared, copy: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    _, config, _ = compared
    config_file = copy.parent / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(_config_dict(Path(config.data.train).parents[1])))
    monkeypatch.setattr(trials_mod, "train", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    rc = main(["compare", "--config", str(config_file), "--schemes", ",".join(SCHEMES), "--trials", "2",
               "--out-dir", str(copy), "--gain-pair", "attention-self,attention", "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "0 trial(s) run, 4 reused" in out and "mAP (%)" in out
    results = json.loads((copy / "results.json").read_text())
    assert results["gain_vs_duration"]["a"] == "attention-self"
    assert results["command"].startswith("weaktag compare --config ")
    assert "--gain-pair attention-self,attention" in results["command"]


def test_cli_plot_attention(compared, tmp_path: Path) -> None:
    root, _, _ = compared
    out = root / "out"
    audio = root / "data" / "test" / "audio" / "test_00003.wav"
    png = tmp_path / "attention.png"
    rc = main(["plot", "attention", "--checkpoint", str(trial_dir(out, "attention", 0) / "model.pt"),
               "--checkpoint", str(trial_dir(out, "attention-self", 0) / "model.pt"), "--audio", str(audio),
               "--labels", str(root / "data" / "test" / "strong.tsv"), "--out", str(png)])
    assert rc == 0 and png.stat().st_size > 0
    width, height = attention_figure_size(4)
    assert _pixels(png) == (width * DPI, height * DPI)

    one = tmp_path / "one.png"
    assert main(["plot", "attention", "--checkpoint", str(trial_dir(out, "attention", 0) / "model.pt"),
                 "--audio", str(audio), "--show", "attention", "--out", str(one)]) == 0
    width, height = attention_figure_size(1)
    assert _pixels(one) == (width * DPI, height * DPI)


def test_cli_plot_gain_vs_duration(compared, tmp_path: Path) -> None:
    root, _, _ = compared
    out = root / "out"
    png, table = tmp_path / "gain.png", tmp_path / "gain.csv"
    rc = main(["plot", "gain-vs-duration", "--checkpoint-a", str(trial_dir(out, "attention", 0) / "model.pt"),
               "--checkpoint-b", str(trial_dir(out, "attention-self", 0) / "model.pt"),
               "--labels", str(root / "data" / "test" / "manifest.jsonl"),
               "--durations-labels", str(root / "data" / "train" / "strong.tsv"), "--table", str(table),
               "--out", str(png)])
    assert rc == 0
    assert _pixels(png) == (GAIN_FIGURE_SIZE[0] * DPI, GAIN_FIGURE_SIZE[1] * DPI)
    with table.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7 and set(rows[0]) == {"class", "median_duration", "ap_a", "ap_b", "gain"}


def test_cli_plot_errors_are_reported(compared, tmp_path: Path, capsys) -> None:
    root, _, _ = compared
    rc = main(["plot", "attention", "--checkpoint", str(tmp_path / "missing.pt"), "--audio",
               str(root / "data" / "test" / "audio" / "test_00000.wav"), "--out", str(tmp_path / "x.png")])
    assert rc == 2 and "checkpoint not found" in capsys.readouterr().err


def test_records_read_back_exactly(compared) -> None:
    """trial.json and results.json read back into TrialRecord and CompareResults and write out unchanged; the
    report rebuilt from results.json alone is the report.md the run wrote."""
    root, _, result = compared
    out = root / "out"
    for scheme in SCHEMES:
        for seed in (0, 1):
            file = trial_dir(out, scheme, seed) / "trial.json"
            written = json.loads(file.read_text())
            record = TrialRecord.from_json(written, file)
            assert record.to_json() == written and list(record.to_json()) == list(written)
            assert (record.scheme, record.seed) == (scheme, seed) and record == result.trials[scheme][seed]
    written = json.loads((out / "results.json").read_text())
    results = rep.CompareResults.from_json(written)
    assert results.to_json() == written and list(results.to_json()) == list(written)
    assert rep.report_markdown(results) == (out / "report.md").read_text()
    assert rep.table_markdown(results) == (out / "table.md").read_text()
    with pytest.raises(ValueError, match="not a weaktag-compare/1 results file"):
        rep.CompareResults.from_json({"format": "weaktag-trial/2"}, "x.json")


def test_a_record_that_is_not_a_current_trial_record_is_refused(compared) -> None:
    root, _, _ = compared
    file = trial_dir(root / "out", "attention-self", 0) / "trial.json"
    now = json.loads(file.read_text())
    with pytest.raises(ValueError, match="trial.json: not a weaktag-trial/2 record; delete it"):
        TrialRecord.from_json({**now, "format": "weaktag-trial/1"}, file)
    with pytest.raises(ValueError, match="trial.json: trial record lacks 'metrics'"):
        TrialRecord.from_json({k: v for k, v in now.items() if k != "metrics"}, file)


COMMITTED = sorted((REPO / "recipes" / "soundscapes" / "results").rglob("results.json"))


@pytest.mark.parametrize("file", COMMITTED, ids=lambda f: str(f.parent.relative_to(f.parents[2])))
def test_committed_results_rebuild_their_reports_byte_for_byte(file: Path) -> None:
    """Every committed comparison (older ones lack some keys) reads into CompareResults without loss, and its
    report.md and table.md rebuild from it exactly as committed (the Wilcoxon table is report.md's)."""
    written = json.loads(file.read_text())
    results = rep.CompareResults.from_json(written, file)
    again = results.to_json()
    assert {k: again[k] for k in written} == written
    assert all(again[k] is None for k in set(again) - set(written))
    assert rep.report_markdown(results) == (file.parent / "report.md").read_text()
    assert rep.table_markdown(results) == (file.parent / "table.md").read_text()
    assert rep.wilcoxon_markdown(results.wilcoxon, results.headline_metrics) in (file.parent / "report.md").read_text()


# --------------------------------------------------------------------------- pure helpers


def test_choose_attention_clip_prefers_short_events_and_several_classes() -> None:
    classes = ["a", "b", "c"]
    clips = [
        Clip("long", None, frozenset({"a"}), (Event("a", 0.0, 5.0),)),
        Clip("short_one_class", None, frozenset({"a"}), (Event("a", 1.0, 1.3),)),
        Clip("short_two_classes", None, frozenset({"a", "b"}), (Event("a", 1.0, 1.5), Event("b", 3.0, 8.0))),
        Clip("weak", None, frozenset({"c"}), None),
    ]
    assert choose_attention_clip(clips, classes).clip_id == "short_two_classes"
    assert choose_attention_clip(clips, classes, "long").clip_id == "long"
    assert choose_attention_clip(clips[3:], classes) is None
    with pytest.raises(ValueError, match="not in the test set"):
        choose_attention_clip(clips, classes, "nope")


def test_default_gain_pair_and_options() -> None:
    assert default_gain_pair(["pool-weak", "attention-self", "attention"]) == ("attention", "attention-self")
    assert default_gain_pair(["pool-weak", "attention-strong"]) == ("pool-weak", "attention-strong")
    assert default_gain_pair(["attention"]) is None
    assert CompareConfig(["attention"], 3).validate(10) == [10, 11, 12]
    with pytest.raises(ValueError, match="2 seeds for 3 trials"):
        CompareConfig(["attention"], 3, seeds=[1, 2]).validate(0)
    with pytest.raises(ValueError, match="not among the compared"):
        CompareConfig(["attention", "attention-self"], 2, gain_pair=("attention", "pool-weak")).validate(0)


def test_report_formatting() -> None:
    assert rep.fmt_mean_std(0.544, 0.0012, rep.METRICS["mAP"]) == "54.4 ± 0.12"
    assert rep.fmt_mean_std(0.544, float("nan"), rep.METRICS["mAP"]) == "54.4"
    assert rep.fmt_mean_std(None, None, rep.METRICS["mAP"]) == "n/a"
    assert rep.min_two_sided_p(5) == pytest.approx(0.0625)
    assert "smallest attainable" in rep.wilcoxon_note(5) and "smallest attainable" not in rep.wilcoxon_note(20)
    test = {"a": "attention-self", "b": "attention", "metric": "mAP", "mean_diff": -0.01, "statistic": 0.0,
            "p_value": 0.0625, "n": 5, "b_better": 0, "a_better": 5}
    flipped = rep.oriented(test, "attention", "attention-self")
    assert flipped["mean_diff"] == pytest.approx(0.01) and flipped["b_better"] == 5
    gain = {"a": "attention", "b": "attention-self", "spearman_rho": -0.9, "spearman_p": 0.01, "n": 4,
            "rows": [{"class": c, "median_duration": d, "ap_a": 0.5, "ap_b": 0.5 + g, "gain": g}
                     for c, d, g in (("w", 0.2, 0.1), ("x", 0.5, 0.05), ("y", 2.0, 0.0), ("z", 5.0, -0.02))]}
    assert rep.gain_finding(gain).startswith("Yes: the gain of `attention-self` over `attention` is larger for shorter")
    assert "Spearman rho" in rep.gain_markdown(gain)


def _pair(a: str, b: str, metric: str, mean_diff: float, p: float = 0.0625) -> dict:
    return {"a": a, "b": b, "metric": metric, "mean_diff": mean_diff, "statistic": 0.0, "p_value": p, "n": 5,
            "b_better": 5 if mean_diff > 0 else 0, "a_better": 0 if mean_diff > 0 else 5}


def test_recovered_share_is_the_arms_gain_over_strong_labels_gain_per_recipe() -> None:
    arms = ["r:attention", "r:attention-strong", "r:attention-self", "attention", "attention-self", "pool-weak"]
    labels = {"r:attention": "weak", "r:attention-strong": "weak+strong", "r:attention-self": "weak",
              "attention": "weak", "attention-self": "weak", "pool-weak": "weak"}
    tests = [_pair("r:attention", "r:attention-strong", "psds1", 0.035, 0.03),
             # stored the other way round: the share orients it (self − attention = +0.021)
             _pair("r:attention-self", "r:attention", "psds1", -0.021),
             _pair("r:attention", "r:attention-strong", "mAP", 0.004),
             _pair("r:attention", "r:attention-self", "mAP", -0.019),
             _pair("r:attention", "r:attention-strong", "AUC", -0.002),  # strong labels gain nothing here
             _pair("r:attention", "r:attention-self", "AUC", 0.001),
             _pair("attention", "attention-self", "mAP", 0.01)]  # no strong arm in this recipe group
    shares = recovered_shares(tests, arms, labels)
    got = {(r["arm"], r["metric"]): r for r in shares}
    assert set(got) == {("r:attention-self", m) for m in ("psds1", "mAP", "AUC")}
    assert got[("r:attention-self", "psds1")]["share"] == pytest.approx(0.6)
    assert got[("r:attention-self", "psds1")]["arm_gain"] == pytest.approx(0.021)
    assert got[("r:attention-self", "psds1")]["strong_p_value"] == pytest.approx(0.03)
    assert got[("r:attention-self", "mAP")]["share"] == pytest.approx(-4.75)
    assert got[("r:attention-self", "AUC")]["share"] is None
    (line,) = rep.recovered_reading(shares)
    assert line == ("`r:attention-self` recovers 60% of strong labels' PSDS1 gain (+2.1 of +3.5 points, p = 0.0625), "
                    "at -1.9 mAP (p = 0.0625).")
    table = rep.recovered_markdown(shares)
    assert "| `r:attention-self` | AUC | +0.1 | -0.2 | n/a | 0.0625 | 0.0625 |" in table
    assert "| `r:attention-self` | PSDS1 | +2.1 | +3.5 | 60% | 0.0625 | 0.03 * |" in table
    # the report: the reading right under the title, the table in its own section
    results = rep.CompareResults.from_json(json.loads(COMMITTED[0].read_text()), COMMITTED[0])
    results.recovered = shares
    report = rep.report_markdown(results).splitlines()
    assert report[2] == line and "## What weak labels alone recover of strong labels' gain" in report


def test_recipe_summary_names_the_neck_the_time_stride_and_the_decoding() -> None:
    config = {"model": {"backbone": "aisfx", "freeze": 4, "time_stride": 8, "neck": "gru", "neck_layers": 2,
                        "neck_channels": 256, "dropout": 0.3},
              "train": {"lr": 0.001, "lr_schedule": "constant", "batch_size": 32, "max_epochs": 100,
                        "event_output": "auto", "event_calibration": "event_f1", "event_durations": True,
                        "event_hysteresis": True},
              "augment": {"mixup_alpha": 0.4}}
    line = rep.recipe_summary({"source": "configs/recommended.yaml", "config": config})
    assert "time stride 8; gru neck 2 x 256 channels, dropout 0.3" in line
    assert line.endswith("thresholds, minimum durations and gaps, hysteresis for event_f1")
    config["model"].pop("neck")
    config["train"].update(event_durations=False, event_hysteresis=False)
    line = rep.recipe_summary({"config": config})
    assert "conv neck 2 x 256" in line and line.endswith("event output auto, thresholds for event_f1")


def test_recipes_are_arms_with_their_own_config_and_paired_seeds(compared, copy: Path, capsys) -> None:
    """``--recipe alt=ALT.yaml`` and the arm ``alt:attention`` train under the other recipe on the same data,
    beside the shared config's schemes (reused), with their own folder, fingerprint and figure."""
    _, config, _ = compared
    data_root = Path(config.data.train).parents[1]
    config_file = copy.parent / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(_config_dict(data_root)))
    alt = _config_dict(data_root)
    alt.pop("data")  # a recipe brings no data: it is compared on --config's
    alt["model"]["l7_channels"] = 32
    alt["train"]["event_output"] = "auto"
    alt_file = copy.parent / "alt.yaml"
    alt_file.write_text(yaml.safe_dump(alt))
    rc = main(["compare", "--config", str(config_file), "--schemes", "attention,attention-self,alt:attention",
               "--recipe", f"alt={alt_file}", "--trials", "2", "--out-dir", str(copy), "--quiet"])
    assert rc == 0
    assert "2 trial(s) run, 4 reused" in capsys.readouterr().out
    for seed in (0, 1):
        ckpt = load_checkpoint(trial_dir(copy, "alt:attention", seed) / "model.pt")
        assert trial_dir(copy, "alt:attention", seed) == copy / "runs" / "alt" / "attention" / f"seed{seed}"
        assert ckpt.scheme == "attention" and ckpt.experiment["model"]["l7_channels"] == 32
        assert ckpt.experiment["data"]["train"] == config.data.train  # the shared data, not the recipe's
    results = json.loads((copy / "results.json").read_text())
    assert results["schemes"] == ["attention", "attention-self", "alt:attention"]
    assert results["scheme_labels"]["alt:attention"] == "weak"
    assert results["recipes"]["alt"]["source"] == str(alt_file)
    assert results["recipes"]["alt"]["config"]["model"]["l7_channels"] == 32
    assert {(t["a"], t["b"]) for t in results["wilcoxon"] if t["metric"] == "mAP"} >= {
        ("attention", "alt:attention"), ("attention-self", "alt:attention")}
    figures = {f["recipe"]: f["figure"] for f in results["attention_figures"]}
    assert set(figures) == {None, "alt"} and all((copy / name).exists() for name in figures.values())
    report = (copy / "report.md").read_text()
    assert "recipe `alt`" in report and "`alt:attention`" in report and f"]({figures['alt']})" in report
    # the recipe's trials are fingerprinted with the recipe: another recipe under the same name is refused
    alt["train"]["lr"] = 0.01
    alt_file.write_text(yaml.safe_dump(alt))
    assert main(["compare", "--config", str(config_file), "--schemes", "alt:attention", "--recipe",
                 f"alt={alt_file}", "--trials", "2", "--out-dir", str(copy), "--quiet"]) == 2
    assert "different config" in capsys.readouterr().err


def test_unknown_recipe_and_bad_recipe_specs_are_refused(compared, tmp_path: Path, capsys) -> None:
    _, config, _ = compared
    with pytest.raises(ValueError, match="unknown recipe"):
        run_compare(config, CompareConfig(["attention", "nope:attention"], 1), tmp_path / "out", log=None)
    with pytest.raises(ValueError, match="unknown scheme 'wat'"):
        run_compare(config, CompareConfig(["r:wat"], 1), tmp_path / "out", log=None, recipes={"r": Recipe(config)})
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(_config_dict(Path(config.data.train).parents[1])))
    assert main(["compare", "--config", str(config_file), "--recipe", "no-equals-sign", "--quiet"]) == 2
    assert "expected NAME=CONFIG.yaml" in capsys.readouterr().err
