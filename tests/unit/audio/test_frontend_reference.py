"""LogMel against an independent numpy computation of VGGish's front end.

The reference follows VGGish's ``mel_features.py`` step by step (periodic Hann window,
frames of 400 samples every 160, |rfft| with 512 points, HTK-mel triangles between 125 and
7500 Hz with the DC bin zeroed, log(mel + 0.01)), written here in float64 without any
weaktag code, so a mistake in weaktag's torch version cannot hide in both.
"""

from __future__ import annotations

import numpy as np
import torch

from weaktag.audio import LogMel


def _reference_logmel(wave: np.ndarray) -> np.ndarray:
    sr, win, hop, nfft, n_mels = 16000, 400, 160, 512, 64
    n_frames = 1 + (len(wave) - win) // hop
    frames = np.stack([wave[i * hop : i * hop + win] for i in range(n_frames)]).astype(np.float64)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)  # periodic Hann
    magnitude = np.abs(np.fft.rfft(frames * window, n=nfft))  # (F, 257)

    def mel(hz):
        return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)

    spectrum_mel = mel(np.linspace(0.0, sr / 2, nfft // 2 + 1))
    band_edges = np.linspace(mel(125.0), mel(7500.0), n_mels + 2)
    matrix = np.empty((nfft // 2 + 1, n_mels))
    for i in range(n_mels):
        lower, center, upper = band_edges[i], band_edges[i + 1], band_edges[i + 2]
        lower_slope = (spectrum_mel - lower) / (center - lower)
        upper_slope = (upper - spectrum_mel) / (upper - center)
        matrix[:, i] = np.maximum(0.0, np.minimum(lower_slope, upper_slope))
    matrix[0, :] = 0.0
    return np.log(magnitude @ matrix + 0.01)


def test_logmel_matches_an_independent_numpy_reference():
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    ours = LogMel()(torch.from_numpy(wave))[0].numpy()
    reference = _reference_logmel(wave)
    assert ours.shape == reference.shape == (1 + (32000 - 400) // 160, 64)
    # float32 torch vs float64 numpy: log-mel values are O(1-10); 1e-3 absolute is float32 rounding
    np.testing.assert_allclose(ours, reference, atol=1e-3, rtol=0)
    # and the 440 Hz tone lands in the band that contains 440 Hz
    assert int(np.argmax(ours.mean(axis=0))) == int(np.argmax(reference.mean(axis=0)))
