"""Experiment configuration: YAML files with ``section.key=value`` overrides from the CLI."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml


@dataclass
class DataConfig:
    train: str = ""  # label file (DCASE TSV, manifest .jsonl, folder, ...); see weaktag.labels.read_labels
    validation: str = ""
    test: str = ""
    audio_dir: str = ""  # where audio lives when the label file names only files
    classes: list[str] = field(default_factory=list)  # empty: all labels seen in train


@dataclass
class ModelSection:
    width: float = 1.0  # channel multiplier; 1.0 = the paper's VGGish-size network
    l7_channels: int = 1024
    freq_pool: str = "max"
    batch_norm: bool = False  # off as in VGGish; the narrow CPU recipes turn it on
    init: str = ""  # path to weights to start from: a weaktag checkpoint or a VGGish state dict
    freeze: int = 0  # number of leading conv layers to freeze (the paper froze 3 for AudioSet)


@dataclass
class SchemeSection:
    name: str = "attention-self"
    alpha: float = 1.0
    attention_target: str = "normalized"  # or "raw": L_att on X^b before normalisation


@dataclass
class TrainSection:
    lr: float = 1e-4  # the paper's rate for SL-DCASE-17 (1e-3 for AudioSet)
    batch_size: int = 32
    max_epochs: int = 50  # the paper picks the best of the first 50 epochs on validation
    seed: int = 0
    num_workers: int = 0
    accelerator: str = "auto"
    devices: Any = 1  # an int, "auto", or a list of GPU ids; >1 GPUs uses DDP
    strategy: str = "auto"
    precision: str = "32-true"
    logger: str = "csv"  # "csv", "tensorboard" or "none"
    progress: bool = True


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=ModelSection)
    scheme: SchemeSection = field(default_factory=SchemeSection)
    train: TrainSection = field(default_factory=TrainSection)
    output_dir: str = "runs/experiment"

    def to_dict(self) -> dict:
        return asdict(self)


def _build(cls: type, values: dict, where: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ValueError(f"{where}.{name} must be a mapping")
            kwargs[name] = _build(hint, value, f"{where}.{name}")
        else:
            kwargs[name] = _coerce(value, hint, f"{where}.{name}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{where} must be a number, not {value!r}") from None
    if hint is int and isinstance(value, bool):
        raise ValueError(f"{where} must be an integer, not {value!r}")
    if hint is int and not isinstance(value, int):
        raise ValueError(f"{where} must be an integer, not {value!r}")
    if hint is str and not isinstance(value, str):
        return str(value)
    return value


def parse_overrides(overrides: list[str]) -> dict:
    """``["train.lr=1e-3", "scheme.name=attention"]`` -> nested dict (values parsed as YAML)."""
    nested: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value (e.g. train.lr=0.001)")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML config (relative data paths are resolved against the YAML's folder) and apply overrides."""
    raw: dict = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: config file not found")
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: a config must be a mapping of sections")
        data = raw.get("data") or {}
        for key in ("train", "validation", "test", "audio_dir"):
            value = data.get(key)
            if value and not Path(value).is_absolute():
                data[key] = str((path.parent / value).resolve())
    merged = _merge(raw, parse_overrides(overrides or []))
    return _build(ExperimentConfig, merged, str(path) if path else "config")


def config_from_dict(values: dict) -> ExperimentConfig:
    return _build(ExperimentConfig, values, "config")
