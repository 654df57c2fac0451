"""``weaktag distill``: the student's loss, the teacher's segment targets on the student's grid, and a distilled
checkpoint that tags, evaluates and exports like any other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from weaktag.batch import Batch
from weaktag.checkpoint import load_checkpoint, save_checkpoint
from weaktag.cli import main
from weaktag.config import load_config
from weaktag.data import FeatureSet
from weaktag.geometry import VGGISH_GRID
from weaktag.labels import Clip
from weaktag.models import BackboneConfig, ModelConfig, ModelOutput, WeakTagNet
from weaktag.postprocess import EventSettings, segment_scores
from weaktag.supervision import make_scheme, scheme_parameters
from weaktag.training.augment import time_shift
from weaktag.training.run import read_manifests
from weaktag.training.psl import teacher_labelled_chunks, teacher_segment_targets

bce = torch.nn.functional.binary_cross_entropy


def test_distilled_student_loss_is_its_formula() -> None:
    scheme = make_scheme("distill", scheme_parameters("distill", teacher="t.pt", teacher_weight=0.7,
                                                      segment_weight=2.0))
    clip = torch.tensor([[0.8, 0.2]])
    seg = torch.tensor([[[0.9, 0.6, 0.1], [0.2, 0.3, 0.4]]])
    teacher, weak = torch.tensor([[0.6, 0.1]]), torch.tensor([[1.0, 0.0]])
    teacher_segments = torch.tensor([[[1.0, 0.5, 0.0], [0.1, 0.1, 0.9]]])
    batch = Batch(torch.zeros(1, 48, 64), weak, torch.zeros(1, 2, 3), torch.zeros(1, dtype=torch.bool),
                  teacher=teacher, teacher_segments=teacher_segments)
    out = ModelOutput(seg, clip, torch.full((1, 2, 3), 1 / 3), torch.zeros(1, 2, 3),
                      segment_logits=torch.logit(seg))
    expected = 0.7 * bce(clip, teacher) + 0.3 * bce(clip, weak) + 2.0 * bce(seg, teacher_segments)
    terms = scheme.loss(out, batch)
    assert terms.total.item() == pytest.approx(expected.item(), rel=1e-5)
    assert terms.parts["segments"].item() == pytest.approx(bce(seg, teacher_segments).item(), rel=1e-5)
    # lambda 0 is PSL with the clip labels mixed in
    psl_like = make_scheme("distill", scheme_parameters("distill", teacher="t.pt", teacher_weight=0.7,
                                                        segment_weight=0.0))
    assert psl_like.loss(out, batch).total.item() == pytest.approx(
        (0.7 * bce(clip, teacher) + 0.3 * bce(clip, weak)).item(), rel=1e-5)
    with pytest.raises(ValueError, match="segment scores"):
        scheme.loss(out, Batch(batch.features, weak, batch.strong, batch.has_strong, teacher=teacher))


def test_teacher_segment_targets_follow_the_student_grid() -> None:
    scores = np.array([[[0.0, 1.0, 0.0, 1.0]]])
    assert torch.equal(teacher_segment_targets(scores, 4), torch.tensor(scores, dtype=torch.float32))
    stretched = teacher_segment_targets(np.array([[[0.0, 1.0]]]), 4)  # half-segment centres: linear in time
    assert stretched.shape == (1, 1, 4) and torch.allclose(stretched, torch.tensor([[[0.0, 0.25, 0.75, 1.0]]]))


def test_time_shift_rolls_the_teachers_segments_with_the_sound() -> None:
    segments = torch.arange(6, dtype=torch.float32).reshape(1, 1, 6) / 6
    batch = Batch(torch.randn(1, 6 * VGGISH_GRID.time_stride, 64), torch.ones(1, 1), torch.zeros(1, 1, 6),
                  torch.zeros(1, dtype=torch.bool), teacher_segments=segments)
    shifted = time_shift(batch, torch.tensor([2]), VGGISH_GRID)
    assert torch.equal(shifted.teacher_segments, torch.roll(segments, 2, dims=-1))


def test_chunks_carry_the_teachers_chosen_event_output(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = WeakTagNet(ModelConfig(2, True, BackboneConfig(width=0.0625, l7_channels=16))).eval()
    ckpt = save_checkpoint(tmp_path / "t.pt", net, ["a", "b"], "attention", {},
                           events=EventSettings(output="gated-attention"))
    clips = [Clip(f"c{i}", tmp_path / f"c{i}.wav", frozenset({"a"})) for i in range(2)]
    train = FeatureSet(clips, ["a", "b"], torch.randn(2, 10 * VGGISH_GRID.time_stride, 64))
    labelled = teacher_labelled_chunks(train, ckpt, 5 * VGGISH_GRID.segment_seconds, net, with_segments=True)
    assert labelled.teacher_segments.shape == (4, 2, 5)
    with torch.no_grad():
        out = net.forward_features(train.features[1:2, 5 * VGGISH_GRID.time_stride:])
    expected = segment_scores("gated-attention", out.segment_probs.numpy(), out.attention.numpy(),
                              out.clip_probs.numpy())
    assert np.allclose(labelled.teacher_segments[3].numpy(), expected[0], atol=1e-5)
    batch = labelled.collate([3, 0])
    assert torch.equal(batch.teacher_segments, labelled.teacher_segments[[3, 0]])
    assert teacher_labelled_chunks(train, ckpt, 5 * VGGISH_GRID.segment_seconds, net).teacher_segments is None


def test_a_distilled_checkpoint_tags_evaluates_and_exports(tmp_path: Path, capsys) -> None:
    from weaktag.synth import SynthConfig, synthesize_splits

    splits = {"train": 16, "validation": 8, "test": 8}
    synthesize_splits(tmp_path / "data", splits, SynthConfig(seed=3))
    config = tmp_path / "student.yaml"
    data = "".join(f"  {s}: {tmp_path / 'data' / s / 'manifest.jsonl'}\n" for s in splits)
    config.write_text(f"data:\n{data}model: {{width: 0.0625, l7_channels: 16}}\n"
                      "train: {max_epochs: 1, batch_size: 16, progress: false, logger: none, accelerator: cpu}\n"
                      f"output_dir: {tmp_path / 'student'}\n")
    classes, _ = read_manifests(load_config(config))
    torch.manual_seed(1)
    teacher = WeakTagNet(ModelConfig(len(classes), True, BackboneConfig(width=0.0625, l7_channels=32))).eval()
    teacher_path = save_checkpoint(tmp_path / "teacher.pt", teacher, list(classes), "attention", {})
    assert main(["distill", "--teacher", str(teacher_path), "--config", str(config), "--chunk-seconds", "5",
                 "--segment-weight", "0.5"]) == 0
    assert "checkpoint:" in capsys.readouterr().out
    student = load_checkpoint(tmp_path / "student" / "model.pt")
    assert student.classes == list(classes) and student.scheme == "distill"
    assert student.experiment["scheme"]["segment_weight"] == 0.5
    assert student.experiment["scheme"]["teacher"] == str(teacher_path.resolve())
    ckpt = str(tmp_path / "student" / "model.pt")
    test = str(tmp_path / "data" / "test" / "manifest.jsonl")
    assert main(["evaluate", "--checkpoint", ckpt, "--labels", test, "--quiet"]) == 0
    assert "mAP" in capsys.readouterr().out
    audio = sorted((tmp_path / "data" / "test").rglob("*.wav"))[:2]
    assert main(["tag", "--checkpoint", ckpt, *map(str, audio), "--out", str(tmp_path / "tags"), "--quiet"]) == 0
    assert (tmp_path / "tags" / "tags.csv").exists()
    assert main(["export", "--checkpoint", ckpt, "--format", "onnx", "--output", str(tmp_path / "s.onnx")]) == 0
    assert "parity OK" in capsys.readouterr().out
