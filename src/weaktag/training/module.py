"""The Lightning module: the network, its scheme's loss, Adam, and validation mAP over all ranks.

Random draws (augmentation, dropout) are reseeded at every epoch from (seed, epoch, rank), so that
a run resumed from an epoch's checkpoint continues exactly as the uninterrupted run would have.

A mean teacher (:mod:`weaktag.supervision.mean_teacher`; also the one ``attention-self-ext``'s
``teacher_decay`` makes its pseudo-labels with) is updated after every optimiser step and saved in
every Lightning checkpoint, so ``--resume`` continues with it; the exported model is the student.
Batches with unlabelled clips give the scheme's loss their labelled clips only, and its
``unlabeled_loss`` (where the scheme has one) the unlabelled clips with the teacher's outputs on them; the
consistency loss reads them all.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable

import lightning as L
import numpy as np
import torch

from ..batch import Batch
from ..metrics.tagging import tagging_metrics
from ..models import ModelOutput, WeakTagNet
from ..supervision import LossTerms, TrainingScheme
from ..supervision.diagnostics import SelfSupervisionStats
from ..supervision.mean_teacher import (MeanTeacherConfig, consistency_loss, ema_decay_at, ema_update, output_rows,
                                        sigmoid_rampup)
from .augment import Augmenter


@dataclass(frozen=True)
class Optimisation:
    """Adam (AdamW with weight decay) and its learning-rate schedule, stepped once per epoch."""

    lr: float
    weight_decay: float = 0.0
    schedule: str = "constant"  # "cosine": from lr down to 0 at max_epochs, after the warm-up
    warmup_epochs: int = 0  # linear ramp from lr / (warmup + 1) up to lr
    max_epochs: int = 1

    def factor(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (0-based) as a fraction of ``lr``."""
        if epoch < self.warmup_epochs:
            return (epoch + 1) / (self.warmup_epochs + 1)
        if self.schedule == "cosine":
            span = max(1, self.max_epochs - self.warmup_epochs)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (epoch - self.warmup_epochs) / span)))
        return 1.0


class WeakTagModule(L.LightningModule):
    """Lightning wrapper: the network, its scheme's loss, Adam, and validation mAP."""

    def __init__(self, model: WeakTagNet, scheme: TrainingScheme, lr: float | Optimisation, classes: list[str],
                 augmenter: Augmenter | None = None, level: str = "logmel", seed: int | None = None,
                 mean_teacher: MeanTeacherConfig | None = None) -> None:
        super().__init__()
        # None or weight 0: no consistency loss (a scheme's teacher_decay may still keep a teacher)
        self.mean_teacher = mean_teacher if mean_teacher is not None and mean_teacher.enabled else None
        self.seed = seed  # None: no reseeding per epoch
        self.experiment: dict | None = None  # the run's settings, saved in checkpoints for resumption
        self.model = model
        self.level = level  # what the batches hold: log-mel, or a frozen backbone's outputs
        self.augmenter = augmenter if augmenter is not None and augmenter.enabled else None
        self.classes = classes
        self.scheme = scheme
        self.optimisation = lr if isinstance(lr, Optimisation) else Optimisation(float(lr))
        self._val_scores: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []
        self._val_teacher_scores: list[torch.Tensor] = []
        self._val_stats: SelfSupervisionStats | None = None
        #: one entry per validation epoch with strongly labelled clips: {"epoch" (1-based), **diagnostic means}
        self.diagnostics: list[dict] = []
        self._teacher_holder: list[torch.nn.Module] = []  # a list, so the teacher is not a registered submodule

    @property
    def teacher(self) -> torch.nn.Module | None:
        """The mean teacher (an exponential moving average of the network) of schemes that use one."""
        return self._teacher_holder[0] if self._teacher_holder else None

    @property
    def uses_teacher(self) -> bool:
        return self.mean_teacher is not None or self.scheme.teacher_decay > 0

    def teacher_decay(self, update: int) -> float:
        """The EMA decay of the ``update``-th teacher update (1-based): the mean teacher's (with its warm-up),
        else the scheme's fixed one."""
        if self.mean_teacher is not None:
            return ema_decay_at(update, self.mean_teacher.ema_decay)
        return self.scheme.teacher_decay

    def on_train_epoch_start(self) -> None:
        # Lightning's fit never calls train(): it trains in the modes the modules were built in, and after
        # validation it sets back each submodule's captured ``training`` flag. WeakTagNet.train is what keeps
        # a frozen backbone's batch norm in eval mode (its pretrained running statistics), so call it here,
        # each epoch, before validation captures the modes.
        self.model.train()
        self.scheme.start_epoch(self.current_epoch)
        if self.uses_teacher and self.teacher is None:
            self._teacher_holder.append(_frozen_copy(self.model))
        if self.teacher is not None:
            self.teacher.to(self.device)  # restored from a checkpoint before the network moved

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # at the first batch rather than the epoch start: a fresh and a resumed run draw a different number
        # of numbers in between (Lightning's data-loader setup)
        if batch_idx == 0 and self.seed is not None:
            torch.manual_seed(epoch_seed(self.seed, self.current_epoch, self.global_rank))

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        self.update_teacher()

    def update_teacher(self) -> None:
        """One EMA step of the teacher towards the network (none without a teacher)."""
        if self.teacher is not None:  # global_step counts the steps before this one until optimizer_step returns
            ema_update(self.teacher, self.model, self.teacher_decay(int(self.global_step) + 1))

    def _augment(self, batch: Batch) -> Batch:
        """The augmented batch; labelled and unlabelled clips apart (mixup must not give an unlabelled clip's
        sound a labelled clip's labels)."""
        if batch.all_labeled:
            return self.augmenter(batch)
        return Batch.join(self.augmenter(batch.rows(batch.labeled)), self.augmenter(batch.rows(~batch.labeled)))

    def consistency_weight(self, batch_idx: int) -> float:
        """The consistency loss's weight at this batch: the ramp-up over fractional epochs."""
        mt = self.mean_teacher
        per_epoch = max(1, int(self.trainer.num_training_batches)) if self._trainer is not None else 1
        return mt.weight * sigmoid_rampup(self.current_epoch + batch_idx / per_epoch, mt.rampup_epochs)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        if self.augmenter is not None:
            batch = self._augment(batch)
        out = self.model.forward_level(batch.features, self.level)
        teacher_out = None
        if self.teacher is not None:
            # clean targets (no dropout), or the teacher perturbed by its own dropout masks when asked
            self.teacher.train(self.mean_teacher is not None and self.mean_teacher.teacher_dropout)
            with torch.no_grad():
                teacher_out = self.teacher.forward_level(batch.features, self.level)
        if batch.all_labeled:
            terms = self.scheme.loss(out, batch, teacher=teacher_out)
        else:  # the scheme's loss reads labels: the labelled clips only
            rows = batch.labeled
            terms = self.scheme.loss(output_rows(out, rows), batch.labeled_part(),
                                     teacher=None if teacher_out is None else output_rows(teacher_out, rows))
            if teacher_out is not None:
                terms = self._with_unlabeled_loss(terms, out, batch, teacher_out)
        total = terms.total
        if self.mean_teacher is not None:
            consistency = consistency_loss(out, teacher_out)
            total = total + self.consistency_weight(batch_idx) * consistency
            terms.parts["consistency"] = consistency
        self.log("train_loss", total, prog_bar=True, batch_size=len(batch))
        for name, value in terms.parts.items():
            self.log(f"train_{name}", value, batch_size=len(batch))
        return total

    def _with_unlabeled_loss(self, terms: LossTerms, out: ModelOutput, batch: Batch, teacher_out: ModelOutput
                             ) -> LossTerms:
        """``terms`` plus the scheme's loss on the batch's unlabelled clips, where it has one."""
        rows = ~batch.labeled
        extra = self.scheme.unlabeled_loss(output_rows(out, rows), batch.rows(rows), output_rows(teacher_out, rows))
        if extra is None:
            return terms
        return LossTerms(terms.total + extra.total, {**terms.parts, **extra.parts})

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        out = self.model.forward_level(batch.features, self.level)
        self._val_scores.append(self.scheme.clip_scores(out).detach().float())
        self._val_targets.append(batch.weak.detach().float())
        if self.mean_teacher is not None and self.teacher is not None:  # its mAP is logged, the student's chosen
            self.teacher.eval()
            self._val_teacher_scores.append(
                self.scheme.clip_scores(self.teacher.forward_level(batch.features, self.level)).detach().float())
        if out.attention is not None:  # every rank makes the stats, so that they can be gathered
            if self._val_stats is None:
                self._val_stats = SelfSupervisionStats(batch.weak.shape[1])
            pseudo = self.scheme.pseudo_labels(out, batch) if bool(batch.has_strong.any()) else None
            if pseudo is not None:
                self._val_stats.update(pseudo, batch.strong, out.attention, batch.weak, batch.has_strong)

    def on_validation_epoch_end(self) -> None:
        classes = len(self.classes)
        scores = torch.cat(self._val_scores) if self._val_scores else torch.zeros((0, classes), device=self.device)
        targets = torch.cat(self._val_targets) if self._val_targets else torch.zeros((0, classes), device=self.device)
        self._val_scores.clear()
        self._val_targets.clear()
        teacher_scores = None
        if self.mean_teacher is not None and self.teacher is not None:  # on every rank, also one without clips
            teacher_scores = torch.cat(self._val_teacher_scores) if self._val_teacher_scores else torch.zeros_like(scores)
        self._val_teacher_scores.clear()
        if self.trainer.world_size > 1:  # every rank must see all of validation for one mAP
            scores, targets = self._gather_rows(scores), self._gather_rows(targets)
            teacher_scores = None if teacher_scores is None else self._gather_rows(teacher_scores)
        value = self._mean_ap(targets, scores)
        self.log("val_mAP", value, prog_bar=True, sync_dist=False)
        teacher_map = None
        if teacher_scores is not None:
            teacher_map = self._mean_ap(targets, teacher_scores)
            self.log("val_mAP_teacher", teacher_map, sync_dist=False)
        self._end_diagnostics(value, teacher_map)

    def _mean_ap(self, targets: torch.Tensor, scores: torch.Tensor) -> float:
        m = tagging_metrics(targets.cpu().numpy(), scores.cpu().numpy(), self.classes)
        return m.mAP if np.isfinite(m.mAP) else 0.0

    def _gather_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Every rank's rows, in rank order. Ranks may hold different numbers of validation clips (the
        shards are not padded, so no clip counts twice): pad to the longest, gather, drop the padding."""
        counts = self.all_gather(torch.tensor([rows.shape[0]], device=self.device)).reshape(-1)
        longest = int(counts.max())
        padded = rows.new_zeros((longest, *rows.shape[1:]))
        padded[: rows.shape[0]] = rows
        gathered = self.all_gather(padded)
        return torch.cat([gathered[rank, : int(count)] for rank, count in enumerate(counts.tolist())])

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # what a resumed run needs beyond the weights and optimiser: past diagnostics, the mean teacher
        checkpoint["weaktag"] = {"diagnostics": list(self.diagnostics), "experiment": self.experiment,
                                 "teacher": None if self.teacher is None else self.teacher.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("weaktag") or {}
        self.diagnostics = list(saved.get("diagnostics", []))
        if saved.get("teacher") is not None:
            teacher = _frozen_copy(self.model)
            teacher.load_state_dict(saved["teacher"])
            self._teacher_holder[:] = [teacher]

    def _end_diagnostics(self, val_map: float, teacher_map: float | None = None) -> None:
        stats, self._val_stats = self._val_stats, None
        if stats is None:
            return
        if self.trainer.world_size > 1:
            gathered = self.all_gather(stats.sums.to(self.device, torch.float32))
            stats.sums.zero_()
            stats.merge(gathered.reshape(-1, *stats.sums.shape).sum(0).double().cpu())
        if stats.empty:
            return
        summary = stats.summary()
        teacher = {} if teacher_map is None else {"val_mAP_teacher": float(teacher_map)}  # the mean teacher's
        self.diagnostics.append({"epoch": int(self.current_epoch) + 1, "val_mAP": float(val_map), **teacher, **summary})
        for name in ("pseudo_density", "precision", "recall", "attention_in_events"):
            if np.isfinite(summary[name]):
                self.log(f"val_{name}", summary[name], sync_dist=False)

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        o = self.optimisation
        if o.weight_decay:
            optimizer: torch.optim.Optimizer = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
        else:
            optimizer = torch.optim.Adam(params, lr=o.lr)
        if o.schedule == "constant" and not o.warmup_epochs:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, o.factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


def _frozen_copy(model: WeakTagNet) -> WeakTagNet:
    """A copy of ``model`` that no optimiser trains (a teacher)."""
    teacher = copy.deepcopy(model)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of torch's generator for one epoch of one rank (ranks draw different augmentations)."""
    return (seed * 1_000_003 + epoch * 1_009 + rank) % (2**63 - 1)


class EpochLog(L.Callback):
    """One line per finished epoch (training loss, validation mAP, time) for runs without a progress bar.

    Long CPU runs otherwise print nothing for minutes; ``say`` receives the line.
    """

    def __init__(self, say: Callable[[str], None], prefix: str = "") -> None:
        self.say = say
        self.prefix = prefix
        self._started = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # validation has run by now (it runs at the end of each training epoch), so val_mAP is fresh
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        loss, val = metrics.get("train_loss"), metrics.get("val_mAP")
        parts = [f"{self.prefix}epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        if loss is not None:
            parts.append(f"train loss {float(loss):.4f}")
        if val is not None:
            parts.append(f"validation mAP {float(val):.3f}")
        parts.append(f"{time.perf_counter() - self._started:.0f} s")
        self.say(", ".join(parts))
