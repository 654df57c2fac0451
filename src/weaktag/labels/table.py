"""A spreadsheet of tags: CSV or TSV rows of ``file, labels`` (one's own recordings).

Accepted: a header naming a file column (:data:`FILE_COLUMNS`) and a label column
(:data:`LABEL_COLUMNS`), any case, other columns ignored; or headerless rows ``file,label[s]``.
The delimiter is a tab when the first line has one, else a comma; a CSV label cell may be
quoted and hold several labels (``a.wav,"dog,cat"``), and a headerless CSV row's cells after
the file are all labels (``a.wav,dog,cat``). Labels are split with
:func:`~weaktag.labels.dcase.split_weak_labels`; rows of one file merge. A header with a ``fold``
column gives every clip its cross-validation fold (``weaktag compare --folds``).
"""

from __future__ import annotations

import csv
from pathlib import Path, PurePosixPath
from typing import Sequence

from .dcase import clip_id_from_filename, split_weak_labels, weak_manifest
from .manifest import LabelError, LabelSource, Manifest, _check_known, _label_file_lines, _manifest

#: header names of the file column, in order of preference (case-insensitive)
FILE_COLUMNS = ("filename", "file", "path", "audio")
#: header names of the label column, in order of preference (case-insensitive)
LABEL_COLUMNS = ("labels", "event_labels", "label", "tags")
#: header name of the optional cross-validation fold column (case-insensitive)
FOLD_COLUMN = "fold"


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank lines as stripped cells, split on the delimiter of the first one (quotes honoured)."""
    lines = [(n, text) for n, text in _label_file_lines(path) if text.strip()]
    delimiter = "\t" if lines and "\t" in lines[0][1] else ","
    return [(n, [cell.strip() for cell in next(csv.reader([text], delimiter=delimiter))]) for n, text in lines]


def _header_columns(cells: Sequence[str]) -> tuple[int, int] | None:
    """(file column, label column) when ``cells`` is a header this reader knows, else None."""
    lowered = [c.lower() for c in cells]
    file_col = next((lowered.index(n) for n in FILE_COLUMNS if n in lowered), None)
    label_col = next((lowered.index(n) for n in LABEL_COLUMNS if n in lowered), None)
    return None if file_col is None or label_col is None else (file_col, label_col)


def is_tag_table(path: str | Path) -> bool:
    """True when the first row is a known header, or every row has at least two cells and the first
    is no header (a header with onset/offset is strong labels, not this format)."""
    rows = _rows(Path(path))
    if not rows:
        return False
    first = [c.lower() for c in rows[0][1]]
    if {"onset", "offset"} & set(first):
        return False
    if _header_columns(first) is not None:
        return True
    if first[0] in FILE_COLUMNS or (len(rows) > 1 and _looks_like_header(rows[0][1][0], rows[1][1][0])):
        return False  # a header without a label column this reader knows
    return all(len(cells) >= 2 for _, cells in rows)


def _looks_like_header(first: str, second: str) -> bool:
    """A first cell without a file suffix over one with (``name`` over ``a.wav``) is a column name."""
    return not PurePosixPath(first).suffix and bool(PurePosixPath(second).suffix)


def read_tag_table(
    path: str | Path,
    classes: Sequence[str] | None = None,
    audio_dir: str | Path | None = None,
) -> Manifest:
    """Read a CSV/TSV of ``file, labels`` rows (see the module docstring); every clip is weak.

    ``clip_id`` and ``audio_path`` follow :func:`~weaktag.labels.dcase.read_dcase_strong_tsv`;
    an empty label cell is a clip with no labels.
    """
    path = Path(path)
    rows = _rows(path)
    known = set(classes) if classes is not None else None
    if not rows:
        return _manifest([], classes)
    header = _header_columns(rows[0][1])
    fold_col = _fold_column(rows[0][1]) if header is not None else None
    if header is not None:
        rows = rows[1:]
    labels_of: dict[str, set[str]] = {}
    source_of: dict[str, LabelSource] = {}
    fold_of: dict[str, str] = {}
    for line, cells in rows:
        if header is not None:
            file_col, label_col = header
            if len(cells) <= max(header):
                raise LabelError(path, line, f"expected at least {max(header) + 1} columns, got {len(cells)}")
            filename, label_cells = cells[file_col], [cells[label_col]]
        else:
            if len(cells) < 2:
                raise LabelError(path, line, "expected a file and its label(s), got one column")
            filename, label_cells = cells[0], cells[1:]
        if not filename:
            raise LabelError(path, line, "empty file name")
        labels = [label for cell in label_cells for label in split_weak_labels(cell, known)]
        for label in labels:
            _check_known(label, known, path, line, clip_id_from_filename(filename))
        labels_of.setdefault(filename, set()).update(labels)
        source_of.setdefault(filename, LabelSource(path, line))
        if fold_col is not None:
            _add_fold(fold_of, filename, cells[fold_col] if fold_col < len(cells) else "", path, line)
    return weak_manifest(labels_of, source_of, audio_dir, classes, fold_of if fold_col is not None else None)


def _fold_column(header: Sequence[str]) -> int | None:
    lowered = [c.lower() for c in header]
    return lowered.index(FOLD_COLUMN) if FOLD_COLUMN in lowered else None


def _add_fold(fold_of: dict[str, str], filename: str, fold: str, path: Path, line: int) -> None:
    """A file's fold; every row of one file must name the same one."""
    if not fold:
        raise LabelError(path, line, f"{filename}: empty fold")
    if fold_of.setdefault(filename, fold) != fold:
        raise LabelError(path, line, f"{filename}: fold {fold!r}, but an earlier row gave it fold {fold_of[filename]!r}")
