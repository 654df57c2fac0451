"""Backends that run the network on a batch of waveforms: PyTorch, or an exported ONNX graph on onnxruntime.

Both take (B, N) float32 audio at the model's rate and return its segment outputs X^a and X^b
(C x T each; X^b None for pooling models): pooling over time is the engine's job, so chunked
recordings are pooled once over the whole file.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch

from ..audio import LogMel
from ..checkpoint import Checkpoint
from ..models import ModelConfig, WeakTagNet
from ..postprocess import EventSettings
from .export import export_onnx, metadata_of, read_metadata

BackendName = Literal["torch", "onnxruntime"]
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime")


class Backend(Protocol):
    has_attention: bool

    def __call__(self, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...


class TorchBackend:
    """The checkpoint's network in PyTorch, on ``device``."""

    def __init__(self, checkpoint: Checkpoint, device: torch.device) -> None:
        self.model = checkpoint.model.to(device).eval()
        self.device = device
        self.has_attention = self.model.has_attention

    def __call__(self, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        with torch.inference_mode():
            out = self.model(torch.from_numpy(waveforms).to(self.device))
            xa = out.segment_probs.float().cpu().numpy()
            xb = None if out.attention_raw is None else out.attention_raw.float().cpu().numpy()
        return xa, xb


class OnnxBackend:
    """An exported graph (``weaktag export``) on onnxruntime's CPU provider."""

    def __init__(self, path: Path, num_threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ValueError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
        self.meta = metadata_of(self.session, path)
        self.input_name = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        self.has_attention = "attention_raw" in names
        self.outputs = ["segment_probs"] + (["attention_raw"] if self.has_attention else [])
        grid = ModelConfig.from_dict(self.meta["model_config"]).grid
        self.frontend = None if self.meta["frontend"] else LogMel(grid.frontend)

    def __call__(self, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        feed = waveforms
        if self.frontend is not None:
            with torch.inference_mode():
                feed = self.frontend(torch.from_numpy(waveforms)).numpy()
        got = self.session.run(self.outputs, {self.input_name: feed})
        return got[0], (got[1] if self.has_attention else None)


def export_temporary(checkpoint: Checkpoint) -> Path:
    """Export to a fresh temporary folder (for ``backend="onnxruntime"`` without a file)."""
    folder = Path(tempfile.mkdtemp(prefix="weaktag-onnx-"))
    return export_onnx(checkpoint, folder / "model.onnx").path


def checkpoint_from_onnx(path: Path) -> Checkpoint:
    """A weightless stand-in :class:`Checkpoint` built from an exported file's metadata."""
    meta = read_metadata(path)
    config = ModelConfig.from_dict(meta["model_config"])
    # architecture only, never run: no packaged weights needed
    model = WeakTagNet(replace(config, backbone=replace(config.backbone, pretrained=False)))
    return Checkpoint(model=model, classes=list(meta["classes"]), scheme=meta.get("scheme", ""),
                      experiment={}, tag_thresholds=np.asarray(meta["tag_thresholds"], dtype=float),
                      events=EventSettings(**meta["events"]), path=path)
