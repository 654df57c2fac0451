"""Every second of audio is scored: the segment grid covers a recording's whole duration (issue 20)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from weaktag.audio import pad_to_segments
from weaktag.checkpoint import save_checkpoint
from weaktag.data import build_feature_set
from weaktag.geometry import VGGISH_GRID, TimeGrid
from weaktag.inference import Tagger
from weaktag.labels import Clip, Manifest
from weaktag.models import AISFX_GRID, BackboneConfig, ModelConfig, WeakTagNet

DURATIONS = (1.0, 4.0, 9.99, 10.0, 25.3)
GRIDS = {"vggish": VGGISH_GRID, "aisfx": AISFX_GRID}
CLASSES = ["a", "b"]


@pytest.mark.parametrize("name", GRIDS)
@pytest.mark.parametrize("seconds", DURATIONS)
def test_the_last_segment_reaches_the_end(name: str, seconds: float):
    grid: TimeGrid = GRIDS[name]
    samples = int(round(seconds * grid.sample_rate))
    t = grid.segments_for_samples(samples)
    end = t * grid.segment_seconds
    assert samples / grid.sample_rate <= end < samples / grid.sample_rate + grid.segment_seconds
    # padded to the rule's length, the network's frames give exactly that many segments
    padded = grid.padded_samples(samples)
    assert padded >= samples
    assert grid.num_segments(grid.num_frames(padded)) == t
    assert pad_to_segments(np.ones(samples, np.float32), grid).shape == (padded,)


def test_ten_seconds_were_short_of_the_end_before():
    # the old floor rule: 62 segments (9.92 s) on VGGish's grid, 53 (9.85 s) on aisfx's; now 63 and 54
    for grid, before, after in ((VGGISH_GRID, 62, 63), (AISFX_GRID, 53, 54)):
        samples = 10 * grid.sample_rate
        assert grid.num_segments(grid.num_frames(samples)) == before
        assert grid.segments_for_samples(samples) == after


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = WeakTagNet(ModelConfig(len(CLASSES), backbone=BackboneConfig(width=0.125))).eval()
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", model, CLASSES, "attention", {})


@pytest.mark.parametrize("seconds", DURATIONS)
def test_tagging_covers_the_duration_and_events_end_with_it(ckpt: Path, tmp_path: Path, seconds: float):
    sr = VGGISH_GRID.sample_rate
    path = tmp_path / "x.wav"
    sf.write(str(path), (np.random.default_rng(1).standard_normal(int(round(seconds * sr))) * 0.1).astype(np.float32),
             sr, subtype="FLOAT")
    # thresholds of 0: every segment is active, so each class's one event spans the whole file
    for chunk_seconds in (2.56, 60.0):  # chunked and whole-file passes
        result = Tagger.from_checkpoint(ckpt, chunk_seconds=chunk_seconds, event_thresholds=0.0).tag(path)
        end = result.num_segments * result.segment_seconds
        assert result.duration <= end < result.duration + result.segment_seconds
        assert [(e.label, e.onset, e.offset) for e in result.events] == [(c, 0.0, round(seconds, 6)) for c in CLASSES]


def test_training_crops_cover_clip_seconds(tmp_path: Path):
    sr = VGGISH_GRID.sample_rate
    path = tmp_path / "c.wav"
    sf.write(str(path), (np.random.default_rng(2).standard_normal(12 * sr) * 0.1).astype(np.float32), sr)
    features = build_feature_set(Manifest([Clip("c", path, frozenset({"a"}))], CLASSES))
    assert features.num_segments == VGGISH_GRID.segments_for_samples(10 * sr) == 63
    assert features.features.shape == (1, 63 * VGGISH_GRID.time_stride, 64)
