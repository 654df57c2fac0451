"""Transfer learning (the paper's Fig. 3): start a network from pretrained weights.

* One-step transfer: VGGish conv weights (its PyTorch port's state dict, keys
  ``features.<i>.weight`` / ``features.<i>.bias``) into L1-L6.
* Two-step transfer: a weaktag checkpoint (e.g. a pooling model fine-tuned on AudioSet)
  into L1-L7; the L8 head is not transferred because the class list changes.

Weights are never downloaded here: the user passes a file they have.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import torch

from ..errors import CheckpointError
from .network import WeakTagNet


def vggish_to_backbone(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Pick the conv weights of a VGGish port state dict, renamed to ``backbone.features.*``.

    The port numbers its ``features`` Sequential exactly as :data:`VGGISH_LAYOUT` does
    (conv, ReLU, and pool modules each take an index), so indices carry over unchanged.
    Its fully connected ``embeddings.*`` layers have no counterpart and are dropped.
    """
    return {f"backbone.{k}": v for k, v in state_dict.items() if k.startswith("features.")}


def load_weights_file(path: str | Path, what: str) -> object:
    """``torch.load`` with ``weights_only=True`` (a file from elsewhere never runs code), and errors in one line.

    The reason never repeats PyTorch's advice to load unsafely: a file that needs that is
    refused, not opened another way. ``what`` names the expected kind in the message.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what.removeprefix('a ')} not found")
    if path.is_dir():
        raise CheckpointError(f"not {what}: {path} (it is a directory)")
    with path.open("rb") as f:
        head = f.read(4)
    # torch.save writes a zip archive (or, before PyTorch 1.6, a pickle): judge anything else by its
    # first bytes, so a text or audio file is never handed to the unpickler, whose errors talk about
    # pickle opcodes and suggest weights_only=False
    if not head:
        raise CheckpointError(f"not {what}: {path} (empty file)")
    if not (head.startswith(b"PK\x03\x04") or head.startswith(b"\x80")):
        raise CheckpointError(f"not {what}: {path} (not a PyTorch file)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4 ... please file an issue"
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" in str(exc):  # "Unsupported global" / "... was not an allowed global"
            raise CheckpointError(f"not {what}: {path} (it holds Python objects beyond tensors and plain values, "
                                  "which weaktag does not load)") from None
        raise CheckpointError(f"not {what}: {path} (a pickle, not a PyTorch file of tensors)") from None
    except Exception:  # a zip that is not a torch archive, a truncated download ...
        raise CheckpointError(f"not {what}: {path} (damaged, truncated or not a PyTorch file)") from None


def initialise_from(model: WeakTagNet, path: str | Path) -> list[str]:
    """Load matching backbone (and neck) weights from ``path`` into ``model``; returns the names loaded.

    Raises CheckpointError (a ValueError) naming the file when nothing matches or a shape disagrees (e.g. a
    narrow model given full-size VGGish weights).
    """
    path = Path(path)
    payload = load_weights_file(path, "a weaktag checkpoint or VGGish state dict")
    if isinstance(payload, dict) and payload.get("format", "").startswith("weaktag-checkpoint"):
        # the backbone and the trainable neck (L7's role for a backbone without one): the paper's
        # transfer keeps everything below the head, L1-L7
        source = {k: v for k, v in payload["state_dict"].items() if k.startswith(("backbone.", "neck."))}
    elif isinstance(payload, dict) and any(k.startswith("features.") for k in payload):
        source = vggish_to_backbone(payload)
    else:
        raise CheckpointError(f"{path}: neither a weaktag checkpoint nor a VGGish state dict (no 'features.*' keys)")
    target = model.state_dict()
    loaded = []
    for name, tensor in source.items():
        if name not in target:
            continue
        if target[name].shape != tensor.shape:
            raise CheckpointError(f"{path}: {name} has shape {tuple(tensor.shape)}, the model expects "
                                  f"{tuple(target[name].shape)} (is model.width the same as the source's?)")
        target[name] = tensor
        loaded.append(name)
    if not loaded:
        raise CheckpointError(f"{path}: no weight matches the model's backbone")
    model.load_state_dict(target)
    return loaded
