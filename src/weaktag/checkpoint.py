"""The weaktag checkpoint: everything needed to tag audio with a trained model, in one file.

It is a plain ``torch.save`` of primitive types and tensors, so it loads with
``weights_only=True`` (no pickled code runs when a user opens a checkpoint from elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .models import ModelConfig, WeakTagNet

FORMAT = "weaktag-checkpoint/1"


@dataclass
class EventSettings:
    """How segment outputs become events (used by evaluation and ``weaktag tag``)."""

    output: str = "segment"  # which matrix scores time: "segment" (X^a), "attention" or "product"
    thresholds: list[float] = field(default_factory=list)  # per class; empty: use 0.5
    median_filter_seconds: float = 0.48  # 3 segments of 0.16 s

    def to_dict(self) -> dict:
        return {"output": self.output, "thresholds": list(self.thresholds), "median_filter_seconds": self.median_filter_seconds}


@dataclass
class Checkpoint:
    model: WeakTagNet
    classes: list[str]
    scheme: str
    experiment: dict  # the ExperimentConfig as a dict, for the record
    tag_thresholds: np.ndarray  # (C,) clip-level thresholds chosen on validation
    events: EventSettings
    metrics: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def save_checkpoint(path: str | Path, model: WeakTagNet, classes: list[str], scheme: str, experiment: dict,
                    tag_thresholds: np.ndarray | None = None, events: EventSettings | None = None,
                    metrics: dict | None = None) -> Path:
    """Write atomically (temp file + rename) so an interrupted save never corrupts a good checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    thresholds = np.full(len(classes), 0.5) if tag_thresholds is None else np.asarray(tag_thresholds, dtype=float)
    payload = {
        "format": FORMAT,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "classes": list(classes),
        "scheme": scheme,
        "experiment": experiment,
        "tag_thresholds": [float(t) for t in thresholds],
        "events": (events or EventSettings()).to_dict(),
        "metrics": _plain(metrics or {}),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable weaktag checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a weaktag checkpoint (expected format {FORMAT!r})")
    model = WeakTagNet(ModelConfig(**payload["model_config"]))
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return Checkpoint(
        model=model,
        classes=list(payload["classes"]),
        scheme=payload["scheme"],
        experiment=payload["experiment"],
        tag_thresholds=np.asarray(payload["tag_thresholds"], dtype=float),
        events=EventSettings(**payload["events"]),
        metrics=payload.get("metrics", {}),
        path=path,
    )


def _plain(value: Any) -> Any:
    """Numpy scalars/arrays -> Python types, so the payload stays weights_only-loadable."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
