"""Model cards (issue 25, item 4): every checkpoint ``weaktag train`` writes gets MODEL_CARD.md beside it, whose
figures are the checkpoint's; ``weaktag info`` shows the card with the front end, time grid, MACs and parameters."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import LEARNABLE_CLASSES, learnable_data  # tiny learnable feature sets, no audio
from weaktag.card import CARD_FILE, card_markdown, model_card
from weaktag.checkpoint import load_checkpoint, save_checkpoint
from weaktag.cli import main
from weaktag.config import load_config
from weaktag.errors import CheckpointError
from weaktag.labels import Clip, Event
from weaktag.labels.summary import training_data
from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet
from weaktag.models.aisfx import AISFX_ATTRIBUTION
from weaktag.models.cost import macs_per_audio, parameter_count
from weaktag.postprocess import EventSettings
from weaktag.version import weaktag_version


def _table(markdown: str, heading: str) -> list[dict[str, str]]:
    """The first Markdown table under ``## heading``, as rows of column -> cell."""
    section = markdown.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    config = load_config(None, ["model.width=0.125", "scheme.name=attention", "train.batch_size=4",
                                "train.max_epochs=1", "train.accelerator=cpu", "train.progress=false",
                                "train.logger=none", "train.event_output=segment", f"output_dir={out}"])
    from weaktag.training import train

    return train(config, data=learnable_data(8, 4)).checkpoint


def test_training_writes_a_card_whose_figures_are_the_checkpoints(trained: Path):
    card_path = trained.parent / CARD_FILE
    assert card_path.is_file()
    text = card_path.read_text()
    checkpoint = load_checkpoint(trained)
    assert checkpoint.weaktag_version == weaktag_version() and f"weaktag {weaktag_version()}" in text

    # clip counts per class and split, counted here from the clips the run was given
    data = learnable_data(8, 4)
    expected = {split: {c: sum(c in clip.labels for clip in features.clips) for c in LEARNABLE_CLASSES}
                for split, features in (("train", data.train), ("validation", data.validation))}
    assert {s.name: s.per_class for s in checkpoint.data.splits} == expected
    rows = _table(text, "Classes and settings")
    assert [r["class"] for r in rows] == checkpoint.classes == LEARNABLE_CLASSES
    thresholds = checkpoint.events.thresholds_for(checkpoint.classes)
    for i, row in enumerate(rows):
        assert int(row["train clips"]) == expected["train"][row["class"]]
        assert int(row["validation clips"]) == expected["validation"][row["class"]]
        assert float(row["tag threshold"]) == pytest.approx(checkpoint.tag_thresholds[i], abs=5e-5)
        assert float(row["event threshold"]) == pytest.approx(thresholds[i], abs=5e-5)
        assert float(row["median filter (s)"]) == pytest.approx(checkpoint.events.median_filter_seconds, abs=5e-3)

    splits = {r["split"]: r for r in _table(text, "Training data")}
    for split, features in (("train", data.train), ("validation", data.validation)):
        strong = sum(c.has_strong for c in features.clips)
        assert (int(splits[split]["clips"]), int(splits[split]["weak"]), int(splits[split]["strong"])) == (
            len(features), len(features) - strong, strong)
    metrics = {r["metric"]: r for r in _table(text, "Metrics")}
    assert float(metrics["mAP"]["validation"]) == pytest.approx(checkpoint.metrics["validation"]["mAP"], abs=5e-5)
    assert float(metrics["AUC"]["validation"]) == pytest.approx(checkpoint.metrics["validation"]["AUC"], abs=5e-5)
    assert f"scheme `{checkpoint.scheme}`" in text and "best epoch" in text.lower()
    recipe = trained.parent / "recipe.yaml"  # the card's recipe, saved as a config, is the run's config
    recipe.write_text(text.split("```yaml\n", 1)[1].split("```", 1)[0])
    assert load_config(recipe, []).to_dict() == checkpoint.experiment


def test_weaktag_info_shows_the_card_the_front_end_and_the_cost(trained: Path, capsys):
    assert main(["info", str(trained)]) == 0
    out = capsys.readouterr().out
    assert out.startswith((trained.parent / CARD_FILE).read_text())  # the card, as written, first
    model = load_checkpoint(trained).model
    macs = int(re.search(r"MACs per 10 s of audio: ([\d,]+)", out).group(1).replace(",", ""))
    params = int(re.search(r"parameters: ([\d,]+)", out).group(1).replace(",", ""))
    assert (macs, params) == (macs_per_audio(model, 10.0), parameter_count(model))
    assert f"sample_rate {model.grid.sample_rate}" in out and f"{model.grid.segment_seconds:.4f} s" in out


def _clips(n: int, strong: int, labels: tuple[str, ...]) -> list[Clip]:
    return [Clip(f"c{i}", None, frozenset({labels[i % len(labels)]}),
                 (Event(labels[i % len(labels)], 0.0, 1.0),) if i < strong else None) for i in range(n)]


def test_card_of_an_aisfx_model_carries_the_attribution_test_metrics_and_label_kinds(tmp_path: Path):
    torch.manual_seed(0)
    model = WeakTagNet(ModelConfig(2, backbone=BackboneConfig(backbone="aisfx", pretrained=False))).eval()
    counts = training_data(["dog", "rain"], {"train": _clips(6, 2, ("dog", "rain")), "validation": _clips(3, 3, ("dog",)),
                                             "test": _clips(4, 4, ("rain",)), "unlabeled": _clips(5, 0, ("dog",))},
                           skipped={"train": 1})
    events = EventSettings("attention", [0.3, 0.6], [0.2, 0.5], 0.5, 0.1, 0.3)
    metrics = {"validation": {"mAP": 0.8, "AUC": 0.9, "best_epoch": 3},
               "test": {"mAP": 0.7, "AUC": 0.85, "events": {"psds1": 0.25, "psds2": float("nan")}}}
    path = save_checkpoint(tmp_path / "m" / "model.pt", model, ["dog", "rain"], "attention-strong",
                           {"model": {"backbone": "aisfx", "pretrained": True, "freeze": 4}},
                           np.array([0.4, 0.45]), events, metrics, data=counts)
    card = model_card(load_checkpoint(path))
    assert card.backbone.licence == "CC BY 4.0" and card.backbone.attribution == AISFX_ATTRIBUTION
    assert [(c.name, c.event_threshold, c.median_filter_seconds, c.stay_on_fraction) for c in card.classes] == [
        ("dog", 0.3, 0.2, 0.5), ("rain", 0.6, 0.5, 0.5)]
    assert {m.name: (m.validation, m.test) for m in card.metrics}["events.psds1"] == (None, 0.25)
    assert card.data == counts  # round trip through the checkpoint
    text = card_markdown(card)
    assert AISFX_ATTRIBUTION in text and "CC BY 4.0" in text
    splits = {r["split"]: r for r in _table(text, "Training data")}
    assert [splits[s]["unlabelled"] for s in ("train", "unlabeled")] == ["0", "5"]
    assert (splits["test"]["strong"], splits["train"]["weak"], splits["train"]["unreadable"]) == ("4", "4", "1")
    metric_rows = {r["metric"]: r for r in _table(text, "Metrics")}
    assert metric_rows["events.psds2"]["test"] == "–" and metric_rows["mAP"]["test"] == "0.7000"


def test_a_checkpoint_from_before_cards_gets_a_card_that_says_what_it_lacks(tmp_path: Path, capsys):
    model = WeakTagNet(ModelConfig(2, backbone=BackboneConfig(width=0.125))).eval()
    path = save_checkpoint(tmp_path / "old.pt", model, ["cat", "cow"], "attention", {})
    payload = torch.load(path, weights_only=True)
    del payload["data"], payload["weaktag_version"]
    torch.save(payload, path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Not recorded" in out and "unknown (written before weaktag recorded its version)" in out
    payload["data"] = {"splits": [{"name": "train"}]}  # damaged
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="damaged training data summary"):
        load_checkpoint(path)
