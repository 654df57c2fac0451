"""AudioSet label files: ``class_labels_indices.csv`` and the segment lists
(``balanced_train_segments.csv``, ``eval_segments.csv``, ``unbalanced_train_segments.csv``).

Segment rows are ``YTID, start_seconds, end_seconds, "mid1,mid2,..."``. The official files
start with three ``#`` comment lines (``# Segments csv created ...``, ``# num_ytids=...``,
``# YTID, start_seconds, ...``) and put a space after each comma; copies in the wild drop
some of the comments or the spaces, and both are accepted.

Clip ids are ``{YTID}_{start:.3f}_{end:.3f}`` with no ``Y`` prefix: the DCASE 2017 Task 4
naming, which the SL-DCASE-17 strong labels also use (DESED prepends ``Y``; for such audio
folders use :meth:`Manifest.resolve_audio` or rename).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from .manifest import (
    Clip,
    LabelError,
    LabelSource,
    Manifest,
    _check_known,
    _label_file_lines,
    _manifest,
    _parse_seconds,
)


@dataclass(frozen=True)
class AudioSetClass:
    """One row of an ontology class list: output index, Freebase MID, display name."""

    index: int
    mid: str
    display_name: str


def audioset_clip_id(ytid: str, start: float, end: float) -> str:
    """``{YTID}_{start:.3f}_{end:.3f}``, the file stem DCASE 2017 uses for a segment."""
    return f"{ytid}_{start:.3f}_{end:.3f}"


def read_class_labels_indices(path: str | Path) -> list[AudioSetClass]:
    """Read ``class_labels_indices.csv`` (``index,mid,display_name``, names may be quoted)."""
    path = Path(path)
    numbered = [(n, line) for n, line in _label_file_lines(path) if line.strip()]
    if not numbered:
        raise LabelError(path, None, "empty file: expected an 'index,mid,display_name' header")
    header_line, header = numbered[0]
    if [c.strip().lower() for c in next(csv.reader([header]))] != ["index", "mid", "display_name"]:
        raise LabelError(path, header_line, f"expected header 'index,mid,display_name', got {header!r}")
    classes: list[AudioSetClass] = []
    seen_mids: dict[str, int] = {}
    for line, text in numbered[1:]:
        cells = next(csv.reader([text], skipinitialspace=True))
        if len(cells) != 3:
            raise LabelError(path, line, f"expected 3 comma-separated columns, got {len(cells)}")
        index_text, mid, name = (c.strip() for c in cells)
        try:
            index = int(index_text)
        except ValueError:
            raise LabelError(path, line, f"index {index_text!r} is not an integer") from None
        if mid in seen_mids:
            raise LabelError(path, line, f"MID {mid} repeats line {seen_mids[mid]}")
        seen_mids[mid] = line
        classes.append(AudioSetClass(index, mid, name))
    return classes


def _name_of_mid(class_labels_indices: str | Path | Iterable[AudioSetClass]) -> dict[str, str]:
    if isinstance(class_labels_indices, (str, Path)):
        class_labels_indices = read_class_labels_indices(class_labels_indices)
    return {c.mid: c.display_name for c in class_labels_indices}


def _segments_manifest(
    path: Path,
    rows: Iterable[tuple[int, str, str, str, str]],
    name_of_mid: Mapping[str, str],
    classes: Sequence[str] | None,
    keep_only: bool,
    audio_dir: str | Path | None,
    suffix: str,
) -> Manifest:
    """Build a manifest from ``(line, ytid, start, end, mids)`` cells of any segment list."""
    if keep_only and classes is None:
        raise ValueError("keep_only=True needs the classes to keep")
    known = set(classes) if classes is not None else None
    first_line_of: dict[str, int] = {}
    clips: list[Clip] = []
    for line, ytid, start_text, end_text, mids_text in rows:
        if not ytid:
            raise LabelError(path, line, "empty YTID")
        start = _parse_seconds(start_text, path, line, "start_seconds")
        end = _parse_seconds(end_text, path, line, "end_seconds")
        if end < start:
            raise LabelError(path, line, f"end_seconds {end} is before start_seconds {start}")
        labels: set[str] = set()
        for mid in (m.strip() for m in mids_text.split(",")):
            if not mid:
                continue
            if mid not in name_of_mid:
                raise LabelError(path, line, f"unknown label MID {mid!r} (not in the class list)")
            name = name_of_mid[mid]
            if keep_only:
                if name in known:  # type: ignore[operator]
                    labels.add(name)
            else:
                _check_known(name, known, path, line, audioset_clip_id(ytid, start, end))
                labels.add(name)
        if keep_only and not labels:
            continue
        clip_id = audioset_clip_id(ytid, start, end)
        if clip_id in first_line_of:
            raise LabelError(path, line, f"segment {clip_id} repeats line {first_line_of[clip_id]}")
        first_line_of[clip_id] = line
        clips.append(
            Clip(
                clip_id=clip_id,
                audio_path=Path(audio_dir) / f"{clip_id}{suffix}" if audio_dir is not None else None,
                labels=frozenset(labels),
                events=None,
                duration=round(end - start, 6),  # 33.7 - 23.7 is 10.000000000000004
                source=LabelSource(path, line),
            )
        )
    return _manifest(clips, classes)


def read_audioset_csv(
    path: str | Path,
    class_labels_indices: str | Path | Iterable[AudioSetClass],
    classes: Sequence[str] | None = None,
    audio_dir: str | Path | None = None,
    suffix: str = ".wav",
    keep_only: bool = False,
) -> Manifest:
    """Read an AudioSet segment list into a weak-label manifest labelled by display name.

    ``class_labels_indices`` is the path of ``class_labels_indices.csv`` or its parsed rows;
    a MID missing from it is a :class:`LabelError`. ``classes`` (display names) either
    validates (``keep_only=False``: a label outside it is an error) or selects
    (``keep_only=True``: other labels are dropped, then clips left with none), which is how
    a subset such as the 17 DCASE 2017 classes is cut from AudioSet. ``duration`` is
    ``end - start`` (rounded to 6 decimals); ``audio_path`` is ``audio_dir / (clip_id +
    suffix)``, or None without ``audio_dir``.
    """
    path = Path(path)
    name_of_mid = _name_of_mid(class_labels_indices)

    def rows() -> Iterable[tuple[int, str, str, str, str]]:
        for line, text in _label_file_lines(path):
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            cells = next(csv.reader([text], skipinitialspace=True))
            if len(cells) != 4:
                raise LabelError(
                    path, line, f"expected 4 comma-separated columns (YTID, start, end, labels), got {len(cells)}"
                )
            ytid, start, end, mids = (c.strip() for c in cells)
            yield line, ytid, start, end, mids

    return _segments_manifest(path, rows(), name_of_mid, classes, keep_only, audio_dir, suffix)
