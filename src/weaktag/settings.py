"""Typed settings: dataclass schemas read from YAML and ``key=value`` overrides, checked from their metadata.

The schemas (experiment configs in :mod:`weaktag.config`, tagging settings in
:mod:`weaktag.inference.settings`, scheme parameters in :mod:`weaktag.supervision`) are plain
dataclasses read through OmegaConf structured configs. We chose OmegaConf over
jsonargparse/LightningCLI because weaktag's configs are used from Python as much as from the
command line (``compare`` and ``demo`` build them, checkpoints store them): OmegaConf gives typed
YAML, ``section.key=value`` dot-list overrides and type coercion (``"false"`` is False) on plain
dataclasses, without tying the config to one CLI parser.

A field's metadata says what it allows, checked by :func:`check_fields`:

* ``choices``: the allowed values;
* ``min`` / ``max`` / ``min_exclusive`` / ``max_exclusive``: its range (a list value: each item);
* ``finite``: no infinity either (a range's one open side would allow it);
* ``affects_result``: whether changing it changes what a run learns (:func:`result_fields`);
  compare's trial fingerprints and ``train --resume`` are both derived from it.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError

T = TypeVar("T")


def choices(*values: str, **more: Any) -> dict[str, Any]:
    """Field metadata: one of ``values``."""
    return {"choices": values, **more}


def at_least(minimum: float, **more: Any) -> dict[str, Any]:
    """Field metadata: ``minimum`` or more."""
    return {"min": minimum, **more}


def result_fields(cls: type, affects: bool = True) -> tuple[str, ...]:
    """The fields of ``cls`` whose metadata marks them as changing a run's result (or, with
    ``affects=False``, as not changing it); a field that is not marked is neither."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("affects_result") is affects)


# --------------------------------------------------------------------------- reading


def read_yaml(path: Path, what: str = "a config") -> dict:
    """A YAML file's top-level mapping; ConfigError naming the file (and line) when it cannot be read."""
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
        raise ConfigError(f"{path}: {what} must be a mapping of sections (data, model, scheme, train)")
    return raw


def dotlist(overrides: list[str]) -> Any:
    """``section.key=value`` overrides as a config layer."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value (e.g. train.lr=0.001)")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"overrides: {str(exc).splitlines()[0]}") from None


def blank_as_unset(raw: Any) -> Any:
    """``""`` means "not set" (None), as in configs and checkpoints written before typed configs."""
    if isinstance(raw, dict):
        return {k: blank_as_unset(v) for k, v in raw.items()}
    return None if raw == "" else raw


def build(cls: type[T], layers: list[tuple[Any, str]], prefix: str = "") -> T:
    """``cls``'s defaults with each ``(values, where)`` layer merged over them in order (types checked);
    errors name a key as ``{prefix}{key}`` (a section read on its own: ``scheme.``)."""
    merged = OmegaConf.structured(cls)
    for values, where in layers:
        merged = _merge(merged, values, where, prefix)
    try:
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:  # e.g. a required value missing
        raise ConfigError(f"{layers[-1][1] if layers else 'config'}: {str(exc).splitlines()[0]}") from None


def _merge(base: Any, extra: Any, where: str, prefix: str = "") -> Any:
    try:
        return OmegaConf.merge(base, extra)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or ""
        message = str(getattr(exc, "msg", None) or exc).splitlines()[0]
        raise ConfigError(f"{where}: {prefix + key + ': ' if key else ''}{message}") from None


# --------------------------------------------------------------------------- checking


def check_fields(node: Any, where: str, prefix: str = "") -> None:
    """Every field of dataclass ``node`` (nested ones too) against its metadata; ConfigError naming the key."""
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            check_fields(value, where, key + ".")
            continue
        check_value(key, value, f.metadata, where)


def check_setting(cls: type, key: str, value: Any, where: str = "tagging settings",
                  labels: list[str] | None = None) -> None:
    """Check a value for field ``key`` of ``cls`` as loading does (for a setting changed later, such as
    a tagger's thresholds); ``labels`` name the items of a list value (the classes)."""
    meta = {f.name: f.metadata for f in dataclasses.fields(cls)}[key]
    if hasattr(value, "tolist"):  # numpy
        value = value.tolist()
    check_value(key, value, meta, where, labels=labels)


def allowed_range(meta: Any) -> str:
    """The range a field's metadata allows, e.g. " (allowed: 0.0 to 1.0)"; "" for a one-sided bound."""
    low = meta.get("min", meta.get("min_exclusive"))
    high = meta.get("max", meta.get("max_exclusive"))
    if low is None or high is None:
        return ""
    return f" (allowed: {low} to {'below ' if 'max_exclusive' in meta else ''}{high})"


def check_value(key: str, value: Any, meta: Any, where: str, shown: str | None = None,
                labels: list[str] | None = None) -> None:
    """One value against field metadata ``meta``; ConfigError ``"{where}: {key}: {problem}"``."""
    if value is None:
        return
    if isinstance(value, (list, tuple)) and any(k in meta for k in ("min", "max", "min_exclusive", "max_exclusive")):
        for i, item in enumerate(value):  # one value per class: name the class
            name = f"{labels[i]}={item!r}" if labels is not None and i < len(labels) else f"item {i + 1}: {item!r}"
            check_value(key, item, meta, where, shown=name)
        return
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalars
        value = value.item()
    nan_prefix = f"{shown}: " if shown else ""
    shown = shown or repr(value)

    def fail(problem: str) -> None:
        raise ConfigError(f"{where}: {key}: {problem}", key=key, problem=problem)

    if isinstance(value, float) and math.isnan(value):
        fail(f"{nan_prefix}nan is not a number it can use")
    if meta.get("finite") and isinstance(value, float) and math.isinf(value):
        fail(f"{shown} is not a finite number{allowed_range(meta)}")
    if "choices" in meta and value not in meta["choices"]:
        fail(f"{shown} is not allowed; allowed: {', '.join(meta['choices'])}")
    allowed = allowed_range(meta)
    if "min" in meta and value < meta["min"]:
        fail(f"{shown} is below its minimum {meta['min']}{allowed}")
    if "max" in meta and value > meta["max"]:
        fail(f"{shown} is above its maximum {meta['max']}{allowed}")
    if "max_exclusive" in meta and value >= meta["max_exclusive"]:
        fail(f"{shown} must be below {meta['max_exclusive']}{allowed}")
    if "min_exclusive" in meta and value <= meta["min_exclusive"]:
        fail(f"{shown} must be above {meta['min_exclusive']}{allowed}")
