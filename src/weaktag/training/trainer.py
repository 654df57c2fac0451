"""Lightning's side of a run: the trainer, its callbacks and data loaders, and fitting under
weaktag's stop handling (a SIGTERM or Ctrl-C during the epochs stops at the end of a batch and
raises :class:`weaktag.stopping.Stopped`)."""

from __future__ import annotations

import contextlib
import inspect
import logging
import signal
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader

from ..config import ExperimentConfig
from ..data import FeatureSet, WithUnlabeled
from ..stopping import Stopped
from .module import EpochLog, WeakTagModule
from .sampling import GlobalBatchSampler, ShardSampler

#: Lightning >= 2.6 reads the resumed checkpoint with the weights_only given here; older versions use
#: torch.load's default, and resumable_checkpoint has read the same file with weights_only=True first
_LIGHTNING_SAFE_LOAD = {"weights_only": True} if "weights_only" in inspect.signature(L.Trainer.fit).parameters else {}

#: the loggers whose INFO lines ("GPU available", logger tips) a run without a progress bar hides
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric")


@dataclass(frozen=True)
class FittedRun:
    """What the rest of a run needs from Lightning once the epochs are over."""

    best_checkpoint: str  # the Lightning checkpoint of the best validation mAP
    is_global_zero: bool  # False on the other ranks of a distributed run, which stop there
    world_size: int


@contextlib.contextmanager
def quiet_lightning(quiet: bool) -> Iterator[None]:
    """Lightning's INFO lines hidden while ``quiet`` (noise when runs are driven by a script); the levels
    are set back afterwards, also after an error or a stop."""
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS] if quiet else []
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def batches(features: FeatureSet, batch_size: int, num_workers: int, train_seed: int | None = None,
            unlabeled: FeatureSet | None = None, unlabeled_fraction: float = 0.0) -> DataLoader:
    """Training batches (``train_seed`` given; with ``unlabeled`` clips, that share of each batch) or
    evaluation batches, sharded over the ranks of a distributed run by weaktag's own samplers
    (weaktag.training.sampling), not Lightning's."""
    dataset: FeatureSet | WithUnlabeled = features
    if train_seed is not None:
        sampler = GlobalBatchSampler([c.has_strong for c in features.clips], batch_size, seed=train_seed,
                                     num_unlabeled=0 if unlabeled is None else len(unlabeled),
                                     unlabeled_fraction=unlabeled_fraction)
        if unlabeled is not None:
            dataset = WithUnlabeled(features, unlabeled)
    else:
        sampler = ShardSampler(len(features), batch_size)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=dataset.collate, num_workers=num_workers,
                      persistent_workers=num_workers > 0, pin_memory=torch.cuda.is_available())


def experiment_logger(config: ExperimentConfig, out: Path):
    """Lightning's logger of the run's metrics (``train.logger``) under ``out/logs``; False for none."""
    kind = config.train.logger
    if kind == "none":
        return False
    if kind == "tensorboard":
        return L.pytorch.loggers.TensorBoardLogger(str(out), name="logs")
    if kind == "csv":
        return L.pytorch.loggers.CSVLogger(str(out), name="logs")
    raise ValueError(f"train.logger must be csv, tensorboard or none, not {kind!r}")


@contextlib.contextmanager
def _signals_for_lightning() -> Iterator[None]:
    """SIGTERM's default handler while Lightning trains: Lightning then handles it alone (stops at the end
    of a batch) rather than also calling a handler of the caller's that would raise mid-step. SIGINT is
    restored afterwards (Lightning ignores it once it has caught a Ctrl-C)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)


def _trainer(config: ExperimentConfig, out: Path, callbacks: list[L.Callback]) -> L.Trainer:
    t = config.train
    return L.Trainer(
        max_epochs=t.max_epochs,
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        precision=t.precision,
        accumulate_grad_batches=t.accumulate_grad_batches,
        sync_batchnorm=t.sync_batchnorm,
        use_distributed_sampler=False,  # weaktag's samplers shard the data (training.sampling)
        logger=experiment_logger(config, out),
        callbacks=callbacks,
        enable_progress_bar=t.progress,
        enable_model_summary=False,
        deterministic="warn" if t.deterministic else False,
        benchmark=None if t.deterministic else True,
        default_root_dir=str(out),
        num_sanity_val_steps=0,
    )


def fit(config: ExperimentConfig, module: WeakTagModule, train: FeatureSet, validation: FeatureSet,
        resume_from: Path | None = None, callbacks: Sequence[L.Callback] = (),
        epoch_lines: Callable[[str], None] | None = None, unlabeled: FeatureSet | None = None) -> FittedRun:
    """Run the epochs into ``<output_dir>/checkpoints`` (the best epoch's, and the last one's for
    ``resume_from`` to continue); ``epoch_lines`` receives a line per finished epoch; ``unlabeled`` clips
    (the mean teacher's) fill ``mean_teacher.unlabeled_fraction`` of each training batch."""
    t = config.train
    out = Path(config.output_dir)
    best_cb = L.pytorch.callbacks.ModelCheckpoint(dirpath=str(out / "checkpoints"), monitor="val_mAP", mode="max",
                                                  save_top_k=1, filename="best-{epoch}")
    # every epoch's end, for --resume (Lightning's save_last skips epochs that saved no new best); after
    # best_cb, so that the state it saves knows this epoch's best
    latest_cb = L.pytorch.callbacks.ModelCheckpoint(dirpath=str(out / "checkpoints"), filename="last", save_top_k=1,
                                                    monitor=None, enable_version_counter=False)
    all_callbacks = [best_cb, latest_cb, *callbacks] + ([EpochLog(epoch_lines)] if epoch_lines is not None else [])
    if t.early_stopping_patience:
        all_callbacks.append(L.pytorch.callbacks.EarlyStopping("val_mAP", mode="max",
                                                               patience=t.early_stopping_patience))
    with warnings.catch_warnings():
        # Lightning's hints about DataLoader workers and tiny logging intervals are noise on small CPU runs.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")
        warnings.filterwarnings("ignore", message=".*treespec.*")
        # a frozen backbone's batch norm is in eval mode on purpose (WeakTagNet.train)
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode at the start of training.*")
        trainer = _trainer(config, out, all_callbacks)
        with _signals_for_lightning():
            try:
                trainer.fit(
                    module,
                    batches(train, t.batch_size, t.num_workers, train_seed=t.seed, unlabeled=unlabeled,
                            unlabeled_fraction=config.mean_teacher.unlabeled_fraction),
                    batches(validation, t.batch_size, t.num_workers),
                    ckpt_path=None if resume_from is None else str(resume_from),
                    **_LIGHTNING_SAFE_LOAD,
                )
            except SystemExit:  # Lightning's exit after a SIGTERM (SIGTERMException) or a Ctrl-C (status 1)
                if not (trainer.received_sigterm or trainer.interrupted):
                    raise
                raise Stopped(signal.SIGTERM if trainer.received_sigterm else signal.SIGINT) from None
    return FittedRun(best_cb.best_model_path, trainer.is_global_zero, trainer.world_size)
