"""Audio in: any file (or array) -> mono float32 at a front end's rate, read whole or as a stream; and the
log-mel front end.

Front-end conventions default to VGGish's (:data:`weaktag.geometry.VGGISH_FRONTEND`): 16 kHz,
25 ms periodic Hann window (400 samples), 10 ms hop (160 samples), no centring, |FFT| with 512
points, 64 HTK-mel bands between 125 and 7500 Hz, ``log(mel + 0.01)``. A 10 s clip gives
``1 + (160000 - 400) // 160 = 998`` frames; padded to whole segments (:func:`pad_to_segments`) it gives
1008 frames, 63 segments. A backbone with another front end passes its own
:class:`~weaktag.geometry.FrontEndSpec`.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr
import torch
from torch import nn

from .errors import WeaktagError
from .geometry import VGGISH_FRONTEND, FrontEndSpec, TimeGrid

# VGGish's front end, for code that works on its grid only (tests, benchmarks, the synthesizer)
SAMPLE_RATE = VGGISH_FRONTEND.sample_rate
WINDOW = VGGISH_FRONTEND.window
HOP = VGGISH_FRONTEND.hop
N_FFT = VGGISH_FRONTEND.n_fft
N_MELS = VGGISH_FRONTEND.n_mels
F_MIN = VGGISH_FRONTEND.f_min
F_MAX = VGGISH_FRONTEND.f_max
LOG_OFFSET = VGGISH_FRONTEND.log_offset
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".opus")
READ_BLOCK = 1 << 16  # frames per soundfile read when streaming
SILENT = "audio is entirely silent (all samples are zero)"


class AudioError(WeaktagError, RuntimeError):
    """An audio file cannot be used; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def check_audio_path(path: str | Path) -> Path:
    """The path as a Path, or AudioError when it is missing, a directory or an empty (0-byte) file."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    return path


def _open(path: Path) -> sf.SoundFile:
    try:
        return sf.SoundFile(str(path))
    except Exception as exc:  # soundfile raises several types (LibsndfileError, RuntimeError, TypeError)
        raise AudioError(path, f"cannot decode audio ({type(exc).__name__}: {exc})") from None


def iter_audio_blocks(path: str | Path, sample_rate: int = SAMPLE_RATE, block_frames: int = READ_BLOCK,
                      allow_silent: bool = True) -> Iterator[np.ndarray]:
    """Mono float32 blocks at ``sample_rate`` from any soundfile-readable file, never the whole file at once.

    Channels are averaged and the stream resampled with soxr (HQ): the samples equal those of
    :func:`load_audio`. Raises :class:`AudioError` for a missing, unreadable, corrupt or empty
    file, for NaN / infinite samples, and (unless ``allow_silent``) when the whole file turns
    out to be zeros: that is known only at its end, after every block has been yielded.
    """
    path = check_audio_path(path)
    with _open(path) as handle:
        rate, channels = handle.samplerate, handle.channels
        # only float sample formats can hold NaN / inf; integer PCM and lossy decoders cannot
        check_finite = handle.subtype in ("FLOAT", "DOUBLE") or handle.format not in ("WAV", "WAVEX", "AIFF", "FLAC")
        stream = None if rate == sample_rate else soxr.ResampleStream(rate, sample_rate, 1, dtype="float32",
                                                                      quality="HQ")
        total = 0
        sound = False
        while True:
            try:
                block = handle.read(block_frames, dtype="float32", always_2d=channels > 1)
            except Exception as exc:
                raise AudioError(path, f"cannot decode audio after {total / rate:.2f} s "
                                       f"({type(exc).__name__}: {exc})") from None
            last = len(block) < block_frames
            mono = block.mean(axis=1) if channels > 1 else block
            if check_finite and not np.all(np.isfinite(mono)):
                raise AudioError(path, "audio contains NaN or infinite samples")
            total += len(block)
            if total == 0 and last:
                raise AudioError(path, "file holds no samples (empty audio)")
            sound = sound or bool(np.any(mono))
            out = mono if stream is None else stream.resample_chunk(mono, last=last)
            if len(out):
                yield out if out.dtype == np.float32 and out.flags.c_contiguous else np.ascontiguousarray(out, np.float32)
            if last:
                if not sound and not allow_silent:
                    raise AudioError(path, SILENT)
                return


def array_blocks(audio: np.ndarray, sample_rate: int, target_rate: int = SAMPLE_RATE, name: str = "<array>",
                 allow_silent: bool = True) -> Iterator[np.ndarray]:
    """The :func:`iter_audio_blocks` of an in-memory (samples,) or (samples, channels) array: one block."""
    wave = np.asarray(audio, dtype=np.float32)
    if wave.ndim == 2:  # (samples, channels)
        wave = wave.mean(axis=1)
    if wave.ndim != 1:
        raise AudioError(name, f"expected a (samples,) or (samples, channels) array, got shape {audio.shape}")
    if len(wave) == 0:
        raise AudioError(name, "array holds no samples (empty audio)")
    if not np.all(np.isfinite(wave)):
        raise AudioError(name, "audio contains NaN or infinite samples")
    if not allow_silent and not np.any(wave):
        raise AudioError(name, SILENT)
    if sample_rate != target_rate:
        wave = soxr.resample(wave, sample_rate, target_rate, quality="HQ")
    yield np.ascontiguousarray(wave, dtype=np.float32)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, allow_silent: bool = False) -> np.ndarray:
    """Read any soundfile-readable file into mono float32 at ``sample_rate`` (the stream, concatenated).

    Raises :class:`AudioError` for a missing, unreadable, corrupt or empty file, and for an
    all-zero (silent) file unless ``allow_silent`` (silence is legal audio, but in training data
    it almost always means a broken export, so callers must opt in).
    """
    path = check_audio_path(path)
    try:
        frames = sf.info(str(path)).frames
    except Exception as exc:
        raise AudioError(path, f"cannot decode audio ({type(exc).__name__}: {exc})") from None
    blocks = list(iter_audio_blocks(path, sample_rate, block_frames=max(READ_BLOCK, frames + 1),
                                    allow_silent=allow_silent))
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def probe_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> tuple[int, int, float]:
    """(length at ``sample_rate``, frames in the file, seconds) from the header; AudioError when unreadable."""
    path = check_audio_path(path)
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise AudioError(path, f"cannot decode audio ({type(exc).__name__}: {exc})") from None
    if info.frames <= 0:
        raise AudioError(path, "file holds no samples (empty audio)")
    return int(math.ceil(info.frames * sample_rate / info.samplerate)), int(info.frames), info.frames / info.samplerate


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the header, without decoding."""
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise AudioError(path, f"cannot read audio header ({type(exc).__name__}: {exc})") from None
    return info.frames / info.samplerate


def num_frames(num_samples: int, spec: FrontEndSpec = VGGISH_FRONTEND) -> int:
    """Log-mel frames for a signal of ``num_samples`` (no centring)."""
    return spec.num_frames(num_samples)


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


def spec_filterbank(spec: FrontEndSpec) -> torch.Tensor:
    bank = mel_filterbank(spec.n_fft, spec.n_mels, spec.sample_rate, spec.f_min, spec.f_max)
    if spec.mel_norm == "unit_sum":  # each band averages its bins (librosa's norm=1, Essentia's unit_sum)
        bank = bank / bank.sum(dim=0, keepdim=True).clamp(min=1e-12)
    elif spec.mel_norm != "none":
        raise ValueError(f"mel_norm must be 'none' or 'unit_sum', not {spec.mel_norm!r}")
    return bank


def compress(mel: torch.Tensor, spec: FrontEndSpec) -> torch.Tensor:
    """Mel energies -> features, as ``spec`` says (shared by :class:`LogMel` and the ONNX front end)."""
    if spec.compression == "log":
        out = torch.log(mel + spec.log_offset)
    elif spec.compression == "log10_1p":
        out = torch.log10(1.0 + spec.log_scale * mel)
    else:
        raise ValueError(f"compression must be 'log' or 'log10_1p', not {spec.compression!r}")
    return out / spec.scale if spec.scale != 1.0 else out


class LogMel(nn.Module):
    """Batched log-mel front end in torch: waveforms (B, N) -> features (B, frames, n_mels).

    Runs on whatever device the module is on. The STFT is written as a strided framing +
    ``torch.fft.rfft`` (``torch.stft`` does not export to ONNX for every opset).
    """

    def __init__(self, spec: FrontEndSpec = VGGISH_FRONTEND) -> None:
        super().__init__()
        self.spec = spec
        # periodic Hann, as numpy/VGGish "hann" for framing
        n = torch.arange(spec.window, dtype=torch.float32)
        window = 0.5 - 0.5 * torch.cos(2 * math.pi * n / spec.window)
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("mel", spec_filterbank(spec), persistent=False)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() == 1:
            waveform = waveform.unsqueeze(0)
        frames = waveform.unfold(-1, self.spec.window, self.spec.hop) * self.window  # (B, F, window)
        spectrum = torch.fft.rfft(frames, n=self.spec.n_fft).abs()  # magnitude, as VGGish
        if self.spec.power != 1.0:
            spectrum = spectrum.pow(self.spec.power)
        return compress(spectrum @ self.mel, self.spec)


def pad_or_truncate(waveform: np.ndarray, num_samples: int) -> np.ndarray:
    """Zero-pad at the end or truncate to exactly ``num_samples`` (the paper's fixed training input)."""
    if len(waveform) >= num_samples:
        return waveform[:num_samples]
    out = np.zeros(num_samples, dtype=np.float32)
    out[: len(waveform)] = waveform
    return out


def pad_to_segments(waveform: np.ndarray, grid: TimeGrid) -> np.ndarray:
    """``waveform`` (..., N) zero-padded at its end to ``grid.padded_samples(N)``: the network then scores every
    segment that covers it (:meth:`~weaktag.geometry.TimeGrid.segments_for_samples`)."""
    missing = grid.padded_samples(waveform.shape[-1]) - waveform.shape[-1]
    return np.pad(waveform, [(0, 0)] * (waveform.ndim - 1) + [(0, missing)])


def warn_skipped(path: str | Path, reason: str) -> None:
    warnings.warn(f"skipping {path}: {reason}", stacklevel=2)
