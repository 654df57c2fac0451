"""Event sounds and backgrounds that weaktag generates itself (offline, deterministic from a seed).

Classes: beeps, chirps, click trains, hums, knocks, noise bursts and sirens, short and long.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import scipy.fft

from ..audio import SAMPLE_RATE


# Each generator returns a float32 sound starting and ending at its labelled extent; its level
# is irrelevant (events are scaled to the drawn SNR). Durations are capped at ``max_seconds``.


def _envelope(n: int, sr: int, attack: float, release: float) -> np.ndarray:
    """Raised-cosine attack and release over ``n`` samples (shortened for short sounds)."""
    env = np.ones(n, dtype=np.float64)
    n_attack = min(int(attack * sr), n // 2)
    n_release = min(int(release * sr), n // 2)
    if n_attack > 0:
        env[:n_attack] = 0.5 - 0.5 * np.cos(np.pi * np.arange(n_attack) / n_attack)
    if n_release > 0:
        env[n - n_release :] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, n_release + 1) / n_release)
    return env


def _loguniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _duration(rng: np.random.Generator, low: float, high: float, sr: int, max_seconds: float) -> int:
    return max(1, int(min(rng.uniform(low, high), max_seconds) * sr))


def _nyquist_safe(freq: np.ndarray | float, sr: int) -> np.ndarray | float:
    return np.minimum(freq, 0.45 * sr)


def _beep(rng: np.random.Generator, sr: int, max_seconds: float) -> np.ndarray:
    """Short steady tone with a few harmonics, 0.1-0.4 s."""
    n = _duration(rng, 0.1, 0.4, sr, max_seconds)
    t = np.arange(n) / sr
    f0 = _loguniform(rng, 400.0, 3000.0)
    sound = np.zeros(n)
    for k, amp in enumerate((1.0, rng.uniform(0, 0.5), rng.uniform(0, 0.3)), start=1):
        if k * f0 < 0.45 * sr:
            sound += amp * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi))
    return sound * _envelope(n, sr, 0.005, rng.uniform(0.01, 0.03))


def _chirp(rng: np.random.Generator, sr: int, max_seconds: float) -> np.ndarray:
    """Exponential frequency sweep up or down between ~300-1500 Hz and ~2-6 kHz, 0.3-1 s."""
    n = _duration(rng, 0.3, 1.0, sr, max_seconds)
    duration = n / sr
    low, high = _loguniform(rng, 300.0, 1500.0), float(_nyquist_safe(_loguniform(rng, 2000.0, 6000.0), sr))
    f_start, f_end = (low, high) if rng.random() < 0.5 else (high, low)
    t = np.arange(n) / sr
    ratio = f_end / f_start
    phase = 2 * np.pi * f_start * duration / math.log(ratio) * (ratio ** (t / duration) - 1.0)
    return np.sin(phase) * _envelope(n, sr, 0.01, 0.02)


def _click_train(rng: np.random.Generator, sr: int, max_seconds: float) -> np.ndarray:
    """Regular train of broadband clicks at 8-30 Hz, 0.5-2 s."""
    n = _duration(rng, 0.5, 2.0, sr, max_seconds)
    tau = rng.uniform(0.0005, 0.002)
    kernel_len = min(int(0.01 * sr), n)
    period = 1.0 / rng.uniform(8.0, 30.0)
    times = np.arange(0.0, (n - kernel_len) / sr + 1e-9, period)
    times[1:] += rng.uniform(-0.1, 0.1, len(times) - 1) * period  # slight irregularity
    starts = np.clip((times * sr).astype(int), 0, n - kernel_len)
    decay = np.exp(-np.arange(kernel_len) / (tau * sr))
    sound = np.zeros(n)
    for start in starts:
        sound[start : start + kernel_len] += rng.standard_normal(kernel_len) * decay
    return sound[: starts[-1] + kernel_len]


def _hum(rng: np.random.Generator, sr: int, max_seconds: float) -> np.ndarray:
    """Harmonic tone (80-250 Hz fundamental) with vibrato, 2-6 s."""
    n = _duration(rng, 2.0, 6.0, sr, max_seconds)
    t = np.arange(n) / sr
    f0 = _loguniform(rng, 80.0, 250.0)
    vibrato = 1.0 + rng.uniform(0.005, 0.02) * np.sin(2 * np.pi * rng.uniform(4.0, 7.0) * t)
    phase = 2 * np.pi * np.cumsum(f0 * vibrato) / sr
    rolloff = rng.uniform(0.7, 1.5)
    sound = np.zeros(n)
    for k in range(1, int(rng.integers(6, 11)) + 1):
        if k * f0 * 1.02 < 0.45 * sr:
            sound += k**-rolloff * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    return sound * _envelope(n, sr, rng.uniform(0.05, 0.15), rng.uniform(0.05, 0.15))


def _noise_burst(rng: np.random.Generator, sr: int, max_seconds: float) -> np.ndarray:
    """Band-passed noise (centre 0.5-5 kHz, 0.3-1 octave wide), 0.2-1 s."""
    n = _duration(rng, 0.2, 1.0, sr, max_seconds)
    centre = float(_nyquist_safe(_loguniform(rng, 500.0, 5000.0), sr))
    half_octaves = rng.uniform(0.3, 1.0) / 2
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    distance = np.abs(np.log2(np.maximum(freqs, 1.0) / centre))  # octaves from centre
    gain = np.clip(1.5 - distance / half_octaves, 0.0, 1.0)  # flat top, sloped skirts
    spectrum = np.fft.rfft(rng.standard_normal(n)) * gain
    sound = np.fft.irfft(spectrum, n)
    return sound * _envelope(n, sr, rng.uniform(0.005, 0.02), rng.uniform(0.02, 0.05))


def _siren(rng: np.random.Generator, sr: int, max_seconds: float) -> np.ndarray:
    """Slow sinusoidal FM tone (carrier 600-1200 Hz, +-20-50 %, 0.3-1.5 Hz), 2-5 s."""
    n = _duration(rng, 2.0, 5.0, sr, max_seconds)
    t = np.arange(n) / sr
    carrier = _loguniform(rng, 600.0, 1200.0)
    deviation = rng.uniform(0.2, 0.5) * carrier
    freq = carrier + deviation * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(freq) / sr
    sound = np.sin(phase) + rng.uniform(0.1, 0.4) * np.sin(2 * phase)
    return sound * _envelope(n, sr, 0.05, 0.05)


def _knock(rng: np.random.Generator, sr: int, max_seconds: float) -> np.ndarray:
    """2-5 decaying resonant impulses (150-700 Hz, 10-40 ms decay), about 0.15-1.3 s."""
    freq = _loguniform(rng, 150.0, 700.0)
    tau = rng.uniform(0.01, 0.04)
    knock_len = int(6 * tau * sr)  # e^-6: the tail is ~52 dB down
    starts = [0]
    for _ in range(int(rng.integers(2, 6)) - 1):
        nxt = starts[-1] + int(rng.uniform(0.08, 0.25) * sr)
        if (nxt + knock_len) / sr > max_seconds:
            break
        starts.append(nxt)
    knock_len = min(knock_len, int(max_seconds * sr) - starts[-1])
    t = np.arange(knock_len) / sr
    sound = np.zeros(starts[-1] + knock_len)
    for start in starts:
        detune = rng.uniform(0.97, 1.03)
        strike = np.sin(2 * np.pi * freq * detune * t) + 0.3 * rng.standard_normal(knock_len) * np.exp(-t / 0.002)
        sound[start : start + knock_len] += rng.uniform(0.6, 1.0) * strike * np.exp(-t / tau)
    return sound


GeneratorFn = Callable[[np.random.Generator, int, float], np.ndarray]
_GENERATORS: dict[str, GeneratorFn] = {
    "beep": _beep,
    "chirp": _chirp,
    "click_train": _click_train,
    "hum": _hum,
    "knock": _knock,
    "noise_burst": _noise_burst,
    "siren": _siren,
}
GENERATED_CLASSES: tuple[str, ...] = tuple(sorted(_GENERATORS))


def generate_event(label: str, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE,
                   max_seconds: float = 10.0) -> np.ndarray:
    """One generated instance of ``label`` (float32, peak 1); exposed for demos and tests."""
    if label not in _GENERATORS:
        raise ValueError(f"unknown generated class {label!r}; known: {', '.join(GENERATED_CLASSES)}")
    sound = _GENERATORS[label](rng, sample_rate, max_seconds)
    return (sound / max(float(np.max(np.abs(sound))), 1e-12)).astype(np.float32)


def _generated_background(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Pink-to-brown noise (1/f^a, a in [1, 1.6]) plus low-level mains hum; RMS 1.

    Single precision and a 1 s hum period keep this cheap: it runs once per clip.
    """
    alpha = rng.uniform(1.0, 1.6)
    freqs = np.fft.rfftfreq(n, 1.0 / sr).astype(np.float32)
    spectrum = rng.standard_normal(2 * len(freqs), dtype=np.float32).view(np.complex64)
    spectrum *= np.maximum(freqs, np.float32(20.0)) ** np.float32(-alpha / 2)
    spectrum[0] = 0.0
    noise = scipy.fft.irfft(spectrum, n)
    noise /= max(float(np.sqrt(np.mean(noise.astype(np.float64) ** 2))), 1e-12)
    # mains hum at an integer frequency repeats every second: synthesize one second and tile it
    mains = 50.0 if rng.random() < 0.5 else 60.0
    t = np.arange(min(n, sr)) / sr
    hum = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * k * mains * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 5))
    hum *= 10 ** (rng.uniform(-25.0, -12.0) / 20) / max(float(np.sqrt(np.mean(hum**2))), 1e-12)
    background = noise + np.resize(hum.astype(np.float32), n)
    return background / np.float32(np.sqrt(np.mean(background.astype(np.float64) ** 2)))


