"""The weaktag checkpoint: everything needed to tag audio with a trained model, in one file.

It is a plain ``torch.save`` of primitive types and tensors, so it loads with
``weights_only=True`` (no pickled code runs when a user opens a checkpoint from elsewhere).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import CheckpointError
from .files import atomic_path, plain
from .models import ModelConfig, WeakTagNet
from .models.transfer import load_weights_file
from .postprocess import EventSettings
from .provenance import TrainingData
from .version import weaktag_version

FORMAT = "weaktag-checkpoint/1"


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
    data: TrainingData | None = None  # the clips it was trained on (None: written before weaktag kept them)
    weaktag_version: str | None = None  # the weaktag that wrote it (None: written before weaktag kept it)


def save_checkpoint(path: str | Path, model: WeakTagNet, classes: list[str], scheme: str, experiment: dict,
                    tag_thresholds: np.ndarray | None = None, events: EventSettings | None = None,
                    metrics: dict | None = None, data: TrainingData | None = None) -> Path:
    """Write atomically (temp file + rename) so an interrupted save never corrupts a good checkpoint.

    ``data``: the clip counts of the run's splits, for the model card; the running weaktag's version is
    recorded too."""
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
        # numpy -> Python so the payload stays weights_only-loadable; NaN stays NaN (a float)
        "metrics": plain(metrics or {}, nan=float("nan")),
        "data": None if data is None else data.to_dict(),
        "weaktag_version": weaktag_version(),
    }
    with atomic_path(path) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as exc:  # torch's zip writer reports a failed write (a full disk) this way
            if "PytorchStreamWriter" not in str(exc):
                raise
            raise OSError(errno.EIO, f"cannot write the checkpoint ({' '.join(str(exc).split())[-120:]})",
                          str(tmp)) from exc
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` (safely: no pickled code runs).

    Anything else raises CheckpointError (a ValueError) "not a weaktag checkpoint: FILE (why)".
    """
    path = Path(path)
    payload = load_weights_file(path, "a weaktag checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"not a weaktag checkpoint: {path} (a PyTorch file without weaktag's format tag)")
    try:
        config = ModelConfig.from_dict(payload["model_config"])
        # the checkpoint brings every weight: never load a backbone's packaged weights first
        model = WeakTagNet(replace(config, backbone=replace(config.backbone, pretrained=False)))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"not a weaktag checkpoint: {path} (damaged: {type(exc).__name__}: {reason})") from None
    model.to(map_location).eval()
    return Checkpoint(
        model=model,
        classes=list(payload["classes"]),
        scheme=payload["scheme"],
        experiment=payload["experiment"],
        tag_thresholds=np.asarray(payload["tag_thresholds"], dtype=float),
        events=EventSettings(**payload["events"]),
        metrics=payload.get("metrics", {}),
        path=path,
        data=_training_data(payload.get("data"), path),
        weaktag_version=payload.get("weaktag_version"),
    )


def _training_data(values: Any, path: Path) -> TrainingData | None:
    if values is None:  # a checkpoint from before weaktag kept its data's counts
        return None
    try:
        return TrainingData.from_dict(values)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"not a weaktag checkpoint: {path} (damaged training data summary: "
                              f"{type(exc).__name__}: {exc})") from None
