"""Training at scale, checked on the CPU: mixed precision, distributed sampling, 2-process DDP against
one process, and resuming a killed run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from helpers import learnable_data, learnable_features
from weaktag.config import load_config
from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet
from weaktag.supervision import SCHEMES, make_scheme
from weaktag.supervision.base import bce, segment_bce
from weaktag.training import train
from weaktag.training.sampling import GlobalBatchSampler, ShardSampler

def _config(out: Path, *overrides: str):
    return load_config(None, ["model.width=0.125", "model.batch_norm=false", "scheme.name=attention", "train.lr=0.003",
                              "train.batch_size=8", "train.max_epochs=3", "train.accelerator=cpu", "train.progress=false",
                              "train.logger=none", "train.event_output=segment", f"output_dir={out}", *overrides])


# ------------------------------------------------------------------------------------------- mixed precision


def test_every_scheme_loss_runs_under_bf16_autocast_in_float32():
    torch.manual_seed(0)
    data = learnable_features(6, 3, strong_every=1)
    batch = data.collate(list(range(6)))
    for name, cls in SCHEMES.items():
        if cls.needs_teacher:
            batch.teacher = torch.rand(6, 3)
        if cls.needs_teacher_segments:
            batch.teacher_segments = torch.rand_like(batch.strong)
        scheme = make_scheme(name)
        # a narrow backbone: on a CPU without native bf16 (AVX2) bf16 convolutions at full width take minutes
        model = WeakTagNet(ModelConfig(3, scheme.uses_attention, BackboneConfig(width=0.125, l7_channels=128),
                                       head=scheme.head_kind(), **scheme.model_options()))
        exact = scheme.loss(model.forward_features(batch.features), batch).total
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model.forward_features(batch.features)
            loss = scheme.loss(out, batch).total
        assert out.segment_probs.dtype == torch.float32 and out.clip_probs.dtype == torch.float32, name
        assert loss.dtype == torch.float32 and torch.isfinite(loss), name
        assert loss.item() == pytest.approx(exact.item(), rel=0.05), name  # bf16 convolutions: ~1% apart
        loss.backward()


def test_segment_loss_from_logits_equals_the_loss_on_probabilities():
    model = WeakTagNet(ModelConfig(3, False))
    batch = learnable_features(4, 4, strong_every=1).collate([0, 1, 2, 3])
    out = model.forward_features(batch.features)
    assert out.segment_logits is not None
    from_logits = segment_bce(out, batch.strong, reduce_dims=(1, 2))
    from_probs = bce(out.segment_probs, batch.strong, reduce_dims=(1, 2))
    torch.testing.assert_close(from_logits, from_probs, rtol=1e-5, atol=1e-6)
    assert torch.sigmoid(out.segment_logits).allclose(out.segment_probs)


def test_a_bf16_mixed_training_run_on_cpu(tmp_path: Path):
    result = train(_config(tmp_path / "bf16", "train.precision=bf16-mixed", "train.max_epochs=2"), data=learnable_data())
    assert np.isfinite(result.best_val_map) and result.best_val_map > 0.5
    assert result.checkpoint.is_file()


# ------------------------------------------------------------------------------------------- sampling


def test_global_batches_are_split_over_ranks_with_their_strong_clips_dealt_evenly():
    has_strong = [i % 4 == 0 for i in range(40)]
    one = GlobalBatchSampler(has_strong, batch_size=8, seed=5, rank=0, world_size=1)
    ranks = [GlobalBatchSampler(has_strong, batch_size=4, seed=5, rank=r, world_size=2) for r in range(2)]
    for epoch in (0, 3):
        for s in (one, *ranks):
            s.set_epoch(epoch)
        single = list(one)
        split = [list(r) for r in ranks]
        assert len(single) == len(split[0]) == len(split[1]) == len(one) == len(ranks[0]) == 5
        for b, batch in enumerate(single):  # the same global batch, whatever the number of ranks
            assert sorted(batch) == sorted(split[0][b] + split[1][b])
            counts = [sum(has_strong[i] for i in part[b]) for part in split]
            assert abs(counts[0] - counts[1]) <= 1
        seen = sorted(i for batch in single for i in batch)
        assert seen == list(range(40))  # every clip once per epoch
    one.set_epoch(0)
    first = list(one)
    one.set_epoch(1)
    assert list(one) != first  # a new order every epoch ...
    one.set_epoch(0)
    assert list(one) == first  # ... that depends only on (seed, epoch): resumable


def test_a_last_global_batch_smaller_than_the_ranks_is_dropped():
    samplers = [GlobalBatchSampler([False] * 9, batch_size=4, seed=0, rank=r, world_size=2) for r in range(2)]
    batches = [list(s) for s in samplers]
    assert len(batches[0]) == len(batches[1]) == len(samplers[0]) == 1  # 8 clips, then 1 < 2 ranks: dropped
    samplers = [GlobalBatchSampler([False] * 10, batch_size=4, seed=0, rank=r, world_size=2) for r in range(2)]
    assert [len(list(s)) for s in samplers] == [2, 2] and len(samplers[0]) == 2  # 8, then 2: one each


def test_validation_shards_cover_every_clip_once():
    assert [i for batch in ShardSampler(10, 4) for i in batch] == list(range(10))  # one process: all, in order


# ------------------------------------------------------------------------------------------- distributed


def _synth_config(tmp: Path, name: str, *train: str) -> Path:
    from weaktag.synth import SynthConfig, synthesize_splits

    data = tmp / "data"
    if not data.exists():
        synthesize_splits(data, {"train": 32, "validation": 16}, SynthConfig(seed=4, clip_seconds=10.0))
    values: dict = {"data": {s: str(data / s / "manifest.jsonl") for s in ("train", "validation")},
                    "model": {"width": 0.125, "batch_norm": False},
                    "scheme": {"name": "attention"},
                    "train": {"lr": 0.003, "max_epochs": 2, "seed": 0, "progress": False, "accelerator": "cpu",
                              "logger": "none", "event_output": "segment"},
                    "output_dir": str(tmp / name)}
    for item in train:
        key, _, value = item.partition("=")
        values["train"][key] = yaml.safe_load(value)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "weaktag.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def test_two_process_ddp_gives_the_validation_metrics_of_one_process(tmp_path: Path):
    # batch 8 on one process = batch 4 on each of 2 (the same global batches, gradients averaged over ranks)
    single = _synth_config(tmp_path, "single", "batch_size=8", "devices=1")
    ddp = _synth_config(tmp_path, "ddp", "batch_size=4", "devices=2", "strategy=ddp")
    for config in (single, ddp):
        done = _run_cli("train", "--config", str(config))
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.count("checkpoint:") == 1  # rank 0 reports, rank 1 stays quiet
    saved = [torch.load(tmp_path / name / "model.pt", weights_only=True) for name in ("single", "ddp")]
    metrics = [s["metrics"]["validation"] for s in saved]
    first, second = saved[0]["state_dict"], saved[1]["state_dict"]
    # the same training up to float summation order, which Adam (a step of about lr x the gradient's sign)
    # can turn into part of a step on a weight whose gradient is near 0: compare the whole network
    a = torch.cat([first[k].flatten() for k in first])
    b = torch.cat([second[k].flatten() for k in first])
    assert float((a - b).norm() / a.norm()) < 1e-3
    assert float((a - b).abs().max()) < 0.01  # a few steps of lr = 0.003 at most
    assert metrics[0]["best_epoch"] == metrics[1]["best_epoch"]
    assert metrics[1]["mAP"] == pytest.approx(metrics[0]["mAP"], abs=1e-4)
    assert metrics[1]["AUC"] == pytest.approx(metrics[0]["AUC"], abs=1e-4)
    summaries = [json.loads((tmp_path / n / "summary.json").read_text()) for n in ("single", "ddp")]
    assert [s["processes"] for s in summaries] == [1, 2]
    assert summaries[1]["best_val_map"] == pytest.approx(summaries[0]["best_val_map"], abs=1e-4)


# ------------------------------------------------------------------------------------------- resume


class _Killed(RuntimeError):
    pass


class _KillMidEpoch:
    """A Lightning callback that stops the run in the middle of ``epoch``, as a kill would."""

    def __new__(cls, epoch: int, batch: int):
        import lightning as L

        class Kill(L.Callback):
            def on_train_batch_start(self, trainer, module, batch_data, batch_idx):
                if trainer.current_epoch == epoch and batch_idx == batch:
                    raise _Killed(f"killed in epoch {epoch}, batch {batch}")

        return Kill()


def test_a_resumed_run_ends_with_the_metrics_of_an_uninterrupted_one(tmp_path: Path):
    data = learnable_data()
    extra = ("train.max_epochs=4", "augment.mixup_alpha=0.4", "model.dropout=0.2", "model.neck_channels=16")
    whole = train(_config(tmp_path / "whole", *extra), data=data)
    config = _config(tmp_path / "killed", *extra)
    with pytest.raises(_Killed):
        train(config, data=data, callbacks=[_KillMidEpoch(epoch=2, batch=2)])
    assert (tmp_path / "killed" / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "killed" / "model.pt").exists()
    resumed = train(config, data=data, resume=True)
    assert resumed.best_epoch == whole.best_epoch
    assert resumed.best_val_map == pytest.approx(whole.best_val_map, abs=1e-6)
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_resume_refuses_a_missing_checkpoint_or_other_settings(tmp_path: Path):
    data = learnable_data(16, 8)
    with pytest.raises(ValueError, match="no checkpoint to resume from"):
        train(_config(tmp_path / "none"), data=data, resume=True)
    train(_config(tmp_path / "run", "train.max_epochs=1"), data=data)
    with pytest.raises(ValueError, match=r"other settings \(train.lr\)"):
        train(_config(tmp_path / "run", "train.lr=0.01"), data=data, resume=True)
    more = train(_config(tmp_path / "run", "train.max_epochs=2"), data=data, resume=True)  # more epochs: allowed
    assert more.best_epoch in (1, 2)  # 1-based
