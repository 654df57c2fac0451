"""A folder of a frozen backbone's outputs kept between runs (``train.feature_cache``).

Computing a frozen pretrained backbone's outputs is most of a CPU run's first minutes (aisfx: about 3 min
for 800 ten-second clips on 2 cores), and every ``weaktag train`` or ``compare`` on the same clips did it
again. With a cache folder, each split's outputs are stored as one file named by a SHA-256 digest of what
they are computed from: the backbone's weights and buffers, and the log-mel inputs themselves (their bytes,
shape and dtype). So another backbone, other weights, other clips, crops, front end or time grid is
another file, and a stale entry cannot be read for changed inputs. A file that cannot be read is computed
again (a warning names it), never trusted.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Callable

import torch

from ..files import atomic_path

log = logging.getLogger(__name__)

#: the layout of a cache file; part of every digest, so a new layout never reads an old file
FORMAT = "weaktag-features/1"


def _add(digest: "hashlib._Hash", name: str, value: torch.Tensor) -> None:
    digest.update(f"{name}:{tuple(value.shape)}:{value.dtype};".encode())
    digest.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())


def _backbone_digest(backbone: torch.nn.Module) -> "hashlib._Hash":
    digest = hashlib.sha256(FORMAT.encode())
    for name, value in backbone.state_dict().items():
        _add(digest, name, value)
    return digest


def _with_inputs(backbone: "hashlib._Hash", inputs: torch.Tensor) -> str:
    digest = backbone.copy()
    _add(digest, "inputs", inputs)
    return digest.hexdigest()


def features_digest(backbone: torch.nn.Module, inputs: torch.Tensor) -> str:
    """SHA-256 of the backbone's state (names, shapes, dtypes, values) and of ``inputs``."""
    return _with_inputs(_backbone_digest(backbone), inputs)


class FeatureCache:
    """One frozen backbone's outputs in ``folder``: looked up by the digest of the backbone and the inputs,
    computed and stored on a miss. The backbone is hashed once, so each lookup hashes only its inputs (the
    Tagger looks up every batch of chunks)."""

    def __init__(self, folder: str | Path, backbone: torch.nn.Module) -> None:
        self.folder = Path(folder)
        self._backbone = _backbone_digest(backbone)

    def outputs(self, inputs: torch.Tensor, compute: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, Path | None]:
        """The backbone's outputs for ``inputs``, and the file they were read from (None when ``compute``
        made them, and they were stored)."""
        path = cache_file(self.folder, _with_inputs(self._backbone, inputs))
        cached = load_features(path, len(inputs))
        if cached is not None:
            return cached, path
        computed = compute()
        store_features(path, computed)
        return computed, None


def cache_file(folder: str | Path, digest: str) -> Path:
    return Path(folder) / f"{digest}.pt"


def load_features(path: Path, clips: int) -> torch.Tensor | None:
    """The cached outputs of ``clips`` clips at ``path``, or None when there is no usable file."""
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        features = saved["features"]
        if saved.get("format") != FORMAT or not isinstance(features, torch.Tensor) or len(features) != clips:
            raise ValueError("not a cache file of this layout and clip count")
    except Exception as exc:  # a torn or foreign file: computed again, never used
        log.warning("feature cache %s is unreadable (%s); computing these features again", path, exc)
        return None
    return features


def store_features(path: Path, features: torch.Tensor) -> Path:
    """Write ``features`` to ``path`` atomically (a stopped run leaves no partial file)."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "features": features.detach().cpu().contiguous()}, tmp)
    return path
