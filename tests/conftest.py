"""Shared fixtures: the repository root, small audio the tests make themselves, and the path to ../shared/data."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def soundscape_script(name: str, module: str | None = None) -> ModuleType:
    """A benchmark script of recipes/soundscapes (``name``.py) imported as ``module``, with its folder on the path
    for its sibling modules (compare_soundscapes, soundscapes2, detection)."""
    folder = REPO / "recipes" / "soundscapes"
    sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(module or name, folder / f"{name}.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def shared_data(sub: str = "") -> Path:
    """The real-data folder, or skip the test with the reason."""
    path = SHARED_DATA / sub
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (it lives in ../shared/data beside the repo)")
    return path


def write_tone(path: Path, seconds: float = 1.0, sr: int = 16000, channels: int = 1, freq: float = 440.0,
               subtype: str = "PCM_16") -> Path:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    data = np.stack([x * (0.5 + 0.5 * c) for c in range(channels)], axis=1) if channels > 1 else x
    sf.write(str(path), data, sr, subtype=subtype)
    return path
