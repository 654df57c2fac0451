"""Tag recordings with a trained checkpoint: clip tags plus segment-level X^a and attention A."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .audio import SAMPLE_RATE, load_audio
from .checkpoint import Checkpoint, load_checkpoint
from .models import segment_duration


@dataclass
class TagResult:
    """What the model says about one recording."""

    source: str
    duration: float  # seconds
    classes: list[str]
    clip_probs: np.ndarray  # (C,)
    segment_probs: np.ndarray  # (C, T) X^a
    attention: np.ndarray | None  # (C, T) A, or None for pooling models
    segment_seconds: float

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        order = np.argsort(-self.clip_probs)[:k]
        return [(self.classes[i], float(self.clip_probs[i])) for i in order]

    def above(self, thresholds: np.ndarray) -> list[tuple[str, float]]:
        idx = np.flatnonzero(self.clip_probs >= thresholds)
        idx = idx[np.argsort(-self.clip_probs[idx])]
        return [(self.classes[i], float(self.clip_probs[i])) for i in idx]


class Tagger:
    """``Tagger.from_checkpoint(path).tag(path_or_array)``."""

    def __init__(self, checkpoint: Checkpoint, device: str | torch.device = "cpu") -> None:
        self.checkpoint = checkpoint
        self.device = torch.device(device)
        self.model = checkpoint.model.to(self.device).eval()

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> "Tagger":
        return cls(load_checkpoint(path), device)

    @property
    def classes(self) -> list[str]:
        return self.checkpoint.classes

    @torch.no_grad()
    def tag(self, audio: str | Path | np.ndarray, name: str | None = None) -> TagResult:
        """Tag a file (any format :func:`load_audio` reads) or a 16 kHz mono float array."""
        if isinstance(audio, np.ndarray):
            wave, source = audio.astype(np.float32, copy=False), name or "<array>"
        else:
            wave, source = load_audio(audio, allow_silent=True), str(audio)
        x = torch.from_numpy(wave).to(self.device).unsqueeze(0)
        if x.shape[1] < 400:  # shorter than one 25 ms window: pad so the front end yields a frame
            x = torch.nn.functional.pad(x, (0, 400 - x.shape[1]))
        out = self.model(x)
        return TagResult(
            source=source,
            duration=len(wave) / SAMPLE_RATE,
            classes=self.classes,
            clip_probs=out.clip_probs[0].cpu().numpy(),
            segment_probs=out.segment_probs[0].cpu().numpy(),
            attention=None if out.attention is None else out.attention[0].cpu().numpy(),
            segment_seconds=segment_duration(),
        )
