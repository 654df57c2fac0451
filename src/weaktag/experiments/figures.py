"""The paper's figures drawn straight from checkpoints: Fig. 4 (gain vs. event duration) for two
trained models on a labelled set, and Fig. 5 (attention and X^a) for one recording, which ``weaktag plot``
calls; and a comparison's Fig. 5, from the first trial of each arm."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..audio import LogMel, load_audio
from ..checkpoint import load_checkpoint
from ..data import FeatureSet, build_feature_set, no_usable_clip_reason
from ..errors import DataError, UsageError
from ..files import write_csv, write_text_atomic
from ..inference import Tagger
from ..labels import Clip, read_labels
from ..metrics.tagging import tagging_metrics
from ..supervision import SCHEMES
from ..training import predict_features
from .plots import (AttentionPanel, GainVsDuration, gain_vs_duration_table, median_event_durations, plot_attention,
                    plot_gain_vs_duration)
from .report import gain_rows
from .trials import Arm, scheme_of, trial_dir

#: events at most this long make a clip a good Fig. 5 example (the paper's gain is on short events)
SHORT_EVENT_SECONDS = 1.0


def _load_same_classes(paths: Sequence[str | Path]) -> list[Any]:
    checkpoints = [load_checkpoint(p) for p in paths]
    for c in checkpoints[1:]:
        if c.classes != checkpoints[0].classes:
            raise UsageError(f"{c.path} and {checkpoints[0].path} have different class lists; cannot compare them")
    return checkpoints


def gain_vs_duration_for_checkpoints(
    checkpoint_a: str | Path,
    checkpoint_b: str | Path,
    labels: str | Path,
    out: str | Path,
    audio_dir: str | Path | None = None,
    durations_labels: str | Path | None = None,
    table_out: str | Path | None = None,
    label_a: str | None = None,
    label_b: str | None = None,
) -> GainVsDuration:
    """Fig. 4 for two checkpoints: per-class AP on ``labels``, gain (b - a) vs. median event duration.

    Durations come from the strong labels of ``durations_labels`` when given (e.g. the training
    set, as the paper), else from ``labels`` itself. Writes the PNG to ``out`` and, with
    ``table_out``, the table (``.csv`` or markdown by suffix).
    """
    ckpt_a, ckpt_b = _load_same_classes([checkpoint_a, checkpoint_b])
    classes = ckpt_a.classes
    manifest = read_labels(labels, audio_dir=audio_dir, classes=classes, classes_from=f"the checkpoint {checkpoint_a}")
    duration_source = read_labels(durations_labels, audio_dir=audio_dir) if durations_labels else manifest
    if not any(clip.events for clip in duration_source):
        raise DataError(f"{durations_labels or labels} has no strong labels (onset/offset): event durations are "
                         "unknown; pass labels with onsets/offsets (--durations-labels)")
    durations = median_event_durations(duration_source, classes)
    features = build_feature_set(manifest, classes, grid=ckpt_a.model.grid)
    if len(features) == 0:
        raise DataError(f"{labels}: no usable clip" + no_usable_clip_reason(features.skipped, "--audio-dir"))
    ap = [tagging_metrics(features.weak, predict_features(c.model, features).clip_probs, classes).per_class_ap
          for c in (ckpt_a, ckpt_b)]
    label_a = label_a or f"{ckpt_a.scheme} ({Path(checkpoint_a).parent.name})"
    label_b = label_b or f"{ckpt_b.scheme} ({Path(checkpoint_b).parent.name})"
    table = gain_vs_duration_table(ap[0], ap[1], classes, durations, label_a, label_b)
    plot_gain_vs_duration(ap[0], ap[1], classes, durations, label_a, label_b, out)
    if table_out:
        if Path(table_out).suffix.lower() == ".csv":
            write_csv(table_out, gain_rows(table))
        else:
            write_text_atomic(table_out, table.to_markdown() + "\n")
    return table


@dataclass
class AttentionFigure:
    """What :func:`attention_figure_for_audio` drew."""

    path: Path
    clip_id: str | None
    events: list[Any]
    panels: list[AttentionPanel]
    seconds: float

    @property
    def titles(self) -> list[str]:
        return [panel.title for panel in self.panels]


@dataclass(frozen=True)
class ModelOutputs:
    """One model's matrices for Fig. 5: X^a and A (None without attention), on its own segment length."""

    name: str
    segment: np.ndarray  # (C, T)
    attention: np.ndarray | None
    segment_seconds: float


def attention_panels(outputs: Sequence[ModelOutputs], show: str = "both") -> list[AttentionPanel]:
    """One :class:`ModelOutputs` per model -> plot panels: ``A — name`` and/or ``X^a — name``.

    ``show``: ``both``, ``attention`` (A only; X^a for models without attention) or ``segment``.
    """
    if show not in ("both", "attention", "segment"):
        raise ValueError(f"show must be both, attention or segment, not {show!r}")
    panels = []
    for out in outputs:
        if out.attention is not None and show in ("both", "attention"):
            panels.append(AttentionPanel(f"attention A — {out.name}", out.attention, out.segment_seconds))
        if show in ("both", "segment") or out.attention is None:
            panels.append(AttentionPanel(f"segment output X^a — {out.name}", out.segment, out.segment_seconds))
    return panels


def _panel_names(paths: Sequence[str | Path], schemes: Sequence[str]) -> list[str]:
    names = list(schemes)
    if len(set(names)) < len(names):  # the same scheme twice: tell them apart by folder
        names = [f"{s} ({Path(p).parent.name}/{Path(p).name})" for s, p in zip(schemes, paths)]
    return names


def _find_clip(manifest: Any, audio: Path) -> Any:
    target = audio.resolve()
    for clip in manifest:
        if clip.audio_path is not None and Path(clip.audio_path).resolve() == target:
            return clip
    for clip in manifest:  # labels naming files without the folder
        if clip.clip_id == audio.stem or (clip.audio_path is not None and Path(clip.audio_path).name == audio.name):
            return clip
    raise UsageError(f"{audio.name} is not in the label file (looked for its path, its file name and clip id "
                     f"{audio.stem!r})")


def attention_figure_for_audio(
    checkpoints: Sequence[str | Path],
    audio: str | Path,
    out: str | Path,
    labels: str | Path | None = None,
    audio_dir: str | Path | None = None,
    show: str = "both",
    names: Sequence[str] | None = None,
) -> AttentionFigure:
    """Fig. 5 for one recording: log-mel, ground truth (from ``labels`` when given) and A / X^a of each checkpoint.

    All checkpoints must share a class list. The whole recording is used (no 10 s crop). Each
    checkpoint tags the file through its own :class:`~weaktag.inference.Tagger`, so it decodes
    the audio at its own sample rate, on its own log-mel front end and time grid (an aisfx model
    at 44.1 kHz beside a VGGish one at 16 kHz); the log-mel row is the first checkpoint's.
    """
    if not checkpoints:
        raise UsageError("give at least one checkpoint")
    loaded = _load_same_classes(checkpoints)
    classes = loaded[0].classes
    audio = Path(audio)
    grid = loaded[0].model.grid
    wave = load_audio(audio, grid.sample_rate, allow_silent=True)
    with torch.no_grad():
        logmel = LogMel(grid.frontend)(torch.from_numpy(wave))[0].numpy()
    clip_id, events = None, []
    if labels:
        clip = _find_clip(read_labels(labels, audio_dir=audio_dir), audio)
        clip_id, events = clip.clip_id, list(clip.events or ())
    names = list(names) if names else _panel_names(checkpoints, [c.scheme for c in loaded])
    if len(names) != len(loaded):
        raise UsageError(f"{len(names)} names for {len(loaded)} checkpoints")
    outputs = []
    for name, ckpt in zip(names, loaded):
        result = Tagger(ckpt, skip_silent=False, detect_events=False).tag(audio)
        outputs.append(ModelOutputs(name, result.segment_probs, result.attention, result.segment_seconds))
    panels = attention_panels(outputs, show)
    title = "log-mel spectrogram"
    if any(c.model.grid.frontend != grid.frontend for c in loaded[1:]):  # say whose front end the row shows
        front = grid.frontend
        title += f" ({names[0]}: {front.sample_rate / 1000:g} kHz, {1000 * front.frame_seconds:.1f} ms hop)"
    plot_attention(logmel, events, classes, panels, out, hop_seconds=grid.frontend.frame_seconds,
                   spectrogram_title=title)
    return AttentionFigure(Path(out), clip_id, events, panels, len(wave) / grid.sample_rate)


# --------------------------------------------------------------------------- a comparison's Fig. 5


def choose_attention_clip(clips: Sequence[Clip], classes: Sequence[str], clip_id: str | None = None) -> Clip | None:
    """The Fig. 5 example: ``clip_id``, or the strongly labelled test clip that best shows short events.

    Preference: a target-class event of at most ``SHORT_EVENT_SECONDS``, then more distinct
    classes (up to 3; the paper's example has two), then the shortest such event, then clip id.
    """
    if clip_id is not None:
        for clip in clips:
            if clip.clip_id == clip_id:
                return clip
        raise UsageError(f"clip {clip_id!r} is not in the test set")
    known = set(classes)
    best, best_key = None, None
    for clip in clips:
        events = [e for e in (clip.events or ()) if e.label in known and e.onset < 10.0]
        if not events:
            continue
        shortest = min(e.duration for e in events)
        key = (shortest > SHORT_EVENT_SECONDS, -min(len({e.label for e in events}), 3), shortest, clip.clip_id)
        if best_key is None or key < best_key:
            best, best_key = clip, key
    return best


def _safe_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def draw_attention(out_dir: Path, schemes: Sequence[str], seed: int, test: FeatureSet,
                   clip_id: str | None = None) -> dict[str, Any] | None:
    """Fig. 5 for one test clip from the trial-``seed`` checkpoint of each scheme (attention schemes; all when none)."""
    clip = choose_attention_clip(test.clips, test.classes, clip_id)
    if clip is None:
        return None
    index = next(i for i, c in enumerate(test.clips) if c.clip_id == clip.clip_id)
    chosen = [s for s in schemes if SCHEMES[scheme_of(s)].uses_attention] or list(schemes)
    one = FeatureSet([clip], list(test.classes), test.features[index : index + 1], grid=test.grid,
                     clip_seconds=test.clip_seconds)
    outputs = []
    for scheme in chosen:
        ckpt = load_checkpoint(trial_dir(out_dir, scheme, seed) / "model.pt")
        pred = predict_features(ckpt.model, one)
        outputs.append(ModelOutputs(f"{scheme} (seed {seed})", pred.segment_probs[0],
                                    None if pred.attention is None else pred.attention[0], test.grid.segment_seconds))
    recipe = Arm.parse(chosen[0]).recipe
    name = f"attention_{_safe_name(recipe) + '_' if recipe else ''}{_safe_name(clip.clip_id)}.png"
    events = list(clip.events or ())
    plot_attention(test.features[index].numpy(), events, test.classes, attention_panels(outputs), out_dir / name,
                   hop_seconds=test.grid.frontend.frame_seconds)
    return {"clip": clip.clip_id, "figure": name, "seed": seed, "schemes": chosen, "recipe": recipe,
            "attention": any(o.attention is not None for o in outputs),
            "events": [{"label": e.label, "onset": e.onset, "offset": e.offset} for e in events]}
