"""Experiment configs: the ``data``, ``model``, ``scheme``, ``train``, ``augment`` and ``mean_teacher`` sections, loaded and validated.

The reading and field checks are :mod:`weaktag.settings`'s. A config is validated when it is loaded,
before any data is read: unknown keys, values of the wrong type, values outside their allowed set,
numbers out of range, an unknown scheme or backbone, and scheme parameters the scheme rejects all
raise :class:`~weaktag.errors.ConfigError` naming the file and key. Empty strings (``init: ""``)
mean "not set". The ``scheme`` section is read into the chosen scheme's own parameter dataclass
(:func:`read_scheme`): a key that scheme does not take is an error naming the schemes that take it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from .errors import ConfigError
from .geometry import TimeGrid
from .models import BACKBONES, NECK_RANGES, BackboneConfig, ModelConfig, NeckConfig
from .postprocess import EVENT_OBJECTIVES, OUTPUT_KINDS
from .settings import at_least, blank_as_unset, build, check_fields, choices, dotlist, read_yaml
from .supervision import SCHEMES, SchemeParameters, scheme_parameters, unknown_parameter
from .supervision.mean_teacher import MeanTeacherConfig, batch_split

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
LR_SCHEDULES = ("constant", "cosine")  # see weaktag.training.module.Optimisation


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
    split_seed: int = field(default=0, metadata=at_least(0))
    # clips without labels for the mean teacher (mean_teacher.weight > 0): a folder of audio, a list of
    # audio paths, a manifest .jsonl or a pack; any labels they have are ignored (weaktag.labels.unlabeled)
    unlabeled: Optional[str] = None

    def audio_dir_for(self, split: str) -> Optional[str]:
        """The audio folder of ``split``: its own, else the shared one, else None (the label file's folder)."""
        return getattr(self, f"{split}_audio_dir") or self.audio_dir


#: ModelSection's neck keys and the NeckConfig field each one sets
NECK_KEYS = {"neck": "kind", "neck_channels": "channels", "neck_layers": "layers", "neck_kernel": "kernel",
             "neck_heads": "heads", "dropout": "dropout"}


@dataclass(frozen=True)
class ModelSection(BackboneConfig):
    """The backbone's architecture (:class:`~weaktag.models.BackboneConfig`) and how to initialise it."""

    init: Optional[str] = None  # weights to start from: a weaktag checkpoint or a VGGish state dict
    # leading layers to freeze: VGGish conv layers (the paper froze 3), aisfx blocks (4 = all, features fixed)
    freeze: int = field(default=0, metadata=at_least(0))
    # the trainable neck between backbone and head (weaktag.models.neck): 1-D convolutions over time,
    # a bidirectional GRU or a local transformer; 0 channels: none (the paper's VGGish has its L7 already)
    # (defaults and ranges are NeckConfig's; the fields each key sets: NECK_KEYS)
    neck: str = field(default=NeckConfig.kind, metadata=NECK_RANGES["kind"])
    neck_channels: int = field(default=NeckConfig.channels, metadata=NECK_RANGES["channels"])
    neck_layers: int = field(default=NeckConfig.layers, metadata=NECK_RANGES["layers"])
    neck_kernel: int = field(default=NeckConfig.kernel, metadata=NECK_RANGES["kernel"])  # conv
    neck_heads: int = field(default=NeckConfig.heads, metadata=NECK_RANGES["heads"])  # transformer
    dropout: float = field(default=NeckConfig.dropout, metadata=NECK_RANGES["dropout"])  # in the neck, before the head

    def backbone_config(self) -> BackboneConfig:
        return BackboneConfig(**{f.name: getattr(self, f.name) for f in fields(BackboneConfig)})

    def neck_config(self) -> NeckConfig:
        """The neck of these keys; a rule between them broken: ConfigError naming the ``model.`` key."""
        try:
            return NeckConfig(**{name: getattr(self, key) for key, name in NECK_KEYS.items()})
        except ConfigError as exc:
            key = next((k for k, name in NECK_KEYS.items() if name == exc.key), None)
            if key is None:
                raise
            raise ConfigError(f"model.{key}: {exc.problem}", key=f"model.{key}", problem=exc.problem) from None

    @property
    def grid(self) -> TimeGrid:
        """The network's front end and time grid, as every feature set of this config is cut."""
        return ModelConfig(1, True, self.backbone_config(), self.neck_config()).grid


#: the scheme a config trains when its ``scheme`` section names none
DEFAULT_SCHEME = "attention-self"

#: the old flat scheme section (every scheme's keys in one section, None meaning "the scheme's
#: default"; checkpoints and trial records written before each scheme declared its parameters hold
#: it): its defaults, for the keys that had one
FLAT_SCHEME_DEFAULTS = {"alpha": 1.0, "attention_target": "normalized", "class_weight_beta": 0.0}


def read_scheme(layers: list[tuple[Any, str]]) -> SchemeParameters:
    """The ``scheme`` section ``{name: ..., <its parameters>}`` from config layers ``(mapping or None,
    where)``, read into the scheme's parameter dataclass. Each layer's keys are those of the scheme in
    force when it applies (its own ``name``, else the one before it; first :data:`DEFAULT_SCHEME`):
    ConfigError naming the file and a key that scheme does not take. A layer that names another scheme
    (``scheme.name=mmnet`` over a recipe) keeps the earlier values the new scheme takes, as compare's
    arms do, and leaves out the others (logged). Ranges are checked with the other sections' fields
    (:func:`validate`)."""
    name, named_in = DEFAULT_SCHEME, "config"
    taken: list[tuple[dict, str]] = []  # the layers' values that the scheme in force takes
    for values, where in layers:
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: scheme: expected a mapping (name: ..., and its parameters), not {values!r}")
        if values.get("name") is not None and values["name"] != name:
            name, named_in = values["name"], where
            if name not in SCHEMES:
                raise ConfigError(f"{where}: scheme.name: unknown scheme {name!r}; allowed: {', '.join(SCHEMES)}",
                                  key="scheme.name")
            keys = {f.name for f in fields(SCHEMES[name].Parameters)}
            left_out = [f"scheme.{k} ({earlier})" for layer, earlier in taken for k in layer if k not in keys]
            if left_out:
                log.info("%s: scheme %s does not take %s: left out", where, name, ", ".join(left_out))
            taken = [({k: v for k, v in layer.items() if k in keys}, earlier) for layer, earlier in taken]
        keys = {f.name for f in fields(SCHEMES[name].Parameters)}
        for key in values:
            if key not in keys:
                raise ConfigError(f"{where}: {unknown_parameter(name, str(key))}", key=f"scheme.{key}")
        # None is "not set" (an empty value in YAML): the scheme's default
        taken.append(({k: v for k, v in values.items() if v is not None and k != "name"}, where))
    return build(SCHEMES[name].Parameters, [*taken, ({"name": name}, named_in)], prefix="scheme.")


def from_flat_scheme(values: dict[str, Any], name: str) -> dict[str, Any]:
    """Scheme ``name``'s section (or a trial fingerprint's part of it) as the old flat section wrote it,
    in the current form: None for a key ``name`` takes meant its default, so it becomes that default;
    a key it does not take is dropped when it holds None or the flat section's default
    (:data:`FLAT_SCHEME_DEFAULTS`), which is what every run of that scheme wrote (it ignored them).
    Any other value of a key it does not take is kept, to fail as it would in a config file: a run
    cannot have been made with it. A key ``name`` takes that the section lacks (added to weaktag since)
    is its default, as the run had it."""
    defaults = asdict(scheme_parameters(name)) if name in SCHEMES else {}
    upgraded = {key: value for key, value in defaults.items() if key not in values}
    for key, value in values.items():
        if key in defaults:
            upgraded[key] = defaults[key] if value is None else value
        elif not (value is None or (key in FLAT_SCHEME_DEFAULTS and value == FLAT_SCHEME_DEFAULTS[key])):
            upgraded[key] = value
    return upgraded


#: train-field metadata: what changing the field does. ``LEARNS``: what the run learns (a compare trial
#: or a resumed run with another value is another run); ``EXTENDS``: how long it learns (also a
#: result, but a stopped run may be resumed with a longer one); ``RUNS``: only how it runs.
LEARNS = {"affects_result": True}
EXTENDS = {"affects_result": True, "resume_may_change": True}
RUNS = {"affects_result": False}


@dataclass
class TrainSection:
    """How a run trains. Each field's metadata marks whether it changes the result (:data:`LEARNS`,
    :data:`EXTENDS`, :data:`RUNS`); compare's trial fingerprints and ``--resume`` both read the marks."""

    lr: float = field(default=1e-4, metadata={"min_exclusive": 0.0, **LEARNS})  # the paper's rate for SL-DCASE-17
    batch_size: int = field(default=32, metadata=at_least(1, **LEARNS))  # per device
    max_epochs: int = field(default=50, metadata=at_least(1, **EXTENDS))  # the paper picks the best of 50 epochs
    weight_decay: float = field(default=0.0, metadata=at_least(0.0, **LEARNS))  # > 0: AdamW (decoupled decay)
    lr_schedule: str = field(default="constant", metadata=choices(*LR_SCHEDULES, **LEARNS))  # cosine: to 0 at max_epochs
    warmup_epochs: int = field(default=0, metadata=at_least(0, **LEARNS))
    # stop when validation mAP has not improved for this many epochs (0: run every epoch); the best
    # epoch is kept either way
    early_stopping_patience: int = field(default=0, metadata=at_least(0, **EXTENDS))
    seed: int = field(default=0, metadata=at_least(0, **LEARNS))
    num_workers: int = field(default=0, metadata=at_least(0, **RUNS))
    accelerator: str = field(default="auto", metadata=RUNS)
    # per node: an int, "auto", or a list of GPU ids; several use DDP, and the global batch grows with them
    devices: Any = field(default=1, metadata=LEARNS)
    num_nodes: int = field(default=1, metadata=at_least(1, **LEARNS))
    strategy: str = field(default="auto", metadata=RUNS)  # Lightning's: "ddp" (one process per device), ...
    # batches per optimiser step; batch_size is per device, so a step sees
    # batch_size x devices x num_nodes x accumulate_grad_batches clips
    accumulate_grad_batches: int = field(default=1, metadata=at_least(1, **LEARNS))
    sync_batchnorm: bool = field(default=False, metadata=LEARNS)  # batch-norm statistics over all devices (DDP)
    # deterministic algorithms (a run repeats exactly); false lets cuDNN pick the fastest convolution
    # kernels (cudnn.benchmark), faster on a GPU but not bit-repeatable
    deterministic: bool = field(default=True, metadata=RUNS)
    precision: str = field(default="32-true", metadata=choices(
        "32-true", "32", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "64", **LEARNS))
    logger: str = field(default="csv", metadata=choices("csv", "tensorboard", "none", **RUNS))
    progress: bool = field(default=True, metadata=RUNS)
    # which output scores time for events, stored in the checkpoint: X^a ("segment", the default), the
    # relative attention, their product, either gated by the clip probability ("gated-segment",
    # "gated-attention"), or "auto": the one with the best PSDS1 on strongly labelled validation
    # clips (X^a when validation has no strong labels); see weaktag.postprocess.segment_scores
    event_output: str = field(default="segment", metadata=choices(*OUTPUT_KINDS, "auto", **LEARNS))
    # what the per-class event thresholds are chosen for on validation: segment-level F1 with a fixed
    # median filter, or event-based F1 with a median-filter length per class as well
    event_calibration: str = field(default="segment_f1", metadata=choices(*EVENT_OBJECTIVES, **LEARNS))
    # with event_f1: also choose per class a maximum gap to merge and a minimum event duration
    # (event_durations), and a lower "stay on" threshold (event_hysteresis), on validation
    event_durations: bool = field(default=False, metadata=LEARNS)
    event_hysteresis: bool = field(default=False, metadata=LEARNS)
    # with the whole backbone frozen (and no augmentation that needs log-mel: gain, shift, masks),
    # compute its outputs once and train only the head: the same model, many times faster on a CPU
    cache_frozen_features: bool = field(default=True, metadata=RUNS)
    # a folder that keeps those outputs between runs, named by a digest of the backbone's weights and the
    # inputs, so that another train or compare on the same clips reads them (weaktag.models.feature_cache)
    feature_cache: Optional[str] = field(default=None, metadata=RUNS)

    @classmethod
    def resume_must_match(cls) -> tuple[str, ...]:
        """The fields a resumed run must share with the run it continues."""
        return tuple(f.name for f in fields(cls)
                     if f.metadata.get("affects_result") and not f.metadata.get("resume_may_change"))


@dataclass
class AugmentConfig:
    """Training-batch augmentation (weaktag.training.augment); every one is off by default, as in the paper."""

    gain_db: float = field(default=0.0, metadata=at_least(0.0))  # random gain in [-gain_db, +gain_db] per clip
    shift_seconds: float = field(default=0.0, metadata=at_least(0.0))  # circular time shift, whole segments
    mixup_alpha: float = field(default=0.0, metadata=at_least(0.0))  # Beta(alpha, alpha); 0 = no mixup
    mixup_prob: float = field(default=1.0, metadata={"min": 0.0, "max": 1.0})  # chance a batch is mixed
    time_masks: int = field(default=0, metadata=at_least(0))  # SpecAugment masks per clip ...
    time_mask_frames: int = field(default=0, metadata=at_least(0))  # ... of up to this many frames
    freq_masks: int = field(default=0, metadata=at_least(0))
    freq_mask_bins: int = field(default=0, metadata=at_least(0))


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    # which scheme, and its parameters: an instance of that scheme's parameter dataclass (read_scheme)
    scheme: SchemeParameters = field(default_factory=lambda: scheme_parameters(DEFAULT_SCHEME))
    train: TrainSection = field(default_factory=TrainSection)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    mean_teacher: MeanTeacherConfig = field(default_factory=MeanTeacherConfig)
    output_dir: str = "runs/experiment"

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- loading


def _resolve_paths(raw: dict, folder: Path) -> None:
    """Relative data and weight paths in a YAML are relative to the YAML's folder."""
    data = raw.get("data")
    if isinstance(data, dict):
        for key in (*SPLITS, "unlabeled", "audio_dir", *(f"{s}_audio_dir" for s in SPLITS), "class_labels_indices"):
            value = data.get(key)
            if isinstance(value, str) and value and not Path(value).is_absolute():
                data[key] = str((folder / value).resolve())
    for section, key in (("model", "init"), ("scheme", "teacher")):
        values = raw.get(section)
        if isinstance(values, dict) and isinstance(values.get(key), str) and values[key]:
            if not Path(values[key]).is_absolute():
                values[key] = str((folder / values[key]).resolve())


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
        raw = read_yaml(path)
        _resolve_paths(raw, path.parent)
        where = str(path)
        layers.append((blank_as_unset(raw), where))
    if overrides:
        layers.append((dotlist(overrides), "overrides"))
    config = _build(layers)
    validate(config, where)
    return config


def _build(layers: list[tuple[Any, str]]) -> ExperimentConfig:
    """The config from its layers: the ``scheme`` section by its scheme's class (:func:`read_scheme`),
    the others by :class:`ExperimentConfig`'s fields."""
    plain = [(OmegaConf.to_container(v) if isinstance(v, DictConfig) else v, where) for v, where in layers]
    config = build(ExperimentConfig, [({k: v for k, v in values.items() if k != "scheme"}, where)
                                      if isinstance(values, dict) else (values, where) for values, where in plain])
    config.scheme = read_scheme([(values.get("scheme"), where) for values, where in plain if isinstance(values, dict)])
    return config


#: the data keys a recipe compared on another config's data may set for itself: what it trains on (the
#: evaluation splits and the class list stay the other config's, so the recipes are scored on the same clips)
RECIPE_DATA_KEYS = ("train", "train_audio_dir", "unlabeled")


def recipe_config(base: ExperimentConfig, path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """A recipe on ``base``'s data: the config at ``path`` (with ``overrides``) whose ``data`` section and
    output folder are replaced by ``base``'s, so that two recipes are compared on the same clips; the
    training data the recipe's own YAML names (``RECIPE_DATA_KEYS``, e.g. a labelled subset) it keeps."""
    recipe = load_config(path, overrides)
    raw = read_yaml(config_path(path)).get("data") or {}
    own = {key: getattr(recipe.data, key) for key in RECIPE_DATA_KEYS if isinstance(raw, dict) and key in raw}
    recipe.data = dataclasses.replace(base.data, classes=list(base.data.classes), **own)
    recipe.output_dir = base.output_dir
    return recipe


def config_from_dict(values: dict) -> ExperimentConfig:
    """An experiment config from nested dicts (e.g. a checkpoint's ``experiment``), validated; a scheme
    section in the old flat form is read as :func:`from_flat_scheme` says."""
    values = blank_as_unset(values)
    scheme = values.get("scheme") if isinstance(values, dict) else None
    if isinstance(scheme, dict):
        values = {**values, "scheme": from_flat_scheme(scheme, scheme.get("name", DEFAULT_SCHEME))}
    config = _build([(values, "config")])
    validate(config, "config")
    return config


# --------------------------------------------------------------------------- validation


def validate(config: ExperimentConfig, where: str = "config") -> None:
    """Allowed values and ranges from the fields' metadata, then the scheme and backbone registries."""
    check_fields(config, where)
    if config.data.validation and config.data.validation_fraction > 0:
        raise ConfigError(f"{where}: data.validation_fraction: {config.data.validation_fraction} holds out "
                          "validation clips, but data.validation names them too; set one of the two")
    for key in ("event_durations", "event_hysteresis"):
        if getattr(config.train, key) and config.train.event_calibration != "event_f1":
            raise ConfigError(f"{where}: train.{key}: chosen for event-based F1; set train.event_calibration: event_f1")
    check_mean_teacher(config, where)
    if config.model.backbone not in BACKBONES:
        raise ConfigError(f"{where}: model.backbone: unknown backbone {config.model.backbone!r}; "
                          f"allowed: {', '.join(BACKBONES)}")
    try:  # the backbone's and neck's own rules (aisfx time strides, odd neck kernels, ...)
        config.model.grid
    except ValueError as exc:
        key = getattr(exc, "key", None)  # a neck rule names its model.* key itself
        raise ConfigError(f"{where}: {exc}" if key else f"{where}: model: {exc}", key=key,
                          problem=getattr(exc, "problem", None)) from None
    try:  # the scheme's rules between its parameters (each one's range is its field's, checked above)
        config.scheme.check()
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def check_mean_teacher(config: ExperimentConfig, where: str = "config") -> None:
    """Unlabelled clips train only through the mean teacher, fit in its batches, and a run has one teacher;
    ConfigError naming the keys."""
    mt = config.mean_teacher
    if config.data.unlabeled and not mt.enabled:
        raise ConfigError(f"{where}: data.unlabeled: unlabelled clips train only through the mean teacher's "
                          "consistency loss; set mean_teacher.weight > 0 (DESED: 2), or leave data.unlabeled unset")
    if config.data.unlabeled:
        try:
            batch_split(config.train.batch_size, mt.unlabeled_fraction)
        except ValueError as exc:
            raise ConfigError(f"{where}: mean_teacher.unlabeled_fraction: {exc}") from None
    setting = config.scheme.unlabeled_setting()  # (its data.unlabeled: check_unlabeled_scheme, at training)
    if setting and not mt.enabled:
        raise ConfigError(f"{where}: {setting}: trains on data.unlabeled's clips with the mean teacher's outputs "
                          "as their labels; set mean_teacher.weight > 0 (DESED: 2), or leave it at 0")
    scheme_decay = getattr(config.scheme, "teacher_decay", 0.0)
    if mt.enabled and scheme_decay > 0 and scheme_decay != mt.ema_decay:
        raise ConfigError(f"{where}: scheme.teacher_decay: {scheme_decay} and mean_teacher.ema_decay: {mt.ema_decay} "
                          "describe one teacher; set them equal, or leave scheme.teacher_decay at 0")


def check_unlabeled_scheme(config: ExperimentConfig) -> None:
    """ConfigError when the scheme's loss reads unlabelled clips and data.unlabeled names none. Checked when
    training starts rather than by :func:`validate`: a recipe's data section (compare's, a benchmark probe's) is
    given after its config is loaded."""
    setting = config.scheme.unlabeled_setting()
    if setting and not config.data.unlabeled:
        raise ConfigError(f"{setting}: trains on unlabelled clips, and data.unlabeled names none; set data.unlabeled "
                          "(a folder, list, manifest or pack of clips), or leave it at 0")
