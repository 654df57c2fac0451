"""Helpers that several test files share and that are not fixtures (pytest puts tests/ on the path)."""

from __future__ import annotations

import numpy as np
import torch

from weaktag.data import FeatureSet
from weaktag.labels import Clip, Event
from weaktag.training.run import PreparedData

# ------------------------------------------------------------------ tiny learnable feature sets, no audio

LEARNABLE_CLASSES = ["a", "b", "c"]


def learnable_features(n: int, seed: int, strong_every: int = 2) -> FeatureSet:
    """Clips whose log-mel carries their labels (a class lifts its own band of mel bins), with strong
    events on every ``strong_every``-th clip: learnable in a few steps, no audio needed."""
    rng = np.random.default_rng(seed)
    clips, features = [], torch.randn(n, 998, 64, generator=torch.Generator().manual_seed(seed)) * 0.5 - 4.0
    for i in range(n):
        labels = {c for c in LEARNABLE_CLASSES if rng.random() < 0.4} or {LEARNABLE_CLASSES[i % 3]}
        events = []
        for label in sorted(labels):
            k = LEARNABLE_CLASSES.index(label)
            onset = float(rng.uniform(0, 6))
            first, last = int(onset / 0.01), int((onset + 3) / 0.01)
            features[i, first:last, 20 * k : 20 * k + 16] += 3.0
            events.append(Event(label, onset, onset + 3))
        clips.append(Clip(f"clip{seed}_{i}", None, frozenset(labels), tuple(events) if i % strong_every == 0 else None,
                          10.0))
    return FeatureSet(clips, LEARNABLE_CLASSES, features)


def learnable_data(n_train: int = 32, n_val: int = 16) -> PreparedData:
    """A training and a validation set of ``learnable_features``."""
    return PreparedData(LEARNABLE_CLASSES, learnable_features(n_train, 1), learnable_features(n_val, 2))
