"""Backends that run the network on a batch of waveforms: PyTorch, or an exported ONNX graph on onnxruntime.

Both take (B, N) float32 audio at the model's rate and return its segment outputs X^a and the
head's other per-segment pooling inputs (:func:`weaktag.models.pool_inputs`: X^b for attention
models, macro and attention logits for M&mnet, None for pooling models): pooling over time is
the engine's job, so chunked recordings are pooled once over the whole file.

``backend.launch(batch)`` starts a forward pass and returns a function that waits for its outputs:
on CUDA the host-to-device copy (from pinned memory, see ``host_batch``), the network and the copy
back are queued without waiting, so the engine finishes the previous batch while the GPU works.
On the CPU (and on onnxruntime) ``launch`` computes at once.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Literal, Protocol

import numpy as np
import torch

from ..audio import LogMel
from ..checkpoint import Checkpoint
from ..errors import CheckpointError, UsageError
from ..models import ModelConfig, ModelOutput, WeakTagNet, pool_inputs
from ..models.feature_cache import FeatureCache
from ..postprocess import EventSettings
from .export import metadata_of, read_metadata

BackendName = Literal["torch", "onnxruntime"]
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime")
Outputs = tuple[np.ndarray, np.ndarray | None]  # X^a, pool inputs (X^b; None for pooling models)
CUDA_PROVIDER = "CUDAExecutionProvider"


class Backend(Protocol):
    has_attention: bool

    def __call__(self, waveforms: np.ndarray) -> Outputs: ...

    def launch(self, waveforms: np.ndarray) -> Callable[[], Outputs]: ...

    def host_batch(self, rows: int, width: int) -> np.ndarray: ...


def resolve_device(device: str | torch.device, backend: BackendName = "torch") -> torch.device:
    """``device`` as a :class:`torch.device`, or a one-line ValueError when this machine cannot tag on it.

    cpu always works; cuda and cuda:N need a CUDA build of PyTorch with that GPU visible (torch
    backend) or onnxruntime's CUDAExecutionProvider (onnxruntime backend).
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(f"device {str(device)!r} is not a device name (use cpu, cuda or cuda:N)") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise UsageError(f"device {str(device)!r}: weaktag tags on cpu or cuda[:N], not {dev.type}")
    if backend == "onnxruntime":
        import onnxruntime as ort

        providers = ort.get_available_providers()
        if CUDA_PROVIDER not in providers:
            raise UsageError(f"device {str(device)!r}: onnxruntime {ort.__version__} here has no {CUDA_PROVIDER} "
                             f"(it has {', '.join(providers)}); install onnxruntime-gpu, or use the torch backend "
                             "or device cpu")
        return dev
    if not torch.cuda.is_available():
        why = ("this PyTorch is a CPU-only build" if torch.version.cuda is None
               else "PyTorch sees no CUDA GPU")
        raise UsageError(f"device {str(device)!r}: CUDA is not available on this machine ({why}, torch "
                         f"{torch.__version__}); use device cpu")
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        raise UsageError(f"device {str(device)!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return dev


class _Synchronous:
    """``launch`` and ``host_batch`` for a backend that computes as soon as it is called."""

    def __call__(self, waveforms: np.ndarray) -> Outputs:
        raise NotImplementedError

    def launch(self, waveforms: np.ndarray) -> Callable[[], Outputs]:
        outputs = self(waveforms)
        return lambda: outputs

    def host_batch(self, rows: int, width: int) -> np.ndarray:
        """An uninitialised (rows, width) float32 input buffer (the engine fills every sample)."""
        return np.empty((rows, width), dtype=np.float32)


class TorchBackend(_Synchronous):
    """The checkpoint's network in PyTorch, on ``device``.

    ``feature_cache`` (CPU only): a folder of backbone outputs (:mod:`weaktag.models.feature_cache`), keyed by
    the backbone's weights and each batch's log-mel inputs. A comparison evaluates many heads over one frozen
    backbone on the same test recordings; with the cache the backbone runs on them once, and every other
    trial reads its outputs. Other weights or other audio give other keys, so nothing stale is read."""

    def __init__(self, checkpoint: Checkpoint, device: torch.device,
                 feature_cache: str | Path | None = None) -> None:
        self.model = checkpoint.model.to(device).eval()
        self.device = device
        self.cuda = device.type == "cuda"
        self.has_attention = self.model.has_attention
        self.feature_cache = None if self.cuda or feature_cache is None else FeatureCache(feature_cache,
                                                                                         self.model.backbone)

    def __call__(self, waveforms: np.ndarray) -> Outputs:
        return self.launch(waveforms)()

    def host_batch(self, rows: int, width: int) -> np.ndarray:
        if not self.cuda:
            return super().host_batch(rows, width)
        # pinned (page-locked), so the copy to the GPU is a DMA that does not wait for the host;
        # PyTorch caches pinned blocks, so equal-sized batches reuse them
        return torch.empty((rows, width), dtype=torch.float32, pin_memory=True).numpy()

    def launch(self, waveforms: np.ndarray) -> Callable[[], Outputs]:
        if not self.cuda:
            with torch.inference_mode():
                out = self._forward_cached(torch.from_numpy(waveforms))
                xa = out.segment_probs.float().cpu().numpy()
                pooled = pool_inputs(self.model.config, out)
                xb = None if pooled is None else pooled.float().cpu().numpy()
            return lambda: (xa, xb)
        with torch.inference_mode(), torch.cuda.device(self.device):
            host = torch.from_numpy(waveforms)
            if not host.is_pinned():  # e.g. the chunks of a long file: pin them (one host copy)
                host = host.pin_memory()
            out = self.model(host.to(self.device, non_blocking=True))
            # non-blocking copies to the CPU land in pinned memory; the event says when they are done
            xa = out.segment_probs.float().to("cpu", non_blocking=True)
            pooled = pool_inputs(self.model.config, out)
            xb = None if pooled is None else pooled.float().to("cpu", non_blocking=True)
            done = torch.cuda.Event()
            done.record()
        return _CudaPending(host, done, xa, xb)

    def _forward_cached(self, waveforms: torch.Tensor) -> ModelOutput:
        if self.feature_cache is None:
            return self.model(waveforms)
        logmel = self.model.frontend(waveforms)
        embedded, _ = self.feature_cache.outputs(logmel, lambda: self.model.embed(logmel))
        return self.model.forward_level(embedded, "backbone")


class _CudaPending:
    """Outputs of a queued CUDA forward pass; calling it waits for them."""

    def __init__(self, host: torch.Tensor, done: torch.cuda.Event, xa: torch.Tensor, xb: torch.Tensor | None) -> None:
        self.host = host  # the pinned input must outlive its asynchronous copy to the GPU
        self.done, self.xa, self.xb = done, xa, xb

    def __call__(self) -> Outputs:
        self.done.synchronize()
        self.host = None
        # copied out of pinned memory: results live on in TagResults, pinned blocks go back to the cache
        return self.xa.numpy().copy(), None if self.xb is None else self.xb.numpy().copy()


class OnnxBackend(_Synchronous):
    """An exported graph (``weaktag export``) on onnxruntime: its CPU provider, or CUDA's for a cuda device."""

    def __init__(self, path: Path, num_threads: int | None = None, device: torch.device | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        cuda = device is not None and device.type == "cuda"
        providers: list = ["CPUExecutionProvider"]
        if cuda:
            providers.insert(0, (CUDA_PROVIDER, {"device_id": device.index or 0}))
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:
            raise CheckpointError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
        # onnxruntime falls back to the CPU (with a log line) when the CUDA provider cannot start
        if cuda and self.session.get_providers()[0] != CUDA_PROVIDER:
            raise UsageError(f"{path}: onnxruntime could not start {CUDA_PROVIDER} on {device} "
                             f"(running: {', '.join(self.session.get_providers())}); use device cpu")
        self.meta = metadata_of(self.session, path)
        self.input_name = self.session.get_inputs()[0].name
        names = [o.name for o in self.session.get_outputs()]
        self.has_attention = "attention_raw" in names
        if "micro_logits" in names:  # M&mnet: its pool inputs are the macro and attention logits, stacked
            self.outputs = ["segment_probs", "macro_logits", "micro_logits"]
        else:
            self.outputs = ["segment_probs"] + (["attention_raw"] if self.has_attention else [])
        grid = ModelConfig.from_dict(self.meta["model_config"]).grid
        self.frontend = None if self.meta["frontend"] else LogMel(grid.frontend)

    def __call__(self, waveforms: np.ndarray) -> Outputs:
        feed = waveforms
        if self.frontend is not None:
            with torch.inference_mode():
                feed = self.frontend(torch.from_numpy(waveforms)).numpy()
        got = self.session.run(self.outputs, {self.input_name: feed})
        if len(got) > 2:
            return got[0], np.concatenate(got[1:], axis=1)  # the layout of weaktag.models.pool_inputs
        return got[0], (got[1] if self.has_attention else None)


def checkpoint_from_onnx(path: Path) -> Checkpoint:
    """A weightless stand-in :class:`Checkpoint` built from an exported file's metadata."""
    meta = read_metadata(path)
    config = ModelConfig.from_dict(meta["model_config"])
    # architecture only, never run: no packaged weights needed
    model = WeakTagNet(replace(config, backbone=replace(config.backbone, pretrained=False)))
    return Checkpoint(model=model, classes=list(meta["classes"]), scheme=meta.get("scheme", ""),
                      experiment={}, tag_thresholds=np.asarray(meta["tag_thresholds"], dtype=float),
                      events=EventSettings(**meta["events"]), path=path)
