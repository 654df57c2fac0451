"""One training run (Lightning): one scheme, one seed, best checkpoint chosen by validation mAP.

``train(config)`` reads the labels, computes features once, trains, reloads the best
epoch, chooses per-class tag thresholds and event settings on validation, writes
``<output_dir>/model.pt`` (the weaktag checkpoint) and ``<output_dir>/summary.json``, and
returns a :class:`TrainResult` that also carries the model and its test-set evaluation (so
``compare`` never reloads or re-predicts). Clips that cannot be read are skipped and counted,
never fatal.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import shutil
import signal
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from ..checkpoint import Checkpoint, save_checkpoint
from ..config import SPLITS, ExperimentConfig, TrainSection
from ..data import FeatureSet, build_feature_set, no_usable_clip_reason
from ..files import write_json
from ..stopping import Stopped
from ..labels import Manifest, hold_out, read_labels
from ..labels.summary import report_labels
from ..metrics.tagging import TaggingMetrics, choose_thresholds, tagging_metrics
from ..models import ModelConfig, WeakTagNet
from ..models.transfer import initialise_from, load_weights_file
from ..postprocess import EventSettings
from ..supervision import TrainingScheme, class_weights, make_scheme
from .calibration import choose_event_output, choose_event_settings, choose_operating_point, event_metrics_for
from .augment import Augmenter
from .module import EpochLog, Optimisation, WeakTagModule
from .predict import Predictions, predict_features, predict_recordings
from .sampling import GlobalBatchSampler, ShardSampler

#: what a run writes into its output_dir: what ``overwrite`` clears, and nothing else there
RUN_OUTPUTS = ("model.pt", "summary.json", "diagnostics.json", "checkpoints", "logs")


def stopped_run(exc: BaseException, output_dir: str | Path) -> Stopped:
    """The stop ``exc`` (Ctrl-C, SIGTERM) of a run into ``output_dir``, saying how to continue it."""
    name = Stopped.of(exc).signal_name
    last = Path(output_dir) / "checkpoints" / "last.ckpt"
    if last.is_file():
        return Stopped.of(exc, f"stopped by {name}; the last checkpoint is {last} (saved after every epoch): run the "
                          "same command with --resume to continue")
    return Stopped.of(exc, f"stopped by {name} before the first epoch ended (nothing to resume): run the same command "
                      "again")


@dataclass
class PreparedData:
    """Manifests and features for train / validation / (test), computed once and reusable across runs."""

    classes: list[str]
    train: FeatureSet
    validation: FeatureSet
    test: FeatureSet | None = None
    manifests: dict[str, Manifest] = field(default_factory=dict)

    @property
    def skipped(self) -> dict[str, list[dict]]:
        out = {"train": self.train.skipped, "validation": self.validation.skipped}
        if self.test is not None:
            out["test"] = self.test.skipped
        return {k: [asdict(s) for s in v] for k, v in out.items()}


@dataclass
class TestEvaluation:
    """The best epoch's predictions and metrics on the test set (validation thresholds)."""

    predictions: Predictions
    tagging: TaggingMetrics
    events: dict | None = None  # EventMetrics.to_dict() when the test labels are strong


@dataclass
class TrainResult:
    checkpoint: Path
    best_epoch: int
    best_val_map: float
    test_map: float | None
    wall_seconds: float
    skipped: dict[str, list[dict]] = field(default_factory=dict)
    model: WeakTagNet | None = None  # the best epoch's network, on the CPU, in eval mode
    tag_thresholds: np.ndarray | None = None
    event_settings: EventSettings | None = None
    test: TestEvaluation | None = None
    # self-supervision diagnostics per validation epoch (weaktag.supervision.diagnostics); empty without
    # attention or strongly labelled validation clips
    diagnostics: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return {"checkpoint": str(self.checkpoint), "best_epoch": self.best_epoch, "best_val_map": self.best_val_map,
                "test_map": self.test_map, "wall_seconds": self.wall_seconds, "skipped": self.skipped}


def read_manifests(config: ExperimentConfig) -> tuple[list[str], dict[str, Manifest]]:
    """The classes and the manifest of every split named in ``config.data`` (read once per run)."""
    d = config.data
    if not d.train or not (d.validation or d.validation_fraction > 0):
        raise ValueError("config.data.train and config.data.validation must name label files "
                         "(or data.validation_fraction > 0 hold validation clips out of data.train)")
    manifests: dict[str, Manifest] = {}
    classes: list[str] | None = list(d.classes) or None
    classes_from = "data.classes" if classes else f"the training labels {d.train}"
    for split in SPLITS:
        path = getattr(d, split)
        if not path:
            continue
        # with the class list known, the reader names the file and line of a label outside it
        manifest = read_labels(path, audio_dir=d.audio_dir_for(split), classes=classes, classes_from=classes_from,
                               class_labels_indices=d.class_labels_indices)
        if classes is None:  # the training set's labels define the classes
            classes = list(manifest.classes)
        manifests[split] = manifest
    if d.validation_fraction > 0:  # after reading: the whole training list defines the classes
        try:
            train, validation = hold_out(manifests.pop("train"), d.validation_fraction, d.split_seed)
        except ValueError as exc:  # too few clips or recordings in the training list
            raise ValueError(f"data.validation_fraction: {d.train}: {exc}") from None
        manifests = {"train": train, "validation": validation, **manifests}
    return list(classes or []), manifests


def prepare_data(config: ExperimentConfig, progress: bool = False,
                 manifests: tuple[list[str], dict[str, Manifest]] | None = None) -> PreparedData:
    """Read the label files named in ``config.data`` (or use ``manifests``) and compute their features
    on the configured backbone's front end."""
    classes, by_split = manifests or read_manifests(config)
    grid = config.model.grid
    features = {split: build_feature_set(m, classes, progress=progress, grid=grid, num_workers=config.train.num_workers)
                for split, m in by_split.items()}
    return PreparedData(classes, features["train"], features["validation"], features.get("test"), by_split)


def build_model(config: ExperimentConfig, num_classes: int, scheme: TrainingScheme) -> WeakTagNet:
    m = config.model
    model = WeakTagNet(ModelConfig(num_classes, scheme.uses_attention, m.backbone_config(), m.neck_config(),
                                   head=scheme.head_kind(), **scheme.model_options()))
    if m.init:
        initialise_from(model, m.init)
    if m.freeze:
        model.backbone.freeze(m.freeze)
    return model


def backbone_is_frozen(model: WeakTagNet) -> bool:
    return not any(p.requires_grad for p in model.backbone.parameters())


@torch.no_grad()
def embed_frozen(model: WeakTagNet, features: FeatureSet, batch_size: int = 32, progress: bool = False,
                 split: str = "", report: Callable[[str], None] | None = None) -> FeatureSet:
    """The frozen backbone's outputs for every clip (``level="backbone"``): the head sees exactly these.

    This can take minutes before the first epoch: a bar on stderr with ``progress``, else a few lines
    ("computing backbone features (train): 120/440 clips") to ``report`` when given."""
    from tqdm import tqdm

    was_training = model.training
    model.eval()
    what = f"backbone features{f' ({split})' if split else ''}"
    bar = tqdm(total=len(features), desc=what, unit="clip", disable=not progress)
    every = max(batch_size, -(-len(features) // 4 // batch_size) * batch_size)  # about four lines a split
    parts = []
    for start in range(0, len(features), batch_size):
        parts.append(model.backbone(features.features[start : start + batch_size]))
        done = min(start + batch_size, len(features))
        bar.update(done - start)
        if report is not None and not progress and (done % every == 0 or done == len(features)):
            report(f"computing {what}: {done}/{len(features)} clips")
    bar.close()
    model.train(was_training)
    embedded = torch.cat(parts) if parts else torch.zeros((0, model.backbone.out_channels, 0))
    return replace(features, features=embedded, level="backbone")


def embed_prepared(model: WeakTagNet, data: PreparedData, progress: bool = False,
                   report: Callable[[str], None] | None = None) -> PreparedData:
    def embed(split: str, features: FeatureSet) -> FeatureSet:
        return embed_frozen(model, features, progress=progress, split=split, report=report)

    return PreparedData(data.classes, embed("train", data.train), embed("validation", data.validation),
                        None if data.test is None else embed("test", data.test), data.manifests)


def seed_independent_frozen_backbone(config: ExperimentConfig) -> bool:
    """True when every trial's frozen backbone is the same network whatever its seed (packaged or given
    weights), so its outputs can be computed once for all of a comparison's trials."""
    from ..models import backbone_class

    m = config.model
    weights_fixed = bool(m.init) or (backbone_class(m.backbone).packaged_weights and m.pretrained)
    model = build_model(config, 1, make_scheme("attention"))
    return weights_fixed and _cacheable(config, model)


def _cacheable(config: ExperimentConfig, model: WeakTagNet) -> bool:
    a = config.augment
    needs_logmel = a.gain_db or a.shift_seconds or (a.time_masks and a.time_mask_frames) or (
        a.freq_masks and a.freq_mask_bins)
    return config.train.cache_frozen_features and backbone_is_frozen(model) and not needs_logmel


def _loader(features: FeatureSet, batch_size: int, num_workers: int, train_seed: int | None = None) -> DataLoader:
    """Training batches (``train_seed`` given) or evaluation batches, sharded over the ranks of a
    distributed run by weaktag's own samplers (weaktag.training.sampling), not Lightning's."""
    if train_seed is not None:
        sampler = GlobalBatchSampler([c.has_strong for c in features.clips], batch_size, seed=train_seed)
    else:
        sampler = ShardSampler(len(features), batch_size)
    return DataLoader(features, batch_sampler=sampler, collate_fn=features.collate, num_workers=num_workers,
                      persistent_workers=num_workers > 0, pin_memory=torch.cuda.is_available())


def _logger(config: ExperimentConfig, out: Path):
    kind = config.train.logger
    if kind == "none":
        return False
    if kind == "tensorboard":
        return L.pytorch.loggers.TensorBoardLogger(str(out), name="logs")
    if kind == "csv":
        return L.pytorch.loggers.CSVLogger(str(out), name="logs")
    raise ValueError(f"train.logger must be csv, tensorboard or none, not {kind!r}")


#: Lightning >= 2.6 reads the resumed checkpoint with the weights_only given here; older versions use
#: torch.load's default, and resumable_checkpoint has read the same file with weights_only=True first
_LIGHTNING_SAFE_LOAD = {"weights_only": True} if "weights_only" in inspect.signature(L.Trainer.fit).parameters else {}


def resumable_settings(config: ExperimentConfig) -> dict[str, Any]:
    """What must match for a run to be resumed: every section but ``train``, and the train fields
    :meth:`~weaktag.config.TrainSection.resume_must_match` names."""
    values = config.to_dict()
    values.pop("output_dir", None)
    values["train"] = {k: values["train"][k] for k in TrainSection.resume_must_match()}
    return values


def resumable_checkpoint(config: ExperimentConfig) -> Path:
    """The checkpoint ``train(config, resume=True)`` continues from; ValueError when there is none or it was
    written by a run with different settings."""
    path = Path(config.output_dir) / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise ValueError(f"{path}: no checkpoint to resume from (a run saves one after each epoch)")
    # tensors and plain values only, as every load: a crafted last.ckpt never runs code (ValueError in one
    # line for that, or for a file cut short by the kill)
    saved = load_weights_file(path, "a training checkpoint to resume from")
    if not isinstance(saved, dict) or "state_dict" not in saved:
        raise ValueError(f"not a training checkpoint to resume from: {path} (not a Lightning checkpoint)")
    finished = int(saved.get("epoch", -1)) + 1  # Lightning's 0-based epoch of the checkpoint
    if finished > config.train.max_epochs:
        raise ValueError(f"{path}: the run finished {finished} epochs already; resume with train.max_epochs of at "
                         f"least {finished}")
    written = (saved.get("weaktag") or {}).get("experiment")
    if written is not None and written != resumable_settings(config):
        keys = _differing_keys(written, resumable_settings(config))
        raise ValueError(f"{path}: written by a run with other settings ({', '.join(keys)}); resume with the "
                         "same config, or train into another output_dir")
    return path


def _differing_keys(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key), b.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            keys += _differing_keys(left, right, f"{prefix}{key}.")
        elif left != right:
            keys.append(f"{prefix}{key}")
    return keys


def _prediction_device(config: ExperimentConfig) -> torch.device:
    gpu = config.train.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    return torch.device("cuda" if gpu else "cpu")


def earlier_run_outputs(output_dir: str | Path) -> list[str]:
    """What an earlier run left in ``output_dir`` (its model.pt, summary.json, epoch checkpoints); a
    folder without any is free to train into, whatever else it holds."""
    out = Path(output_dir)
    found = [name for name in ("model.pt", "summary.json") if (out / name).exists()]
    if any((out / "checkpoints").glob("*.ckpt")):
        found.append("checkpoints/")
    return found


def clear_output_dir(config: ExperimentConfig, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse to train over an earlier run's outputs unless resuming it or ``overwrite`` (which removes
    :data:`RUN_OUTPUTS`, never other files)."""
    out = Path(config.output_dir)
    if resume and overwrite:
        raise ValueError("--resume continues the run in output_dir and --overwrite replaces it: give one of them")
    found = [] if resume else earlier_run_outputs(out)
    if found and not overwrite:
        raise ValueError(f"{out}: holds an earlier run ({', '.join(found)}); continue it with --resume, replace "
                         "it with --overwrite, or set another output_dir")
    if found:
        for name in RUN_OUTPUTS:
            path = out / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()


def train(config: ExperimentConfig, data: PreparedData | None = None,
          on_epoch: Callable[[str], None] | None = None, resume: bool = False,
          callbacks: Sequence[L.Callback] = (), overwrite: bool = False) -> TrainResult:
    """Train one model as configured; see the module docstring for what is written.

    ``on_epoch`` receives a one-line summary of every epoch (loss, validation mAP, time), and a few lines
    while a frozen backbone's features are computed. ``resume`` continues a stopped run of the same
    config from ``<output_dir>/checkpoints/last.ckpt`` (the end of its last finished epoch); the result
    equals the uninterrupted run's. An output_dir holding an earlier run is refused unless ``resume`` or
    ``overwrite`` (which clears that run's outputs first). ``callbacks`` are extra Lightning callbacks.

    A SIGTERM (from a scheduler, ``docker stop``) or Ctrl-C raises :class:`weaktag.stopping.Stopped`; during the
    epochs the stop is Lightning's graceful one, at the end of a batch.
    """
    resume_from = resumable_checkpoint(config) if resume else None
    clear_output_dir(config, resume, overwrite)
    try:
        return _train(config, data, on_epoch, resume_from, callbacks)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM (the CLI's handler outside the epochs, Lightning's within)
        raise stopped_run(exc, config.output_dir) from None


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


def _train(config: ExperimentConfig, data: PreparedData | None, on_epoch: Callable[[str], None] | None,
           resume_from: Path | None, callbacks: Sequence[L.Callback]) -> TrainResult:
    started = time.time()
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    scheme = make_scheme(config.scheme.name, **config.scheme.settings())
    if data is None:  # the class summary and label warnings before minutes of feature computation
        classes, manifests = read_manifests(config)
        report_labels(classes, manifests, say=on_epoch)
        data = prepare_data(config, progress=config.train.progress, manifests=(classes, manifests))
    # (data prepared by a caller, e.g. compare's trials: the caller reports its labels once)
    for split, features in (("train", data.train), ("validation", data.validation)):
        if len(features) == 0:
            raise ValueError(f"{getattr(config.data, split)}: no usable {split} clip"
                             + no_usable_clip_reason(features.skipped, f"data.{split}_audio_dir or data.audio_dir"))
    if scheme.needs_strong and not any(c.has_strong for c in data.train.clips):
        raise ValueError(f"scheme {scheme.name!r} needs strong labels (onset/offset), and no training clip in "
                         f"{config.data.train} has them")
    if config.scheme.class_weight_beta > 0:  # eq. 11 of M&mnet, from the training labels' prevalence
        prevalence = torch.from_numpy(np.asarray(data.train.weak, dtype=np.float32)).mean(dim=0)
        scheme.class_weights = class_weights(prevalence, config.scheme.class_weight_beta)

    if not config.train.progress:
        # "GPU available", logger tips and the like: noise when runs are driven by a script.
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
        logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    L.seed_everything(config.train.seed, workers=True, verbose=False)
    model = build_model(config, len(data.classes), scheme)
    level = data.train.level  # "backbone" when the caller embedded the features already (compare)
    if level == "logmel" and _cacheable(config, model):
        data = embed_prepared(model, data, progress=config.train.progress, report=on_epoch)
        level = "backbone"
    elif level == "backbone" and not _cacheable(config, model):
        raise ValueError("these features are a frozen backbone's outputs, but this run trains the backbone")
    if scheme.needs_teacher:
        teacher_path = getattr(scheme, "teacher", None)
        if not teacher_path:
            raise ValueError(f"scheme {scheme.name!r} needs a teacher checkpoint: set scheme.teacher")
        from .psl import teacher_labelled_chunks

        chunked = teacher_labelled_chunks(data.train, teacher_path, getattr(scheme, "chunk_seconds"), model)
        data = replace(data, train=chunked)
    t = config.train
    optimisation = Optimisation(t.lr, t.weight_decay, t.lr_schedule, t.warmup_epochs, t.max_epochs)
    module = WeakTagModule(model, scheme, optimisation, data.classes, Augmenter(config.augment, model.grid),
                           level=level, seed=t.seed)
    module.experiment = resumable_settings(config)  # saved in every Lightning checkpoint, checked on resume
    ckpt_cb = L.pytorch.callbacks.ModelCheckpoint(dirpath=str(out / "checkpoints"), monitor="val_mAP", mode="max",
                                                  save_top_k=1, filename="best-{epoch}")
    # every epoch's end, for --resume (Lightning's save_last skips epochs that saved no new best); after
    # ckpt_cb, so that the state it saves knows this epoch's best
    latest_cb = L.pytorch.callbacks.ModelCheckpoint(dirpath=str(out / "checkpoints"), filename="last", save_top_k=1,
                                                    monitor=None, enable_version_counter=False)
    callbacks = [ckpt_cb, latest_cb, *callbacks] + ([EpochLog(on_epoch)] if on_epoch is not None else [])
    if t.early_stopping_patience:
        callbacks.append(L.pytorch.callbacks.EarlyStopping("val_mAP", mode="max", patience=t.early_stopping_patience))
    with warnings.catch_warnings():
        # Lightning's hints about DataLoader workers and tiny logging intervals are noise on small CPU runs.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")
        warnings.filterwarnings("ignore", message=".*treespec.*")
        # a frozen backbone's batch norm is in eval mode on purpose (WeakTagNet.train)
        warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode at the start of training.*")
        trainer = L.Trainer(
            max_epochs=config.train.max_epochs,
            accelerator=config.train.accelerator,
            devices=config.train.devices,
            num_nodes=config.train.num_nodes,
            strategy=config.train.strategy,
            precision=config.train.precision,
            accumulate_grad_batches=config.train.accumulate_grad_batches,
            sync_batchnorm=config.train.sync_batchnorm,
            use_distributed_sampler=False,  # weaktag's samplers shard the data (training.sampling)
            logger=_logger(config, out),
            callbacks=callbacks,
            enable_progress_bar=config.train.progress,
            enable_model_summary=False,
            deterministic="warn" if t.deterministic else False,
            benchmark=None if t.deterministic else True,
            default_root_dir=str(out),
            num_sanity_val_steps=0,
        )
        with _signals_for_lightning():
            try:
                trainer.fit(
                    module,
                    _loader(data.train, t.batch_size, t.num_workers, train_seed=t.seed),
                    _loader(data.validation, t.batch_size, t.num_workers),
                    ckpt_path=None if resume_from is None else str(resume_from),
                    **_LIGHTNING_SAFE_LOAD,
                )
            except SystemExit:  # Lightning's exit after a SIGTERM (SIGTERMException) or a Ctrl-C (status 1)
                if not (trainer.received_sigterm or trainer.interrupted):
                    raise
                raise Stopped(signal.SIGTERM if trainer.received_sigterm else signal.SIGINT) from None
    if not trainer.is_global_zero:
        return TrainResult(Path(), -1, float("nan"), None, time.time() - started)

    best = load_weights_file(ckpt_cb.best_model_path, "a training checkpoint")
    module.load_state_dict(best["state_dict"])
    # validation and test predictions on the training accelerator (a CPU pass over AudioSet's eval set
    # would take longer than the training), then the model goes to the CPU for the checkpoint
    model = module.model.to(_prediction_device(config)).eval()
    best_epoch = int(best["epoch"]) + 1  # 1-based, as the epoch lines count ("epoch 3/12")
    val_pred = predict_features(model, data.validation)
    val_metrics = tagging_metrics(data.validation.weak, val_pred.clip_probs, data.classes)
    thresholds = choose_thresholds(data.validation.weak, val_pred.clip_probs)
    metrics: dict = {"validation": {"mAP": val_metrics.mAP, "AUC": val_metrics.AUC, "best_epoch": best_epoch}}
    if config.train.event_output == "auto":
        event_settings, psds_by_output = choose_event_output(data.validation, val_pred,
                                                             objective=config.train.event_calibration)
        metrics["validation"]["psds1_by_event_output"] = psds_by_output
    else:
        event_settings = choose_event_settings(data.validation, val_pred, config.train.event_output,
                                               objective=config.train.event_calibration)
    operating_point = choose_operating_point(data.validation, val_pred, event_settings.output)
    if operating_point is not None:
        metrics["validation"]["psds1_operating_point"] = operating_point.to_dict()
    test = None
    if data.test is not None and len(data.test):
        # each test clip's whole recording, as `weaktag evaluate` and `weaktag tag` score it
        trained = Checkpoint(model, data.classes, scheme.name, {}, thresholds, event_settings)
        test_pred, test_clips = predict_recordings(trained, data.test.clips, _prediction_device(config))
        test_metrics = tagging_metrics(test_clips.weak, test_pred.clip_probs, data.classes, thresholds=thresholds)
        test = TestEvaluation(test_pred, test_metrics)
        metrics["test"] = {"mAP": test_metrics.mAP, "AUC": test_metrics.AUC}
        if any(c.has_strong for c in test_clips.clips):
            test.events = event_metrics_for(event_settings, test_clips, test_pred,
                                            operating_point=operating_point).to_dict()
            metrics["test"]["events"] = test.events
    model = model.cpu()
    checkpoint = save_checkpoint(out / "model.pt", model, data.classes, scheme.name, config.to_dict(),
                                 tag_thresholds=thresholds, events=event_settings, metrics=metrics)
    result = TrainResult(checkpoint, best_epoch, float(val_metrics.mAP),
                         None if test is None else float(test.tagging.mAP), time.time() - started, data.skipped,
                         model=model, tag_thresholds=thresholds, event_settings=event_settings, test=test,
                         diagnostics=list(module.diagnostics))
    if result.diagnostics:
        write_json(out / "diagnostics.json", {"best_epoch": best_epoch, "epochs": result.diagnostics})
    write_json(out / "summary.json", {**result.summary(), "scheme": scheme.name, "seed": config.train.seed,
                                      "processes": trainer.world_size,
                                      "skipped_counts": {k: len(v) for k, v in data.skipped.items()}})
    return result
