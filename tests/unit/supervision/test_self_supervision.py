"""Self-supervision: the paper's rule and weaktag's extensions on hand-built X^a, the diagnostics on a
hand-built batch, the mean teacher, PSL's chunks, teacher labels and loss, and PSL in compare."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from weaktag.checkpoint import save_checkpoint
from weaktag.cli import main
from weaktag.config import config_from_dict, load_config
from weaktag.batch import Batch
from weaktag.data import FeatureSet
from weaktag.geometry import VGGISH_GRID
from weaktag.labels import Clip, Event
from weaktag.models import ModelConfig, ModelOutput, WeakTagNet
from weaktag.models.backbone import BackboneConfig
from weaktag.supervision import (PseudoLabelRule, make_scheme, pseudo_labels, pseudo_strong_labels,
                                 scheme_parameters)
from weaktag.supervision.diagnostics import SelfSupervisionStats
from weaktag.supervision.extended import distribution_attention_loss
from weaktag.training.module import WeakTagModule
from weaktag.training.psl import chunk_segments_for, teacher_labelled_chunks

# one clip, 3 classes (0 and 1 present, 2 absent), 4 segments
XA = torch.tensor([[[0.9, 0.6, 0.3, 0.2],
                    [0.5, 0.5, 0.7, 0.1],
                    [0.2, 0.4, 0.2, 0.0]]])
WEAK = torch.tensor([[1.0, 1.0, 0.0]])


def test_paper_rule_thresholds_at_the_mean_of_absent_classes() -> None:
    # theta = mean(0.2, 0.4, 0.2, 0.0) = 0.2: every present segment >= 0.2 is marked
    p = pseudo_strong_labels(XA, WEAK)
    assert p.tolist() == [[[1, 1, 1, 1], [1, 1, 1, 0], [0, 0, 0, 0]]]
    same, rows = pseudo_labels(XA, WEAK, PseudoLabelRule())
    assert torch.equal(same, p) and rows.tolist() == [[True, True, False]]


def test_extended_rules_on_a_hand_built_xa() -> None:
    # absent-max: theta = 0.4
    p, _ = pseudo_labels(XA, WEAK, PseudoLabelRule("absent-max"))
    assert p[0, :2].tolist() == [[1, 1, 0, 0], [1, 1, 1, 0]]
    # absent-quantile 0.5 of (0, 0.2, 0.2, 0.4) = 0.2
    p, _ = pseudo_labels(XA, WEAK, PseudoLabelRule("absent-quantile", quantile=0.5))
    assert p[0, :2].tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    # peak-relative 0.5: class 0 theta = 0.2 + 0.5 * (0.9 - 0.2) = 0.55; class 1: 0.2 + 0.5 * 0.5 = 0.45
    p, rows = pseudo_labels(XA, WEAK, PseudoLabelRule("peak-relative", peak_ratio=0.5))
    assert p[0].tolist() == [[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
    # r = 0 is the paper's rule
    p0, _ = pseudo_labels(XA, WEAK, PseudoLabelRule("peak-relative", peak_ratio=0.0))
    assert torch.equal(p0, pseudo_strong_labels(XA, WEAK))
    # the confidence gate drops present classes whose clip prediction is below it
    clip = torch.tensor([[0.8, 0.3, 0.1]])
    p, rows = pseudo_labels(XA, WEAK, PseudoLabelRule(confidence_gate=0.5), clip)
    assert rows.tolist() == [[True, False, False]] and p[0, 1].sum() == 0
    with pytest.raises(ValueError, match="unknown pseudo-label threshold rule 'median'"):
        pseudo_labels(XA, WEAK, PseudoLabelRule("median"))
    with pytest.raises(ValueError, match="confidence gate needs"):
        pseudo_labels(XA, WEAK, PseudoLabelRule(confidence_gate=0.5))


def _output(attention: torch.Tensor, clip: torch.Tensor, xa: torch.Tensor = XA) -> ModelOutput:
    return ModelOutput(xa, clip, attention, attention)


def test_distribution_loss_is_kl_to_p_over_k() -> None:
    a = torch.tensor([[[0.4, 0.4, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]]])
    p = torch.tensor([[[1.0, 1.0, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0]]])
    rows = torch.tensor([[True, True, False]])
    kl0 = 0.5 * math.log(0.5 / 0.4) * 2
    kl1 = 3 * (1 / 3) * math.log((1 / 3) / 0.25)
    assert distribution_attention_loss(a, p, rows).item() == pytest.approx((kl0 + kl1) / 3, rel=1e-5)  # mean over all 3 classes
    assert distribution_attention_loss(p / p.sum(-1, keepdim=True), p, rows).item() == pytest.approx(0.0, abs=1e-5)
    assert distribution_attention_loss(a, p, torch.zeros_like(rows)).item() == 0.0


def test_extended_scheme_loss_and_alpha_ramp() -> None:
    scheme = make_scheme("attention-self-ext", scheme_parameters(
        "attention-self-ext", alpha=2.0, alpha_warmup_epochs=4, pseudo_threshold="absent-max", pseudo_target="distribution"))
    a = torch.softmax(torch.randn(1, 3, 4), dim=-1)
    clip = torch.tensor([[0.7, 0.6, 0.2]])
    batch = Batch(torch.zeros(1, 64, 64), WEAK, torch.zeros(1, 3, 4), torch.zeros(1, dtype=torch.bool))
    expected_pred = torch.nn.functional.binary_cross_entropy(clip, WEAK).item()
    p, rows = pseudo_labels(XA, WEAK, scheme.rule, clip)
    att = distribution_attention_loss(a, p, rows).item()
    for epoch, ramp in ((0, 0.0), (2, 0.5), (4, 1.0), (9, 1.0)):
        scheme.start_epoch(epoch)
        terms = scheme.loss(_output(a, clip), batch)
        assert terms.total.item() == pytest.approx(expected_pred + 2.0 * ramp * att, rel=1e-5)
    # a teacher's X^a, when given, makes P
    teacher_xa = torch.zeros_like(XA)
    teacher_xa[0, 0, 3] = 1.0
    scheme.start_epoch(9)
    taught = scheme.loss(_output(a, clip), batch, teacher=_output(a, clip, teacher_xa))
    pt, rt = pseudo_labels(teacher_xa, WEAK, scheme.rule, clip)
    assert taught.parts["att_self"].item() == pytest.approx(distribution_attention_loss(a, pt, rt).item(), rel=1e-5)
    # the paper's scheme does not take the extension's settings
    with pytest.raises(ValueError, match="scheme 'attention-self' does not take 'pseudo_threshold'"):
        scheme_parameters("attention-self", pseudo_threshold="absent-max")
    assert not hasattr(make_scheme("attention-self"), "rule")
    with pytest.raises(ValueError, match="needs scheme.attention_target=normalized"):
        make_scheme("attention-self-ext",
                    scheme_parameters("attention-self-ext", attention_target="raw", pseudo_target="distribution"))


def test_segment_self_training_loss_on_present_rows_and_absent_classes() -> None:
    from weaktag.supervision.extended import segment_self_training_loss

    xa = torch.tensor([[[0.9, 0.1], [0.2, 0.3], [0.5, 0.5]]])
    p = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])
    rows = torch.tensor([[True, False, False]])  # class 2 is present but unsupervised: left out
    weak = torch.tensor([[1.0, 0.0, 1.0]])
    expected = -(math.log(0.9) + math.log(0.9) + math.log(0.8) + math.log(0.7)) / 4
    assert segment_self_training_loss(xa, p, rows, weak).item() == pytest.approx(expected, rel=1e-5)
    scheme = make_scheme("attention-self-ext",
                         scheme_parameters("attention-self-ext", segment_weight=0.5, pseudo_target="binary"))
    out = _output(torch.full((1, 3, 4), 0.25), torch.tensor([[0.7, 0.6, 0.2]]))
    batch = Batch(torch.zeros(1, 64, 64), WEAK, torch.zeros(1, 3, 4), torch.zeros(1, dtype=torch.bool))
    terms = scheme.loss(out, batch)
    total = terms.parts["pred"] + terms.parts["att_self"] + 0.5 * terms.parts["segment_self"]
    assert terms.total.item() == pytest.approx(total.item(), rel=1e-6)


def test_config_takes_extension_settings_and_checks_them() -> None:
    c = load_config(None, ["scheme.name=attention-self-ext", "scheme.peak_ratio=0.3", "scheme.pseudo_target=binary"])
    s = make_scheme(c.scheme.name, c.scheme)
    assert s.rule.peak_ratio == 0.3 and s.params.pseudo_target == "binary"
    with pytest.raises(ValueError, match="scheme.peak_ratio"):
        load_config(None, ["scheme.name=attention-self-ext", "scheme.peak_ratio=1.5"])
    with pytest.raises(ValueError, match="scheme.pseudo_threshold: 'median' is not allowed"):
        load_config(None, ["scheme.name=attention-self-ext", "scheme.pseudo_threshold=median"])


def test_diagnostics_on_a_hand_built_batch() -> None:
    # clip 0 strong, classes 0 and 1 present; clip 1 has no strong labels and must not count
    p = torch.tensor([[[1.0, 1, 0, 0], [0, 0, 0, 0]], [[1, 1, 1, 1], [1, 1, 1, 1]]])
    y = torch.tensor([[[1.0, 0, 0, 0], [0, 1, 1, 0]], [[0, 0, 0, 0], [0, 0, 0, 0]]])
    a = torch.tensor([[[0.5, 0.5, 0, 0], [0.25, 0.25, 0.25, 0.25]], [[0.25] * 4, [0.25] * 4]])
    weak = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    stats = SelfSupervisionStats(2)
    stats.update(p, y, a, weak, torch.tensor([True, False]))
    pc = stats.per_class()
    assert pc["pseudo_density"].tolist() == [0.5, 0.0]
    assert pc["true_density"].tolist() == [0.25, 0.5]
    assert pc["precision"][0] == 0.5 and np.isnan(pc["precision"][1])  # P marks nothing for class 1
    assert pc["recall"].tolist() == [1.0, 0.0]
    assert pc["attention_in_events"].tolist() == [0.5, 0.5]
    assert pc["attention_entropy"] == pytest.approx([math.log(2) / math.log(4), 1.0])
    summary = stats.summary()
    assert summary["precision"] == 0.5 and summary["pseudo_density"] == 0.25


def test_mean_teacher_is_an_exponential_moving_average() -> None:
    net = WeakTagNet(ModelConfig(2, True, BackboneConfig(width=0.0625, l7_channels=16)))
    scheme = make_scheme("attention-self-ext", scheme_parameters("attention-self-ext", teacher_decay=0.9))
    module = WeakTagModule(net, scheme, 1e-3, ["a", "b"])
    module.on_train_epoch_start()
    teacher = module.teacher
    assert teacher is not None and "teacher" not in dict(module.named_children())
    before = [p.detach().clone() for p in teacher.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    module.update_teacher()  # what each optimiser step ends with
    for b, t, s in zip(before, teacher.parameters(), net.parameters()):
        assert torch.allclose(t, 0.9 * b + 0.1 * s, atol=1e-6)


# --------------------------------------------------------------------------- PSL


def _feature_set(n: int = 2, frames: int = 998) -> FeatureSet:
    clips = [Clip(f"c{i}", None, frozenset({"a"}), (Event("a", 1.0, 2.5),)) for i in range(n)]
    return FeatureSet(clips, ["a", "b"], torch.randn(n, frames, 64))


def test_chunks_cover_the_clip_and_crop_events() -> None:
    fs = _feature_set()
    assert fs.num_segments == 62
    chunks = fs.chunks(chunk_segments_for(2.0, VGGISH_GRID.segment_seconds, fs.num_segments))  # 12 segments
    starts = [0, 12, 24, 36, 48, 50]  # the last one ends at the clip's end
    assert [c.clip_id for c in chunks.clips[:6]] == [f"c0@{s}" for s in starts]
    assert len(chunks) == 12 and chunks.features.shape == (12, 192, 64) and chunks.num_segments == 12
    assert torch.equal(chunks.features[7], fs.features[1, 192:384])
    seg = VGGISH_GRID.segment_seconds
    first = chunks.clips[0].events[0]
    assert (first.onset, first.offset) == pytest.approx((1.0, 12 * seg))  # cropped at chunk 0's end (1.92 s)
    second = chunks.clips[1].events
    assert second and second[0].onset == pytest.approx(0.0) and second[0].offset == pytest.approx(2.5 - 12 * seg)
    assert chunks.clips[2].events == ()  # no event after 3.84 s
    assert all(c.labels == {"a"} for c in chunks.clips)  # a chunk keeps its clip's weak labels
    with pytest.raises(ValueError, match="a chunk must be"):
        fs.chunks(63)


def test_teacher_labels_each_chunk_alone(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = WeakTagNet(ModelConfig(2, True, BackboneConfig(width=0.0625, l7_channels=16))).eval()
    ckpt = save_checkpoint(tmp_path / "teacher.pt", net, ["a", "b"], "attention", {})
    fs = _feature_set()
    labelled = teacher_labelled_chunks(fs, ckpt, 5.0, net)
    assert len(labelled) == 4 and labelled.teacher.shape == (4, 2)
    with torch.no_grad():
        direct = net.forward_features(fs.features[1:2, 31 * 16: 62 * 16]).clip_probs
    assert torch.allclose(labelled.teacher[3], direct[0], atol=1e-5)
    batch = labelled.collate([0, 3])
    assert torch.equal(batch.teacher, labelled.teacher[[0, 3]])
    with pytest.raises(ValueError, match="other classes"):
        teacher_labelled_chunks(FeatureSet(fs.clips, ["a", "b", "c"], fs.features), ckpt, 5.0, net)
    with pytest.raises(ValueError, match="not found"):
        teacher_labelled_chunks(fs, tmp_path / "none.pt", 5.0, net)


def test_psl_student_loss_is_its_formula() -> None:
    scheme = make_scheme("psl", scheme_parameters("psl", teacher="t.pt", teacher_weight=0.3))
    clip = torch.tensor([[0.8, 0.2]])
    teacher = torch.tensor([[0.6, 0.1]])
    weak = torch.tensor([[1.0, 0.0]])
    batch = Batch(torch.zeros(1, 64, 64), weak, torch.zeros(1, 2, 4), torch.zeros(1, dtype=torch.bool),
                  teacher=teacher)
    out = ModelOutput(torch.zeros(1, 2, 4), clip, torch.full((1, 2, 4), 0.25), torch.full((1, 2, 4), 0.25))
    bce = torch.nn.functional.binary_cross_entropy
    expected = 0.3 * bce(clip, teacher) + 0.7 * bce(clip, weak)
    assert scheme.loss(out, batch).total.item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="no teacher labels"):
        scheme.loss(out, Batch(batch.features, weak, batch.strong, batch.has_strong))
    with pytest.raises(ValueError, match="teacher_weight"):
        make_scheme("psl", scheme_parameters("psl", teacher_weight=2.0))


def test_cli_psl_needs_a_teacher_that_exists(tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("data: {train: t.jsonl, validation: v.jsonl}\n")
    assert main(["psl", "--teacher", str(tmp_path / "missing.pt"), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("weaktag psl: error:") and len(err.strip().splitlines()) == 1


def test_compare_runs_psl_and_the_extension_with_diagnostics(tmp_path: Path) -> None:
    from weaktag.experiments.compare import CompareConfig, run_compare, trial_dir
    from weaktag.synth import SynthConfig, synthesize_splits

    splits = {"train": 32, "validation": 16, "test": 16}
    synthesize_splits(tmp_path / "data", splits, SynthConfig(seed=1))
    config = config_from_dict({
        "data": {s: str(tmp_path / "data" / s / "manifest.jsonl") for s in splits},
        "model": {"width": 0.0625, "l7_channels": 64},
        "scheme": {"name": "psl", "chunk_seconds": 5.0},  # the psl arm's; the other arms take their defaults
        "train": {"lr": 1e-3, "batch_size": 16, "max_epochs": 1, "progress": False, "logger": "none",
                  "accelerator": "cpu"}})
    with pytest.raises(ValueError, match="list attention before it"):
        run_compare(config, CompareConfig(["psl", "attention"], 1), tmp_path / "out", log=None)
    result = run_compare(config, CompareConfig(["attention", "psl", "attention-self-ext"], 1), tmp_path / "out",
                         log=None)
    out = tmp_path / "out"
    import json

    summary = json.loads((trial_dir(out, "psl", 0) / "summary.json").read_text())
    assert summary["scheme"] == "psl"
    from weaktag.checkpoint import load_checkpoint

    student = load_checkpoint(trial_dir(out, "psl", 0) / "model.pt")
    assert student.experiment["scheme"]["teacher"] == str(trial_dir(out, "attention", 0) / "model.pt")
    assert student.experiment["scheme"]["chunk_seconds"] == 5.0
    results = json.loads((out / "results.json").read_text())
    assert results["scheme_labels"] == {"attention": "weak", "psl": "weak", "attention-self-ext": "weak"}
    diag = results["diagnostics"]
    assert set(diag) == {"attention", "psl", "attention-self-ext"}  # every attention arm, P by its rule
    for arm in diag.values():
        assert 0.0 <= arm["best"]["pseudo_density"] <= 1.0 and 0.0 <= arm["best"]["attention_entropy"] <= 1.0
    assert (out / "diagnostics.png").stat().st_size > 0
    assert "## Self-supervision diagnostics" in (out / "report.md").read_text()
    assert np.isfinite(result.summary["psl"]["mAP"]["mean"])


def test_a_trial_fingerprint_holds_only_its_schemes_settings() -> None:
    from weaktag.experiments.trials import fingerprint

    config = load_config(None, ["scheme.alpha=0.5"])
    assert fingerprint(config, "attention")["scheme"] == {}  # row 6's settings do not change it
    assert fingerprint(config, "attention-self")["scheme"] == {"alpha": 0.5, "attention_target": "normalized",
                                                               "loss_reduction": "mean"}
    # an arm of another scheme takes the shared values it takes too, and its defaults for the rest
    assert fingerprint(config, "attention-strong")["scheme"] == {"alpha": 0.5, "attention_target": "normalized",
                                                                 "loss_reduction": "mean"}
    assert fingerprint(config, "psl")["scheme"] == {"teacher": None, "teacher_arm": None, "chunk_seconds": 2.0,
                                                    "teacher_weight": 1.0}
    psl = load_config(None, ["scheme.name=psl", "scheme.chunk_seconds=5"])
    assert fingerprint(psl, "recommended:psl")["scheme"]["chunk_seconds"] == 5.0
    assert fingerprint(psl, "attention-self")["scheme"] == {"alpha": 1.0, "attention_target": "normalized",
                                                            "loss_reduction": "mean"}
