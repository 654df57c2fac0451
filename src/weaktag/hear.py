"""The field's embedding interfaces on weaktag models: the HEAR API and an X-ARES audio encoder.

HEAR (Turian et al., 2022, hearbenchmark.com) calls a module with three functions::

    import weaktag.hear as hear
    model = hear.load_model("runs/mine/model.pt")   # "" or "aisfx": the bare pretrained aisfx backbone
    scene = hear.get_scene_embeddings(audio, model)  # audio (n_sounds, n_samples) at model.sample_rate
    emb, ts = hear.get_timestamp_embeddings(audio, model)  # (n, T, D) and (n, T) milliseconds

The embeddings are those of :mod:`weaktag.inference.embedding` (the features that feed a checkpoint's head,
or the bare backbone's outputs; the scene embedding is their mean over time), computed by the same engine
as ``weaktag tag`` and ``weaktag embed``: one path from audio to features. Timestamps are the centres of
the model's segments, ``(t + 0.5) * segment_seconds * 1000``. Sounds are embedded in batches; silence is
embedded, not refused; a sound shorter than 0.1 s raises :class:`~weaktag.audio.AudioError`.

:class:`XaresEncoder` is the same model under X-ARES's encoder interface: ``sampling_rate``, ``output_dim``,
``hop_size_in_ms`` and ``forward(audio (B, N)) -> (B, T, D)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .audio import AudioError
from .inference.embedding import Embedder, Embedding

#: ``load_model``'s names for a bare pretrained backbone instead of a checkpoint path
BARE_BACKBONES = ("", "aisfx")


class HearModel(nn.Module):
    """A weaktag embedder as a HEAR model: ``sample_rate``, ``scene_embedding_size``, ``timestamp_embedding_size``.

    The network is a submodule, so ``model.to("cuda")`` moves it (and the embedding runs there)."""

    def __init__(self, embedder: Embedder) -> None:
        super().__init__()
        self.embedder = embedder
        self.network = embedder.model
        self.sample_rate: int = embedder.grid.sample_rate
        self.scene_embedding_size: int = embedder.dimension
        self.timestamp_embedding_size: int = embedder.dimension

    def embed_sounds(self, audio: torch.Tensor) -> list[Embedding]:
        """(n_sounds, n_samples) mono audio at :attr:`sample_rate` -> one :class:`Embedding` per sound."""
        if audio.ndim != 2:
            raise ValueError(f"HEAR audio is (n_sounds, n_samples), not a tensor of shape {tuple(audio.shape)}")
        waves = audio.detach().to("cpu", torch.float32).numpy()
        results = self.embedder.embed_arrays(list(waves), [f"sound {i}" for i in range(len(waves))])
        for result in results:
            if not isinstance(result, Embedding):
                raise AudioError(result.source, result.reason)
        return results  # type: ignore[return-value]

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Timestamp embeddings (n, T, D) float32 and timestamps (n, T) float32 in ms, on ``audio``'s device."""
        found = self.embed_sounds(audio)
        embeddings = torch.from_numpy(np.stack([e.segments for e in found]))
        timestamps = torch.from_numpy(np.stack([e.timestamps_ms for e in found]).astype(np.float32))
        return embeddings.to(audio.device), timestamps.to(audio.device)


def load_model(model_file_path: str = "", device: str | None = None, **options: Any) -> HearModel:
    """A HEAR model: a weaktag checkpoint (``.pt``), or ``""`` / ``"aisfx"`` for the bare pretrained aisfx backbone.

    ``options`` are :class:`~weaktag.inference.Embedder`'s (``chunk_seconds``, ``batch_size``, ...)."""
    options = {"skip_silent": False, **options}
    path = str(model_file_path)
    if path in BARE_BACKBONES:
        embedder = Embedder.from_backbone("aisfx", device, **options)
    else:
        embedder = Embedder.from_checkpoint(Path(path), device, **options)
    return HearModel(embedder).eval()


def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    """HEAR: (n_sounds, n_samples) -> embeddings (n_sounds, n_timestamps, D) float32 and timestamps
    (n_sounds, n_timestamps) float32, the centres of the segments in milliseconds, increasing."""
    return model(audio)


def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """HEAR: (n_sounds, n_samples) -> (n_sounds, D) float32, each sound's mean segment embedding."""
    found = model.embed_sounds(audio)
    return torch.from_numpy(np.stack([e.clip for e in found])).to(audio.device)


class XaresEncoder(nn.Module):
    """A weaktag checkpoint (or ``""`` / ``"aisfx"``: the bare aisfx backbone) as an X-ARES audio encoder.

    ``forward(audio)``: (B, N) or (N,) mono audio at ``sampling_rate`` -> (B, T, ``output_dim``) float32, one
    row per segment of ``hop_size_in_ms``."""

    def __init__(self, model_file_path: str = "", device: str | None = None, **options: Any) -> None:
        super().__init__()
        self.model = load_model(model_file_path, device, **options)
        self.sampling_rate: int = self.model.sample_rate
        self.output_dim: int = self.model.timestamp_embedding_size
        self.hop_size_in_ms: float = self.model.embedder.segment_seconds * 1000.0

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.ndim == 1:
            audio = audio.unsqueeze(0)
        embeddings, _ = self.model(audio)
        return embeddings
