"""One training run (Lightning): one scheme, one seed, best checkpoint chosen by validation mAP.

``train(config)`` reads the labels, computes features once, trains, reloads the best
epoch, chooses per-class tag thresholds and event settings on validation, writes
``<output_dir>/model.pt`` (the weaktag checkpoint), ``<output_dir>/summary.json`` and
``<output_dir>/MODEL_CARD.md`` (:mod:`weaktag.card`, from the two), and
returns a :class:`TrainResult` that also carries the model and its test-set evaluation (so
``compare`` never reloads or re-predicts). Clips that cannot be read are skipped and counted,
never fatal.

The steps, in order: the usable data (:func:`prepare_data`), the network (:func:`build_model`) and
what it is fed (a frozen backbone's outputs computed once, PSL's teacher-labelled chunks), the
epochs (:mod:`weaktag.training.trainer`), then the best epoch, its validation choices and its test
evaluation (:mod:`weaktag.training.best_epoch`), written out last. Resuming and the output folder's
rules are :mod:`weaktag.training.resume`'s.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import lightning as L
import numpy as np
import torch

from ..card import write_model_card
from ..checkpoint import save_checkpoint
from ..config import SPLITS, ExperimentConfig, check_mean_teacher, check_unlabeled_scheme
from ..data import FeatureSet, build_feature_set, no_usable_clip_reason
from ..errors import ConfigError, DataError, UsageError
from ..files import write_json
from ..labels import Manifest, hold_out, read_labels
from ..labels.summary import report_labels, training_data
from ..labels.unlabeled import read_unlabeled
from ..models import ModelConfig, WeakTagNet
from ..models.transfer import initialise_from
from ..postprocess import EventSettings
from ..provenance import UNLABELLED_SPLIT, TrainingData
from ..supervision import TrainingScheme, class_weights, make_scheme
from .augment import Augmenter
from .best_epoch import BestEpoch, Calibration, TestEvaluation, calibrate, evaluate_test, restore_best
from .module import Optimisation, WeakTagModule
from .predict import embed_frozen
from .resume import clear_output_dir, resumable_checkpoint, resumable_settings, stopped_run
from .trainer import fit, quiet_lightning

logger = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """Manifests and features for train / validation / (test), computed once and reusable across runs."""

    classes: list[str]
    train: FeatureSet
    validation: FeatureSet
    test: FeatureSet | None = None
    manifests: dict[str, Manifest] = field(default_factory=dict)
    unlabeled: FeatureSet | None = None  # data.unlabeled's clips (the mean teacher's), no labels

    @property
    def skipped(self) -> dict[str, list[dict]]:
        out = {"train": self.train.skipped, "validation": self.validation.skipped}
        if self.test is not None:
            out["test"] = self.test.skipped
        if self.unlabeled is not None:
            out["unlabeled"] = self.unlabeled.skipped
        return {k: [asdict(s) for s in v] for k, v in out.items()}


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
        raise UsageError("config.data.train and config.data.validation must name label files "
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
            raise DataError(f"data.validation_fraction: {d.train}: {exc}") from None
        manifests = {"train": train, "validation": validation, **manifests}
    return list(classes or []), manifests


def prepare_data(config: ExperimentConfig, progress: bool = False,
                 manifests: tuple[list[str], dict[str, Manifest]] | None = None) -> PreparedData:
    """Read the label files named in ``config.data`` (or use ``manifests``) and compute their features
    on the configured backbone's front end; ``data.unlabeled``'s clips too, on the same path."""
    classes, by_split = manifests or read_manifests(config)
    grid = config.model.grid

    def features_of(manifest: Manifest) -> FeatureSet:
        return build_feature_set(manifest, classes, progress=progress, grid=grid, num_workers=config.train.num_workers)

    # read before any feature is computed: a wrong path fails at once
    d = config.data
    unlabeled_clips = read_unlabeled(d.unlabeled, audio_dir=d.audio_dir) if d.unlabeled else None
    features = {split: features_of(m) for split, m in by_split.items()}
    return PreparedData(classes, features["train"], features["validation"], features.get("test"), by_split,
                        None if unlabeled_clips is None else features_of(unlabeled_clips))



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


def embed_prepared(model: WeakTagNet, data: PreparedData, progress: bool = False,
                   report: Callable[[str], None] | None = None, cache: str | Path | None = None) -> PreparedData:
    def embed(split: str, features: FeatureSet) -> FeatureSet:
        return embed_frozen(model, features, progress=progress, split=split, report=report, cache=cache)

    return PreparedData(data.classes, embed("train", data.train), embed("validation", data.validation),
                        None if data.test is None else embed("test", data.test), data.manifests,
                        None if data.unlabeled is None else embed("unlabeled", data.unlabeled))


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


def train(config: ExperimentConfig, data: PreparedData | None = None,
          on_epoch: Callable[[str], None] | None = None, resume: bool = False,
          callbacks: Sequence[L.Callback] = (), overwrite: bool = False) -> TrainResult:
    """Train one model as configured; see the module docstring for what is written.

    Progress is logged at INFO (``logging.getLogger("weaktag.training.run")``): the class summary when
    the labels are read here and, for a run without a progress bar (``train.progress: false``), a few
    lines while a frozen backbone's features are computed and one line per epoch (loss, validation mAP,
    time). ``on_epoch``, when given, receives these lines instead of the log, and the epoch lines even
    with a progress bar. ``resume`` continues a stopped run of the same config from
    ``<output_dir>/checkpoints/last.ckpt`` (the end of its last finished epoch); the result equals the
    uninterrupted run's. An output_dir holding an earlier run is refused unless ``resume`` or
    ``overwrite`` (which clears that run's outputs first). ``callbacks`` are extra Lightning callbacks.
    Without a progress bar Lightning's own INFO lines are hidden during the run (levels set back after).

    A SIGTERM (from a scheduler, ``docker stop``) or Ctrl-C raises :class:`weaktag.stopping.Stopped`; during the
    epochs the stop is Lightning's graceful one, at the end of a batch.
    """
    resume_from = resumable_checkpoint(config) if resume else None
    clear_output_dir(config, resume, overwrite)
    say = on_epoch or logger.info
    epoch_lines = say if on_epoch is not None or not config.train.progress else None
    try:
        with quiet_lightning(not config.train.progress):  # "GPU available", logger tips: noise in scripts
            return _train(config, data, say, epoch_lines, resume_from, callbacks)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM (the CLI's handler outside the epochs, Lightning's within)
        raise stopped_run(exc, config.output_dir) from None


def _train(config: ExperimentConfig, data: PreparedData | None, say: Callable[[str], None],
           epoch_lines: Callable[[str], None] | None, resume_from: Path | None,
           callbacks: Sequence[L.Callback]) -> TrainResult:
    started = time.time()
    Path(config.output_dir).mkdir(parents=True, exist_ok=True)
    scheme = make_scheme(config.scheme.name, config.scheme)
    data = _usable_data(config, data, scheme, say)
    counts = _training_data(config, data)  # the clips as read (before PSL cuts the training clips into chunks)
    if config.scheme.class_weight_beta > 0:  # eq. 11 of M&mnet, from the training labels' prevalence
        prevalence = torch.from_numpy(np.asarray(data.train.weak, dtype=np.float32)).mean(dim=0)
        scheme.class_weights = class_weights(prevalence, config.scheme.class_weight_beta)
    L.seed_everything(config.train.seed, workers=True, verbose=False)
    model = build_model(config, len(data.classes), scheme)
    data = _network_inputs(config, model, scheme, data, say)
    module = _lightning_module(config, model, scheme, data)
    unlabeled = data.unlabeled if config.data.unlabeled else None  # (checked by _usable_data)
    fitted = fit(config, module, data.train, data.validation, resume_from, callbacks, epoch_lines, unlabeled)
    if not fitted.is_global_zero:  # another rank of a distributed run: rank 0 evaluates and writes
        return TrainResult(Path(), -1, float("nan"), None, time.time() - started)
    best = restore_best(config, module, fitted.best_checkpoint)
    calibration = calibrate(config, best, data.validation, data.classes)
    kept = config.train.feature_cache if backbone_is_frozen(best.model) else None  # a tuned backbone: no reuse
    test = evaluate_test(best, data.test, data.classes, calibration, scheme.name, kept)
    result = _write_outputs(config, scheme.name, data, best, calibration, test, list(module.diagnostics), started,
                            counts)
    _write_summary(config, result, scheme.name, fitted.world_size, data)
    write_model_card(result.checkpoint)
    return result


def _training_data(config: ExperimentConfig, data: PreparedData) -> TrainingData:
    """The clip counts the checkpoint keeps for its model card."""
    clips = {"train": data.train.clips, "validation": data.validation.clips}
    if data.test is not None:
        clips["test"] = data.test.clips
    if config.data.unlabeled and data.unlabeled is not None:
        clips[UNLABELLED_SPLIT] = data.unlabeled.clips
    return training_data(data.classes, clips, {split: len(v) for split, v in data.skipped.items()})


def _usable_data(config: ExperimentConfig, data: PreparedData | None, scheme: TrainingScheme,
                 say: Callable[[str], None]) -> PreparedData:
    """``data``, or the configured labels read and their features computed; ValueError when a split has no
    usable clip or the scheme's labels are missing."""
    check_unlabeled_scheme(config)  # before minutes of feature computation
    if data is None:  # the class summary and label warnings before minutes of feature computation
        classes, manifests = read_manifests(config)
        report_labels(classes, manifests, say=say)
        data = prepare_data(config, progress=config.train.progress, manifests=(classes, manifests))
    # (data prepared by a caller, e.g. compare's trials: the caller reports its labels once)
    for split, features in (("train", data.train), ("validation", data.validation)):
        if len(features) == 0:
            raise DataError(f"{getattr(config.data, split)}: no usable {split} clip"
                             + no_usable_clip_reason(features.skipped, f"data.{split}_audio_dir or data.audio_dir"))
    if config.data.unlabeled:
        _check_unlabeled(config, data, scheme)
        say(f"unlabelled clips (data.unlabeled): {len(data.unlabeled)}, "
            f"{config.mean_teacher.unlabeled_fraction:g} of each batch")
    if scheme.needs_strong and not any(c.has_strong for c in data.train.clips):
        raise DataError(f"scheme {scheme.name!r} needs strong labels (onset/offset), and no training clip in "
                         f"{config.data.train} has them")
    return data


def _check_unlabeled(config: ExperimentConfig, data: PreparedData, scheme: TrainingScheme) -> None:
    """DataError when data.unlabeled gave no usable clip; ConfigError or UsageError when they cannot join this
    run's batches (a config whose data section was replaced, as compare's recipes', is checked again here)."""
    check_mean_teacher(config)
    if data.unlabeled is None:
        raise UsageError(f"data.unlabeled names {config.data.unlabeled}, and the data prepared for this run has no "
                         "unlabelled clips (prepare it with weaktag.training.prepare_data)")
    if len(data.unlabeled) == 0:
        raise DataError(f"{config.data.unlabeled}: no usable unlabelled clip"
                        + no_usable_clip_reason(data.unlabeled.skipped, "data.audio_dir"))
    if scheme.needs_teacher:
        raise UsageError(f"scheme {scheme.name!r} trains on teacher-labelled chunks of the training clips; "
                         "data.unlabeled does not apply to it (leave it unset)")


def _network_inputs(config: ExperimentConfig, model: WeakTagNet, scheme: TrainingScheme, data: PreparedData,
                    say: Callable[[str], None]) -> PreparedData:
    """What the network is fed: a frozen backbone's outputs computed once (when cacheable), and for PSL the
    training clips cut into chunks labelled by the teacher."""
    level = data.train.level  # "backbone" when the caller embedded the features already (compare)
    if level == "logmel" and _cacheable(config, model):
        data = embed_prepared(model, data, progress=config.train.progress, report=say,
                              cache=config.train.feature_cache)
    elif level == "backbone" and not _cacheable(config, model):
        raise UsageError("these features are a frozen backbone's outputs, but this run trains the backbone")
    if scheme.needs_teacher:
        teacher_path = getattr(scheme, "teacher", None)
        if not teacher_path:
            raise ConfigError(f"scheme {scheme.name!r} needs a teacher checkpoint: set scheme.teacher")
        from .psl import teacher_labelled_chunks

        chunked = teacher_labelled_chunks(data.train, teacher_path, getattr(scheme, "chunk_seconds"), model,
                                          cache=config.train.feature_cache,
                                          with_segments=scheme.needs_teacher_segments)
        data = replace(data, train=chunked)
    return data


def _lightning_module(config: ExperimentConfig, model: WeakTagNet, scheme: TrainingScheme,
                      data: PreparedData) -> WeakTagModule:
    t = config.train
    optimisation = Optimisation(t.lr, t.weight_decay, t.lr_schedule, t.warmup_epochs, t.max_epochs)
    augment = config.augment
    if augment.mixup_alpha and not scheme.allows_mixup:
        logger.info("scheme %s trains without mixup (augment.mixup_alpha %g left out): its teacher labelled each "
                    "chunk alone", scheme.name, augment.mixup_alpha)
        augment = replace(augment, mixup_alpha=0.0)
    module = WeakTagModule(model, scheme, optimisation, data.classes, Augmenter(augment, model.grid),
                           level=data.train.level, seed=t.seed, mean_teacher=config.mean_teacher)
    module.experiment = resumable_settings(config)  # saved in every Lightning checkpoint, checked on resume
    return module


def _write_outputs(config: ExperimentConfig, scheme: str, data: PreparedData, best: BestEpoch,
                   calibration: Calibration, test: TestEvaluation | None, diagnostics: list[dict],
                   started: float, counts: TrainingData) -> TrainResult:
    """model.pt (the best epoch's network on the CPU, with its validation choices) and diagnostics.json."""
    out = Path(config.output_dir)
    model = best.model.cpu()
    metrics = {"validation": calibration.metrics, **({"test": test.metrics()} if test is not None else {})}
    checkpoint = save_checkpoint(out / "model.pt", model, data.classes, scheme, config.to_dict(),
                                 tag_thresholds=calibration.tag_thresholds, events=calibration.event_settings,
                                 metrics=metrics, data=counts)
    result = TrainResult(checkpoint, best.epoch, float(calibration.tagging.mAP),
                         None if test is None else float(test.tagging.mAP), time.time() - started, data.skipped,
                         model=model, tag_thresholds=calibration.tag_thresholds,
                         event_settings=calibration.event_settings, test=test, diagnostics=diagnostics)
    if result.diagnostics:
        write_json(out / "diagnostics.json", {"best_epoch": best.epoch, "epochs": result.diagnostics})
    return result


def _write_summary(config: ExperimentConfig, result: TrainResult, scheme: str, processes: int,
                   data: PreparedData) -> None:
    write_json(Path(config.output_dir) / "summary.json",
               {**result.summary(), "scheme": scheme, "seed": config.train.seed, "processes": processes,
                "skipped_counts": {k: len(v) for k, v in data.skipped.items()}})
