"""One typed config system: experiments (``data``, ``model``, ``scheme``, ``train``) and tagging.

The schemas are dataclasses read through OmegaConf structured configs. We chose OmegaConf over
jsonargparse/LightningCLI because weaktag's configs are used from Python as much as from the
command line (``compare`` and ``demo`` build them, checkpoints store them): OmegaConf gives
typed YAML, ``section.key=value`` dot-list overrides and type coercion (numbers, bools:
``"false"`` is False) on plain dataclasses, without tying the config to one CLI parser.

A config is validated when it is loaded, before any data is read: unknown keys, values of the
wrong type, values outside their allowed set (``choices`` in a field's metadata), numbers out
of range, an unknown scheme or backbone, and scheme parameters the scheme rejects all raise
:class:`ConfigError` naming the file and key. Empty strings from YAMLs written before this
module (``init: ""``) mean "not set", as they did.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .geometry import TimeGrid
from .models import BACKBONES, BackboneConfig, ModelConfig, NeckConfig
from .postprocess import EVENT_OBJECTIVES, OUTPUT_KINDS
from .supervision import ATTENTION_TARGETS, PSEUDO_TARGETS, SCHEMES, THRESHOLD_RULES, make_scheme

SPLITS = ("train", "validation", "test")
LR_SCHEDULES = ("constant", "cosine")  # see weaktag.training.module.Optimisation


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file (and line, or key) and what is wrong.

    ``key`` and ``problem``, when set, are the field and what is wrong with its value, for a caller
    that names the field its own way (the CLI: by its option).
    """

    def __init__(self, message: str, key: str | None = None, problem: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.problem = problem


def _choices(*values: str) -> dict[str, Any]:
    return {"choices": values}


def _at_least(minimum: float) -> dict[str, Any]:
    return {"min": minimum}


@dataclass
class DataConfig:
    train: Optional[str] = None  # label file (DCASE TSV, manifest .jsonl, folder, ...); see weaktag.labels.read_labels
    validation: Optional[str] = None
    test: Optional[str] = None
    # where audio lives when a label file names only files: one folder for every split, or one per
    # split (DCASE layouts keep audio/train, audio/validation, ...); none: the label file's folder
    audio_dir: Optional[str] = None
    train_audio_dir: Optional[str] = None
    validation_audio_dir: Optional[str] = None
    test_audio_dir: Optional[str] = None
    classes: list[str] = field(default_factory=list)  # empty: all labels seen in train
    # AudioSet segment lists name MIDs: their class_labels_indices.csv gives the names and, without
    # data.classes, the class list in its order (other formats ignore it)
    class_labels_indices: Optional[str] = None
    # > 0 with data.validation unset: hold out this fraction of the training list as validation
    # (stratified, one YouTube video never on both sides: weaktag.labels.hold_out), fixed by split_seed
    validation_fraction: float = field(default=0.0, metadata={"min": 0.0, "max_exclusive": 1.0})
    split_seed: int = field(default=0, metadata=_at_least(0))

    def audio_dir_for(self, split: str) -> Optional[str]:
        """The audio folder of ``split``: its own, else the shared one, else None (the label file's folder)."""
        return getattr(self, f"{split}_audio_dir") or self.audio_dir


@dataclass(frozen=True)
class ModelSection(BackboneConfig):
    """The backbone's architecture (:class:`~weaktag.models.BackboneConfig`) and how to initialise it."""

    init: Optional[str] = None  # weights to start from: a weaktag checkpoint or a VGGish state dict
    # leading layers to freeze: VGGish conv layers (the paper froze 3), aisfx blocks (4 = all, features fixed)
    freeze: int = field(default=0, metadata=_at_least(0))
    # the trainable neck between backbone and head (weaktag.models.neck): 1-D convolutions over time;
    # 0 channels: none (the paper's VGGish has its L7 already)
    neck_channels: int = field(default=0, metadata=_at_least(0))
    neck_layers: int = field(default=1, metadata=_at_least(1))
    neck_kernel: int = field(default=3, metadata=_at_least(1))
    dropout: float = field(default=0.0, metadata={"min": 0.0, "max_exclusive": 1.0})  # in the neck, before the head

    def backbone_config(self) -> BackboneConfig:
        return BackboneConfig(**{f.name: getattr(self, f.name) for f in fields(BackboneConfig)})

    def neck_config(self) -> NeckConfig:
        return NeckConfig(self.neck_channels, self.neck_layers, self.neck_kernel, self.dropout)

    @property
    def grid(self) -> TimeGrid:
        """The network's front end and time grid, as every feature set of this config is cut."""
        return ModelConfig(1, True, self.backbone_config(), self.neck_config()).grid


@dataclass
class SchemeSection:
    name: str = "attention-self"
    alpha: float = field(default=1.0, metadata=_at_least(0.0))
    attention_target: str = field(default="normalized", metadata=_choices(*ATTENTION_TARGETS))
    # weaktag's extension of self-supervision (attention-self-ext; weaktag.supervision.extended); None:
    # the scheme's default
    pseudo_threshold: Optional[str] = field(default=None, metadata=_choices(*THRESHOLD_RULES))
    pseudo_quantile: Optional[float] = field(default=None, metadata={"min": 0.0, "max": 1.0})
    peak_ratio: Optional[float] = field(default=None, metadata={"min": 0.0, "max": 1.0})
    confidence_gate: Optional[float] = field(default=None, metadata={"min": 0.0, "max": 1.0})
    pseudo_target: Optional[str] = field(default=None, metadata=_choices(*PSEUDO_TARGETS))
    alpha_warmup_epochs: Optional[int] = field(default=None, metadata=_at_least(0))
    teacher_decay: Optional[float] = field(default=None, metadata={"min": 0.0, "max_exclusive": 1.0})
    segment_weight: Optional[float] = field(default=None, metadata=_at_least(0.0))
    # PSL (scheme psl; weaktag.supervision.psl): the teacher checkpoint (in compare: none = the same
    # recipe's attention trial of each seed), chunk length, and the weight of the teacher's labels
    teacher: Optional[str] = None
    chunk_seconds: Optional[float] = field(default=None, metadata={"min_exclusive": 0.0})
    teacher_weight: Optional[float] = field(default=None, metadata={"min": 0.0, "max": 1.0})
    # M&mnet (schemes mmnet, mmnet-ms; weaktag.supervision.mmnet): lambda of the micro loss (default 1)
    # and mu of the ensemble prediction (default 0.5; 1 = M&mnet without EP)
    micro_weight: Optional[float] = field(default=None, metadata=_at_least(0.0))
    ensemble_weight: Optional[float] = field(default=None, metadata={"min": 0.0, "max": 1.0})
    # > 0: per-class loss weights of M&mnet's eq. 11 with this beta (the paper: 0.3), from the training
    # set's label prevalence, for any scheme (weaktag.supervision.class_weights); 0: unweighted
    class_weight_beta: float = field(default=0.0, metadata=_at_least(0.0))

    def settings(self) -> dict[str, Any]:
        """Every scheme parameter; each scheme takes the ones it declares."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}


@dataclass
class TrainSection:
    lr: float = field(default=1e-4, metadata={"min_exclusive": 0.0})  # the paper's rate for SL-DCASE-17
    batch_size: int = field(default=32, metadata=_at_least(1))
    max_epochs: int = field(default=50, metadata=_at_least(1))  # the paper picks the best of 50 epochs
    weight_decay: float = field(default=0.0, metadata=_at_least(0.0))  # > 0: AdamW (decoupled decay)
    lr_schedule: str = field(default="constant", metadata=_choices(*LR_SCHEDULES))  # cosine: to 0 at max_epochs
    warmup_epochs: int = field(default=0, metadata=_at_least(0))
    # stop when validation mAP has not improved for this many epochs (0: run every epoch); the best
    # epoch is kept either way
    early_stopping_patience: int = field(default=0, metadata=_at_least(0))
    seed: int = field(default=0, metadata=_at_least(0))
    num_workers: int = field(default=0, metadata=_at_least(0))
    accelerator: str = "auto"
    devices: Any = 1  # per node: an int, "auto", or a list of GPU ids; several use DDP
    num_nodes: int = field(default=1, metadata=_at_least(1))
    strategy: str = "auto"  # Lightning's: "ddp" (one process per device), "ddp_spawn", ...
    # batches per optimiser step; batch_size is per device, so a step sees
    # batch_size x devices x num_nodes x accumulate_grad_batches clips
    accumulate_grad_batches: int = field(default=1, metadata=_at_least(1))
    sync_batchnorm: bool = False  # batch-norm statistics over all devices (DDP)
    # deterministic algorithms (a run repeats exactly); false lets cuDNN pick the fastest convolution
    # kernels (cudnn.benchmark), faster on a GPU but not bit-repeatable
    deterministic: bool = True
    precision: str = field(default="32-true", metadata=_choices(
        "32-true", "32", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "64"))
    logger: str = field(default="csv", metadata=_choices("csv", "tensorboard", "none"))
    progress: bool = True
    # which output scores time for events, stored in the checkpoint: X^a ("segment", the default), the
    # relative attention, their product, either gated by the clip probability ("gated-segment",
    # "gated-attention"), or "auto": the one with the best PSDS1 on strongly labelled validation
    # clips (X^a when validation has no strong labels); see weaktag.postprocess.segment_scores
    event_output: str = field(default="segment", metadata=_choices(*OUTPUT_KINDS, "auto"))
    # what the per-class event thresholds are chosen for on validation: segment-level F1 with a fixed
    # median filter (as before), or event-based F1 with a median-filter length per class as well
    event_calibration: str = field(default="segment_f1", metadata=_choices(*EVENT_OBJECTIVES))
    # with the whole backbone frozen (and no augmentation that needs log-mel: gain, shift, masks),
    # compute its outputs once and train only the head: the same model, many times faster on a CPU
    cache_frozen_features: bool = True


@dataclass
class AugmentConfig:
    """Training-batch augmentation (weaktag.training.augment); every one is off by default, as in the paper."""

    gain_db: float = field(default=0.0, metadata=_at_least(0.0))  # random gain in [-gain_db, +gain_db] per clip
    shift_seconds: float = field(default=0.0, metadata=_at_least(0.0))  # circular time shift, whole segments
    mixup_alpha: float = field(default=0.0, metadata=_at_least(0.0))  # Beta(alpha, alpha); 0 = no mixup
    mixup_prob: float = field(default=1.0, metadata={"min": 0.0, "max": 1.0})  # chance a batch is mixed
    time_masks: int = field(default=0, metadata=_at_least(0))  # SpecAugment masks per clip ...
    time_mask_frames: int = field(default=0, metadata=_at_least(0))  # ... of up to this many frames
    freq_masks: int = field(default=0, metadata=_at_least(0))
    freq_mask_bins: int = field(default=0, metadata=_at_least(0))


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    scheme: SchemeSection = field(default_factory=SchemeSection)
    train: TrainSection = field(default_factory=TrainSection)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    output_dir: str = "runs/experiment"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TaggingConfig:
    """How ``weaktag tag`` and :class:`~weaktag.inference.Tagger` run; the CLI's defaults come from here.

    None for the event settings and thresholds means "the checkpoint's" (chosen on validation).
    """

    batch_size: int = field(default=32, metadata=_at_least(1))  # files per forward pass
    max_batch_seconds: float = field(default=320.0, metadata={"min_exclusive": 0.0})  # audio per forward pass
    chunk_seconds: float = field(default=30.72, metadata={"min_exclusive": 0.0})  # rounded to whole segments
    # real audio on each side of a chunk; None: the backbone's receptive field rounded up to whole
    # segments, plus one (0.64 s for VGGish), so chunked outputs equal a whole-file pass
    context_seconds: Optional[float] = field(default=None, metadata=_at_least(0.0))
    chunk_batch: int = field(default=1, metadata=_at_least(1))  # chunks of one file per forward pass
    pad_batches: bool = False  # also batch files of different lengths (zero-padded)
    skip_silent: bool = True  # report all-zero files as failures instead of tagging them
    detect_events: bool = True
    event_output: Optional[str] = field(default=None, metadata=_choices(*OUTPUT_KINDS))
    # one value, or a list with one per class
    event_thresholds: Any = field(default=None, metadata={"min": 0.0, "max": 1.0})
    median_filter_seconds: Optional[float] = field(default=None, metadata=_at_least(0.0))
    tag_thresholds: Any = field(default=None, metadata={"min": 0.0, "max": 1.0})  # one value, or one per class
    # which events to report: of every class, or only of the classes tagged for the clip (clip
    # probability at or above its tag threshold)
    events_for: str = field(default="all", metadata=_choices("all", "tagged"))
    # clip tags: the K most probable classes, those above their threshold, or either (union)
    top_k: int = field(default=5, metadata=_at_least(1))
    select: str = field(default="union", metadata=_choices("top-k", "threshold", "union"))
    keep_spectrogram: bool = False  # keep a time-pooled log-mel (for timelines)
    spectrogram_columns: int = field(default=4000, metadata=_at_least(1))
    num_threads: Optional[int] = field(default=None, metadata=_at_least(1))
    device: str = "cpu"  # where the network runs: cpu, cuda, cuda:1, ... (checked when a Tagger is made)
    # processes that read, decode and resample files while the network runs; 0: the calling process
    # (no start-up cost, nothing to fork: right for small runs, and on a CPU the forward pass is the bottleneck)
    decode_workers: int = field(default=0, metadata=_at_least(0))


# --------------------------------------------------------------------------- loading


def _read_yaml(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc})") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections (data, model, scheme, train)")
    return raw


def _resolve_paths(raw: dict, folder: Path) -> None:
    """Relative data and weight paths in a YAML are relative to the YAML's folder."""
    data = raw.get("data")
    if isinstance(data, dict):
        for key in (*SPLITS, "audio_dir", *(f"{s}_audio_dir" for s in SPLITS), "class_labels_indices"):
            value = data.get(key)
            if isinstance(value, str) and value and not Path(value).is_absolute():
                data[key] = str((folder / value).resolve())
    for section, key in (("model", "init"), ("scheme", "teacher")):
        values = raw.get(section)
        if isinstance(values, dict) and isinstance(values.get(key), str) and values[key]:
            if not Path(values[key]).is_absolute():
                values[key] = str((folder / values[key]).resolve())


def _merge(base: Any, extra: Any, where: str) -> Any:
    try:
        return OmegaConf.merge(base, extra)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or ""
        message = str(getattr(exc, "msg", None) or exc).splitlines()[0]
        raise ConfigError(f"{where}: {key + ': ' if key else ''}{message}") from None


def _dotlist(overrides: list[str]) -> Any:
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value (e.g. train.lr=0.001)")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"overrides: {str(exc).splitlines()[0]}") from None


def _build(cls: type, layers: list[tuple[Any, str]]) -> Any:
    merged = OmegaConf.structured(cls)
    for values, where in layers:
        merged = _merge(merged, values, where)
    try:
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:  # e.g. a required value missing
        raise ConfigError(f"{layers[-1][1] if layers else 'config'}: {str(exc).splitlines()[0]}") from None
    return config


def config_path(path: str | Path) -> Path:
    """``path`` when it is a file, else the packaged recipe of that name (``recommended``); FileNotFoundError
    naming both and the packaged recipes when neither exists."""
    from .recipes import recipe_names, recipe_path

    path = Path(path)
    if path.exists():
        return path
    if str(path) in recipe_names():
        return recipe_path(str(path))
    raise FileNotFoundError(f"{path}: config file not found, and not a packaged recipe "
                            f"({', '.join(recipe_names())})")


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML experiment config, apply ``section.key=value`` overrides, validate; raises ConfigError."""
    layers: list[tuple[Any, str]] = []
    where = "config"
    if path is not None:
        path = config_path(path)
        raw = _read_yaml(path)
        _resolve_paths(raw, path.parent)
        where = str(path)
        layers.append((_legacy(raw), where))
    if overrides:
        layers.append((_dotlist(overrides), "overrides"))
    config = _build(ExperimentConfig, layers)
    validate(config, where)
    return config


def recipe_config(base: ExperimentConfig, path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """A recipe on ``base``'s data: the config at ``path`` (with ``overrides``) whose ``data`` section and
    output folder are replaced by ``base``'s, so that two recipes are compared on the same clips."""
    recipe = load_config(path, overrides)
    recipe.data = dataclasses.replace(base.data, classes=list(base.data.classes))
    recipe.output_dir = base.output_dir
    return recipe


def config_from_dict(values: dict) -> ExperimentConfig:
    """An experiment config from nested dicts (e.g. a checkpoint's ``experiment``), validated."""
    config = _build(ExperimentConfig, [(_legacy(values), "config")])
    validate(config, "config")
    return config


def tagging_config(**values: Any) -> TaggingConfig:
    """A validated :class:`TaggingConfig` with ``values`` (None keeps the default) over the defaults."""
    config = _build(TaggingConfig, [({k: v for k, v in values.items() if v is not None}, "tagging settings")])
    validate(config, "tagging settings")
    return config


def _legacy(raw: dict) -> dict:
    """Configs written before the typed system: ``""`` meant "not set"."""
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return None if value == "" else value

    return clean(raw)


# --------------------------------------------------------------------------- validation


def validate(config: Any, where: str = "config") -> None:
    """Allowed values and ranges from the fields' metadata, then the scheme and backbone registries."""
    _check_fields(config, where, "")
    if isinstance(config, ExperimentConfig):
        if config.data.validation and config.data.validation_fraction > 0:
            raise ConfigError(f"{where}: data.validation_fraction: {config.data.validation_fraction} holds out "
                              "validation clips, but data.validation names them too; set one of the two")
        if config.model.backbone not in BACKBONES:
            raise ConfigError(f"{where}: model.backbone: unknown backbone {config.model.backbone!r}; "
                              f"allowed: {', '.join(BACKBONES)}")
        try:  # the backbone's and neck's own rules (aisfx time strides, odd neck kernels, ...)
            config.model.grid
        except ValueError as exc:
            raise ConfigError(f"{where}: model: {exc}") from None
        if config.scheme.name not in SCHEMES:
            raise ConfigError(f"{where}: scheme.name: unknown scheme {config.scheme.name!r}; "
                              f"allowed: {', '.join(SCHEMES)}")
        try:
            make_scheme(config.scheme.name, **config.scheme.settings())
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None


def _check_fields(node: Any, where: str, prefix: str) -> None:
    for f in fields(node):
        value = getattr(node, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            _check_fields(value, where, key + ".")
            continue
        _check_value(key, value, f.metadata, where)


def check_setting(cls: type, key: str, value: Any, where: str = "tagging settings",
                  labels: list[str] | None = None) -> None:
    """Check a value for field ``key`` of ``cls`` as loading does (for a setting changed later, such as
    a tagger's thresholds); ``labels`` name the items of a list value (the classes)."""
    meta = {f.name: f.metadata for f in fields(cls)}[key]
    if hasattr(value, "tolist"):  # numpy
        value = value.tolist()
    _check_value(key, value, meta, where, labels=labels)


def _allowed(meta: Any) -> str:
    """The range a field's metadata allows, e.g. "0.0 to 1.0"; "" for a one-sided bound (its message says it)."""
    low = meta.get("min", meta.get("min_exclusive"))
    high = meta.get("max", meta.get("max_exclusive"))
    if low is None or high is None:
        return ""
    return f" (allowed: {low} to {'below ' if 'max_exclusive' in meta else ''}{high})"


def _check_value(key: str, value: Any, meta: Any, where: str, shown: str | None = None,
                 labels: list[str] | None = None) -> None:
    if value is None:
        return
    if isinstance(value, (list, tuple)) and any(k in meta for k in ("min", "max", "min_exclusive", "max_exclusive")):
        for i, item in enumerate(value):  # one value per class: name the class
            name = f"{labels[i]}={item!r}" if labels is not None and i < len(labels) else f"item {i + 1}: {item!r}"
            _check_value(key, item, meta, where, shown=name)
        return
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalars
        value = value.item()
    nan_prefix = f"{shown}: " if shown else ""
    shown = shown or repr(value)

    def fail(problem: str) -> None:
        raise ConfigError(f"{where}: {key}: {problem}", key=key, problem=problem)

    if isinstance(value, float) and math.isnan(value):
        fail(f"{nan_prefix}nan is not a number it can use")
    if "choices" in meta and value not in meta["choices"]:
        fail(f"{shown} is not allowed; allowed: {', '.join(meta['choices'])}")
    allowed = _allowed(meta)
    if "min" in meta and value < meta["min"]:
        fail(f"{shown} is below its minimum {meta['min']}{allowed}")
    if "max" in meta and value > meta["max"]:
        fail(f"{shown} is above its maximum {meta['max']}{allowed}")
    if "max_exclusive" in meta and value >= meta["max_exclusive"]:
        fail(f"{shown} must be below {meta['max_exclusive']}{allowed}")
    if "min_exclusive" in meta and value <= meta["min_exclusive"]:
        fail(f"{shown} must be above {meta['min_exclusive']}{allowed}")
