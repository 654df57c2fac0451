"""Figures (Fig. 4 / Fig. 5 style): files exist, are PNGs of the promised pixel size; the table numbers are right."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from weaktag.experiments.plots import (
    DPI,
    GAIN_FIGURE_SIZE,
    AttentionPanel,
    attention_figure_size,
    gain_vs_duration_table,
    median_event_durations,
    plot_attention,
    plot_gain_vs_duration,
)
from weaktag.labels import Clip, Event, Manifest

CLASSES = ["Air horn", "Car", "Siren", "Train"]


def _pixel_size(path: Path) -> tuple[int, int]:
    image = matplotlib.image.imread(path)
    return image.shape[1], image.shape[0]  # width, height


def test_median_event_durations() -> None:
    manifest = Manifest(
        [
            Clip("c1", None, frozenset({"Air horn", "Siren"}), (Event("Air horn", 0.0, 1.0), Event("Siren", 2.0, 8.0))),
            Clip("c2", None, frozenset({"Air horn"}), (Event("Air horn", 3.0, 6.0), Event("Air horn", 7.0, 9.0))),
            Clip("c3", None, frozenset({"Car"}), None),  # weak only: no duration information
        ],
        CLASSES,
    )
    durations = median_event_durations(manifest, CLASSES)
    # Air horn: median(1, 3, 2) = 2 ; Siren: 6 ; Car, Train: no strong events -> NaN
    assert durations[0] == pytest.approx(2.0)
    assert durations[2] == pytest.approx(6.0)
    assert math.isnan(durations[1]) and math.isnan(durations[3])


def test_gain_vs_duration_table_spearman() -> None:
    ap_a = np.array([0.40, 0.50, 0.60, 0.70])
    ap_b = np.array([0.80, 0.80, 0.80, 0.80])  # gains 0.4, 0.3, 0.2, 0.1
    durations = np.array([0.5, 2.0, 5.0, 9.0])
    table = gain_vs_duration_table(ap_a, ap_b, CLASSES, durations, "unsupervised", "self-supervised")
    # gain strictly decreases with duration -> rank correlation exactly -1
    assert table.spearman_rho == pytest.approx(-1.0)
    assert table.n == 4
    assert [r.class_name for r in table.rows] == CLASSES
    assert table.rows[0].gain == pytest.approx(0.4)
    assert "Spearman rho" in table.to_markdown()
    with_nan = gain_vs_duration_table(ap_a, ap_b, CLASSES, np.array([0.5, np.nan, 5.0, 9.0]))
    assert with_nan.n == 3 and with_nan.rows[-1].class_name == "Car"  # NaN duration sorted last


def test_plot_gain_vs_duration_png_size(tmp_path: Path) -> None:
    path = tmp_path / "fig4" / "gain.png"
    plot_gain_vs_duration(
        np.array([0.4, 0.5, 0.6, 0.7]),
        np.array([0.6, 0.45, 0.7, 0.72]),
        CLASSES,
        np.array([0.8, 3.0, 6.0, np.nan]),
        "unsupervised",
        "self-supervised",
        path,
    )
    assert path.stat().st_size > 0
    assert _pixel_size(path) == (int(GAIN_FIGURE_SIZE[0] * DPI), int(GAIN_FIGURE_SIZE[1] * DPI))


def test_plot_attention_png_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    segment_seconds, n_segments = 0.16, 62
    logmel = rng.normal(size=(998, 64))
    attention = rng.random((len(CLASSES), n_segments))
    attention /= attention.sum(axis=1, keepdims=True)
    panels = [AttentionPanel("unsupervised attention", attention, segment_seconds),
              AttentionPanel("self-supervised attention", attention**2, segment_seconds)]
    truth = [Event("Siren", 3.0, 5.0), Event("Dog bark", 6.5, 7.5)]  # non-target classes are drawn too
    path = tmp_path / "fig5.png"
    plot_attention(logmel, truth, CLASSES, panels, path)
    width, height = attention_figure_size(len(panels))
    assert path.stat().st_size > 0
    assert _pixel_size(path) == (int(width * DPI), int(height * DPI))


def test_plot_attention_many_classes_and_no_truth(tmp_path: Path) -> None:
    classes = [f"class {i}" for i in range(100)]
    matrix = np.random.default_rng(1).random((100, 20))
    path = tmp_path / "many.png"
    plot_attention(np.zeros((300, 64)), [], classes, [AttentionPanel("A", matrix, 0.16)], path, max_classes=10)
    width, height = attention_figure_size(1)
    assert _pixel_size(path) == (int(width * DPI), int(height * DPI))
    with pytest.raises(ValueError):
        plot_attention(np.zeros((300, 64)), [], classes, [AttentionPanel("A", matrix[:5], 0.16)], path)


def test_attention_figure_gives_each_checkpoint_its_own_front_end(tmp_path: Path, monkeypatch) -> None:
    """An aisfx model (44.1 kHz, 23 ms hop, 0.186 s segments) beside a VGGish one (16 kHz, 10 ms, 0.16 s):
    each panel spans the recording and holds what that checkpoint's own tagger computes, in either order."""
    pytest.importorskip("aisfx")
    import soundfile as sf
    import torch

    import weaktag.experiments.figures as figures
    from weaktag.checkpoint import save_checkpoint
    from weaktag.inference import Tagger
    from weaktag.models import BackboneConfig, ModelConfig, NeckConfig, WeakTagNet

    torch.manual_seed(0)
    classes = CLASSES[:3]
    aisfx = WeakTagNet(ModelConfig(3, True, BackboneConfig(backbone="aisfx"), NeckConfig(16)))
    vggish = WeakTagNet(ModelConfig(3, True, BackboneConfig(width=0.125, l7_channels=16, batch_norm=True)))
    paths = [save_checkpoint(tmp_path / f"{name}.pt", net, classes, "attention", {})
             for name, net in (("aisfx", aisfx), ("vggish", vggish))]
    assert aisfx.grid.sample_rate != vggish.grid.sample_rate
    seconds, rate = 6.0, 22_050  # neither model's rate: both resample
    audio = tmp_path / "clip.wav"
    sf.write(str(audio), (np.random.default_rng(0).standard_normal(int(seconds * rate)) * 0.1).astype(np.float32), rate)
    expected = {str(p): Tagger.from_checkpoint(p).tag(audio).attention for p in paths}

    drawn = []
    real_plot = figures.plot_attention
    monkeypatch.setattr(figures, "plot_attention", lambda *a, **k: drawn.append(real_plot(*a, **k)) or drawn[-1])
    for order in (paths, paths[::-1]):
        figure = figures.attention_figure_for_audio(order, audio, tmp_path / "fig5.png", show="attention",
                                                    names=["first", "second"])
        assert figure.seconds == pytest.approx(seconds, abs=0.05)
        for panel, path, net in zip(figure.panels, order, (aisfx, vggish) if order == paths else (vggish, aisfx)):
            assert panel.segment_seconds == pytest.approx(net.grid.segment_seconds)
            np.testing.assert_allclose(panel.matrix, expected[str(path)], atol=1e-6)
        axes = drawn[-1].axes
        panel_axes = [ax for ax in axes if ax.get_title() in figure.titles]
        assert len(panel_axes) == 2
        for ax, panel in zip(panel_axes, figure.panels):
            x_end = ax.images[0].get_extent()[1]  # the image's right edge: the last segment's end
            assert seconds <= x_end < seconds + panel.segment_seconds  # the tail is padded to a whole segment
            assert ax.get_xlim()[1] == pytest.approx(seconds, abs=0.2)  # the shared axis: the clip, not 2.8x it
        assert "first:" in axes[0].get_title()  # the log-mel row says whose front end it shows
        assert _pixel_size(tmp_path / "fig5.png") == tuple(int(v * DPI) for v in attention_figure_size(2))
