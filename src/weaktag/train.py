"""The training loop (Lightning): one scheme, one seed, best checkpoint chosen by validation mAP.

``train(config)`` reads the labels, computes features once, trains, reloads the best
epoch, chooses per-class tag thresholds on validation, writes ``<output_dir>/model.pt``
(the weaktag checkpoint) and ``<output_dir>/summary.json``, and returns a
:class:`TrainResult`. Clips that cannot be read are skipped and counted, never fatal.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from .checkpoint import save_checkpoint
from .config import ExperimentConfig
from .data import FeatureSet, build_feature_set
from .evaluate.event_eval import choose_event_settings, event_metrics_for
from .evaluate.tagging import choose_thresholds, tagging_metrics
from .labels import Manifest, read_labels
from .models import ModelConfig, WeakTagNet
from .predict import predict_features
from .supervision import Batch, TrainingScheme, make_scheme



@dataclass
class PreparedData:
    """Features for train / validation / (test), computed once and reusable across runs."""

    classes: list[str]
    train: FeatureSet
    validation: FeatureSet
    test: FeatureSet | None = None

    @property
    def skipped(self) -> dict[str, list[dict]]:
        out = {"train": self.train.skipped, "validation": self.validation.skipped}
        if self.test is not None:
            out["test"] = self.test.skipped
        return {k: [asdict(s) for s in v] for k, v in out.items()}


@dataclass
class TrainResult:
    checkpoint: Path
    best_epoch: int
    best_val_map: float
    test_map: float | None
    wall_seconds: float
    skipped: dict[str, list[dict]] = field(default_factory=dict)


def _read(path: str, audio_dir: str, classes: list[str] | None) -> Manifest:
    kwargs = {"audio_dir": audio_dir} if audio_dir else {}
    manifest = read_labels(path, **kwargs)
    return manifest.with_classes(classes) if classes else manifest


def prepare_data(config: ExperimentConfig, progress: bool = False) -> PreparedData:
    """Read the label files named in ``config.data`` and compute their features."""
    d = config.data
    if not d.train or not d.validation:
        raise ValueError("config.data.train and config.data.validation must name label files")
    train_manifest = _read(d.train, d.audio_dir, d.classes or None)
    classes = list(d.classes) if d.classes else list(train_manifest.classes)
    validation = _read(d.validation, d.audio_dir, classes)
    test = _read(d.test, d.audio_dir, classes) if d.test else None
    return PreparedData(
        classes=classes,
        train=build_feature_set(train_manifest, classes, progress=progress),
        validation=build_feature_set(validation, classes, progress=progress),
        test=build_feature_set(test, classes, progress=progress) if test is not None else None,
    )


class WeakTagModule(L.LightningModule):
    """Lightning wrapper: the network, its scheme's loss, Adam, and validation mAP."""

    def __init__(self, model: WeakTagNet, scheme: TrainingScheme, lr: float, classes: list[str]) -> None:
        super().__init__()
        self.model = model
        self.classes = classes
        self.scheme = scheme
        self.lr = lr
        self._val_scores: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        out = self.model.forward_features(batch.features)
        terms = self.scheme.loss(out, batch)
        self.log("train_loss", terms.total, prog_bar=True, batch_size=len(batch))
        for name, value in terms.parts.items():
            self.log(f"train_{name}", value, batch_size=len(batch))
        return terms.total

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        out = self.model.forward_features(batch.features)
        self._val_scores.append(self.scheme.clip_scores(out).detach().float())
        self._val_targets.append(batch.weak.detach().float())

    def on_validation_epoch_end(self) -> None:
        scores = torch.cat(self._val_scores)
        targets = torch.cat(self._val_targets)
        self._val_scores.clear()
        self._val_targets.clear()
        if self.trainer.world_size > 1:  # every rank must see all of validation for one mAP
            scores = self.all_gather(scores).reshape(-1, scores.shape[-1])
            targets = self.all_gather(targets).reshape(-1, targets.shape[-1])
        m = tagging_metrics(targets.cpu().numpy(), scores.cpu().numpy(), self.classes)
        value = m.mAP if np.isfinite(m.mAP) else 0.0
        self.log("val_mAP", value, prog_bar=True, sync_dist=False)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.lr)


def build_model(config: ExperimentConfig, num_classes: int, scheme: TrainingScheme) -> WeakTagNet:
    m = config.model
    model = WeakTagNet(ModelConfig(num_classes, scheme.uses_attention, m.width, m.l7_channels, m.freq_pool, m.batch_norm))
    if m.init:
        from .models.transfer import initialise_from

        initialise_from(model, m.init)
    if m.freeze:
        convs = [layer for layer in model.backbone.features if isinstance(layer, torch.nn.Conv2d)]
        for layer in convs[: m.freeze]:
            for p in layer.parameters():
                p.requires_grad_(False)
    return model


def _loader(features: FeatureSet, batch_size: int, shuffle: bool, num_workers: int) -> DataLoader:
    return DataLoader(features, batch_size=batch_size, shuffle=shuffle, collate_fn=features.collate,
                      num_workers=num_workers, persistent_workers=num_workers > 0)


def _logger(config: ExperimentConfig, out: Path):
    kind = config.train.logger
    if kind == "none":
        return False
    if kind == "tensorboard":
        return L.pytorch.loggers.TensorBoardLogger(str(out), name="logs")
    if kind == "csv":
        return L.pytorch.loggers.CSVLogger(str(out), name="logs")
    raise ValueError(f"train.logger must be csv, tensorboard or none, not {kind!r}")


def train(config: ExperimentConfig, data: PreparedData | None = None) -> TrainResult:
    """Train one model as configured; see the module docstring for what is written."""
    started = time.time()
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    scheme = make_scheme(config.scheme.name, config.scheme.alpha, config.scheme.attention_target)
    data = data or prepare_data(config, progress=config.train.progress)
    if len(data.train) == 0:
        raise ValueError(f"no usable training clips in {config.data.train} (all {len(data.train.skipped)} skipped)")
    if len(data.validation) == 0:
        raise ValueError(f"no usable validation clips in {config.data.validation}")
    if scheme.needs_strong and not any(c.has_strong for c in data.train.clips):
        raise ValueError(f"scheme {scheme.name!r} needs strong labels (onset/offset), and no training clip in "
                         f"{config.data.train} has them")

    if not config.train.progress:
        # "GPU available", logger tips and the like: noise when runs are driven by a script.
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
        logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    L.seed_everything(config.train.seed, workers=True, verbose=False)
    model = build_model(config, len(data.classes), scheme)
    module = WeakTagModule(model, scheme, config.train.lr, data.classes)
    ckpt_cb = L.pytorch.callbacks.ModelCheckpoint(dirpath=str(out / "checkpoints"), monitor="val_mAP", mode="max",
                                                  save_top_k=1, filename="best-{epoch}", save_last=True)
    with warnings.catch_warnings():
        # Lightning's hints about DataLoader workers and tiny logging intervals are noise on small CPU runs.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")
        warnings.filterwarnings("ignore", message=".*treespec.*")
        trainer = L.Trainer(
            max_epochs=config.train.max_epochs,
            accelerator=config.train.accelerator,
            devices=config.train.devices,
            strategy=config.train.strategy,
            precision=config.train.precision,
            logger=_logger(config, out),
            callbacks=[ckpt_cb],
            enable_progress_bar=config.train.progress,
            enable_model_summary=False,
            deterministic="warn",
            default_root_dir=str(out),
            num_sanity_val_steps=0,
        )
        trainer.fit(
            module,
            _loader(data.train, config.train.batch_size, True, config.train.num_workers),
            _loader(data.validation, config.train.batch_size, False, config.train.num_workers),
        )
    if not trainer.is_global_zero:
        return TrainResult(Path(), -1, float("nan"), None, time.time() - started)

    best = torch.load(ckpt_cb.best_model_path, map_location="cpu", weights_only=False)
    module.load_state_dict(best["state_dict"])
    model = module.model.cpu().eval()
    best_epoch = int(best["epoch"])
    val_pred = predict_features(model, data.validation)
    val_metrics = tagging_metrics(data.validation.weak, val_pred.clip_probs, data.classes)
    thresholds = choose_thresholds(data.validation.weak, val_pred.clip_probs)
    event_settings = choose_event_settings(data.validation, val_pred)
    metrics: dict = {"validation": {"mAP": val_metrics.mAP, "AUC": val_metrics.AUC, "best_epoch": best_epoch}}
    test_map = None
    if data.test is not None and len(data.test):
        test_pred = predict_features(model, data.test)
        test_metrics = tagging_metrics(data.test.weak, test_pred.clip_probs, data.classes, thresholds=thresholds)
        test_map = float(test_metrics.mAP)
        metrics["test"] = {"mAP": test_metrics.mAP, "AUC": test_metrics.AUC}
        if any(c.has_strong for c in data.test.clips):
            metrics["test"]["events"] = event_metrics_for(event_settings, data.test, test_pred).to_dict()
    checkpoint = save_checkpoint(out / "model.pt", model, data.classes, scheme.name, config.to_dict(),
                                 tag_thresholds=thresholds, events=event_settings, metrics=metrics)
    result = TrainResult(checkpoint, best_epoch, float(val_metrics.mAP), test_map, time.time() - started, data.skipped)
    summary = {**asdict(result), "checkpoint": str(checkpoint), "scheme": scheme.name, "seed": config.train.seed,
               "skipped_counts": {k: len(v) for k, v in data.skipped.items()}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    return result
