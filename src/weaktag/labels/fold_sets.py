"""ESC-50's ``esc50.csv`` and UrbanSound8K's ``UrbanSound8K.csv``: single-label sets with official folds.

Both are read as distributed, beside their audio folders:

* ESC-50 (``ESC-50-master/meta/esc50.csv``, audio in ``ESC-50-master/audio/<filename>``): columns
  ``filename, fold, target, category, esc10, src_file, take``; 5 folds, 50 classes (``category``);
* UrbanSound8K (``UrbanSound8K/metadata/UrbanSound8K.csv``, audio in ``UrbanSound8K/audio/fold<k>/<file>``):
  columns ``slice_file_name, fsID, start, end, salience, fold, classID, class``; 10 folds, 10 classes.

Without ``audio_dir``, the audio folder is ``audio`` beside the CSV's folder (the datasets' own layout); with it,
``audio_dir`` is that folder. Every clip is weak, with one label and its fold.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from .dcase import clip_id_from_filename
from .manifest import Clip, LabelError, LabelSource, Manifest, _check_known, _label_file_lines, _manifest

#: columns that name each format (in its header)
ESC50_COLUMNS = ("filename", "fold", "category", "esc10")
URBANSOUND8K_COLUMNS = ("slice_file_name", "fold", "class")


def header_cells(path: str | Path) -> list[str]:
    """The first non-blank line's comma-separated cells, stripped and lower-cased."""
    for _, text in _label_file_lines(Path(path)):
        if text.strip():
            return [c.strip().lower() for c in next(csv.reader([text]))]
    return []


def is_esc50_csv(cells: Sequence[str]) -> bool:
    return all(c in cells for c in ESC50_COLUMNS)


def is_urbansound8k_csv(cells: Sequence[str]) -> bool:
    return all(c in cells for c in URBANSOUND8K_COLUMNS)


def _default_audio_dir(path: Path, audio_dir: str | Path | None) -> Path:
    return Path(audio_dir) if audio_dir is not None else path.resolve().parent.parent / "audio"


def _records(path: Path, needed: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """The rows as ``(line, {column: cell})``, every ``needed`` cell present and non-empty."""
    lines = [(n, text) for n, text in _label_file_lines(path) if text.strip()]
    if not lines:
        raise LabelError(path, None, "empty file")
    header = [c.strip().lower() for c in next(csv.reader([lines[0][1]]))]
    missing = [c for c in needed if c not in header]
    if missing:
        raise LabelError(path, lines[0][0], f"header lacks the column(s) {', '.join(missing)}")
    records = []
    for line, text in lines[1:]:
        cells = [c.strip() for c in next(csv.reader([text]))]
        if len(cells) != len(header):
            raise LabelError(path, line, f"expected {len(header)} columns, got {len(cells)}")
        row = dict(zip(header, cells))
        empty = [c for c in needed if not row[c]]
        if empty:
            raise LabelError(path, line, f"empty {', '.join(empty)}")
        records.append((line, row))
    return records


def _fold(row: dict[str, str], path: Path, line: int) -> str:
    if not row["fold"].isdigit():
        raise LabelError(path, line, f"fold {row['fold']!r} is not a whole number")
    return str(int(row["fold"]))


def read_esc50_csv(path: str | Path, classes: Sequence[str] | None = None, audio_dir: str | Path | None = None,
                   esc10: bool = False) -> Manifest:
    """ESC-50's ``esc50.csv``: one clip per row, labelled by its ``category``, in its ``fold``; ``esc10`` keeps the
    rows of the ESC-10 subset (the ``esc10`` column is ``True``). Audio: ``audio_dir/<filename>``."""
    path = Path(path)
    folder = _default_audio_dir(path, audio_dir)
    known = set(classes) if classes is not None else None
    clips = []
    for line, row in _records(path, ESC50_COLUMNS):
        if esc10 and row["esc10"].lower() != "true":
            continue
        clip_id = clip_id_from_filename(row["filename"])
        _check_known(row["category"], known, path, line, clip_id)
        clips.append(Clip(clip_id, folder / row["filename"], frozenset({row["category"]}),
                          source=LabelSource(path, line), fold=_fold(row, path, line)))
    return _manifest(clips, classes)


def read_urbansound8k_csv(path: str | Path, classes: Sequence[str] | None = None,
                          audio_dir: str | Path | None = None) -> Manifest:
    """UrbanSound8K's ``UrbanSound8K.csv``: one clip per row, labelled by its ``class``, in its ``fold``.
    Audio: ``audio_dir/fold<k>/<slice_file_name>``."""
    path = Path(path)
    folder = _default_audio_dir(path, audio_dir)
    known = set(classes) if classes is not None else None
    clips = []
    for line, row in _records(path, URBANSOUND8K_COLUMNS):
        clip_id = clip_id_from_filename(row["slice_file_name"])
        _check_known(row["class"], known, path, line, clip_id)
        fold = _fold(row, path, line)
        clips.append(Clip(clip_id, folder / f"fold{fold}" / row["slice_file_name"], frozenset({row["class"]}),
                          source=LabelSource(path, line), fold=fold))
    return _manifest(clips, classes)
