"""Audio loading (any file -> mono float32 at 16 kHz) and the VGGish log-mel front end.

Front-end conventions follow VGGish: 16 kHz, 25 ms Hann window (400 samples), 10 ms hop
(160 samples), no centring, 64 mel bands between 125 and 7500 Hz (HTK mel scale),
``log(mel + 0.01)``. A 10 s clip gives ``1 + (160000 - 400) // 160 = 998`` frames.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
from torch import nn

SAMPLE_RATE = 16_000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512  # next power of two above the window, as VGGish
N_MELS = 64
F_MIN = 125.0
F_MAX = 7500.0
LOG_OFFSET = 0.01
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".opus")


class AudioError(RuntimeError):
    """An audio file cannot be used; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def check_audio_path(path: str | Path) -> Path:
    """The path as a Path, or AudioError when it is missing or a directory (shared by every reader)."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    return path


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, allow_silent: bool = False) -> np.ndarray:
    """Read any soundfile-readable file into mono float32 at ``sample_rate``.

    Channels are averaged; resampling uses soxr (high quality). Raises :class:`AudioError`
    for a missing, unreadable, corrupt or empty file, and for an all-zero (silent) file
    unless ``allow_silent`` (silence is legal audio, but in training data it almost always
    means a broken export, so callers must opt in).
    """
    path = check_audio_path(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types (LibsndfileError, RuntimeError, TypeError)
        raise AudioError(path, f"cannot decode audio ({type(exc).__name__}: {exc})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "file holds no samples (empty audio)")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(mono)):
        raise AudioError(path, "audio contains NaN or infinite samples")
    if not allow_silent and not np.any(mono):
        raise AudioError(path, "audio is entirely silent (all samples are zero)")
    if sr != sample_rate:
        mono = soxr.resample(mono, sr, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the header, without decoding."""
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise AudioError(path, f"cannot read audio header ({type(exc).__name__}: {exc})") from None
    return info.frames / info.samplerate


def num_frames(num_samples: int) -> int:
    """Log-mel frames for a signal of ``num_samples`` at 16 kHz (no centring)."""
    if num_samples < WINDOW:
        return 0
    return 1 + (num_samples - WINDOW) // HOP


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def mel_filterbank(n_fft: int = N_FFT, n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE,
                   f_min: float = F_MIN, f_max: float = F_MAX) -> torch.Tensor:
    """Triangular HTK-mel filters as VGGish builds them: (n_fft // 2 + 1, n_mels), no area normalisation."""
    n_bins = n_fft // 2 + 1
    bin_hz = np.linspace(0.0, sample_rate / 2.0, n_bins)
    bin_mel = _hz_to_mel(bin_hz)
    edges = np.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2)
    weights = np.zeros((n_bins, n_mels), dtype=np.float64)
    for i in range(n_mels):
        lower, center, upper = edges[i : i + 3]
        lower_slope = (bin_mel - lower) / (center - lower)
        upper_slope = (upper - bin_mel) / (upper - center)
        weights[:, i] = np.maximum(0.0, np.minimum(lower_slope, upper_slope))
    weights[0, :] = 0.0  # VGGish zeroes the DC bin
    return torch.from_numpy(weights.astype(np.float32))


class LogMel(nn.Module):
    """Batched log-mel front end in torch: waveforms (B, N) -> features (B, frames, 64).

    Runs on whatever device the module is on. The STFT is written as a strided
    framing + matmul-free ``torch.fft.rfft`` so that it also exports to ONNX
    (``torch.stft`` does not, for every opset).
    """

    def __init__(self) -> None:
        super().__init__()
        # periodic Hann, as numpy/VGGish "hann" for framing
        window = 0.5 - 0.5 * torch.cos(2 * math.pi * torch.arange(WINDOW, dtype=torch.float32) / WINDOW)
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("mel", mel_filterbank(), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() == 1:
            waveform = waveform.unsqueeze(0)
        frames = waveform.unfold(-1, WINDOW, HOP) * self.window  # (B, F, 400)
        spectrum = torch.fft.rfft(frames, n=N_FFT).abs()  # magnitude, as VGGish
        mel = spectrum @ self.mel
        return torch.log(mel + LOG_OFFSET)


def pad_or_truncate(waveform: np.ndarray, num_samples: int) -> np.ndarray:
    """Zero-pad at the end or truncate to exactly ``num_samples`` (the paper's fixed training input)."""
    if len(waveform) >= num_samples:
        return waveform[:num_samples]
    out = np.zeros(num_samples, dtype=np.float32)
    out[: len(waveform)] = waveform
    return out


def warn_skipped(path: str | Path, reason: str) -> None:
    warnings.warn(f"skipping {path}: {reason}", stacklevel=2)
