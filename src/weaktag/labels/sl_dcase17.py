"""SL-DCASE-17: the split of Kim & Ghaffarzadegan (EUSIPCO 2019) over the 17 DCASE 2017
Task 4 classes, and the DCASE 2017 class list it needs.

The three files are pandas exports: tab separated, with an unnamed index column first.

- ``train_strong_labels.csv``: ``<idx> DCASE17-filename label_id time``, one row per
  (clip, class); ``time`` is a JSON list of ``[onset, offset]`` pairs. ``label_id`` is the
  class's AudioSet **MID** (``/m/0k4j``), not a row number of the 17-class list. Checked on
  the data: the 1,955 rows cover the 1,591 clips of the DCASE 2017 strong testing (488) and
  evaluation (1,103) sets, and mapping each MID through ``sound_event_list_17_classes.txt``
  reproduces the classes and times of ``groundtruth_strong_label_*.csv`` for all clips but
  two (one lacks the DCASE file's Truck label, one its extra 0-10 s Car event). Times carry
  float noise (``9.716000000000001``) and are rounded to 6 decimals (the source has <= 4).
- ``validation_set.csv`` / ``test_set.csv``: AudioSet segment lists
  (``<idx> # YTID start_seconds end_seconds positive_labels``) whose label cell is
  wrapped in three double quotes by the export; read both with :func:`read_sl_dcase17_segments`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterable, Sequence

from .audioset import AudioSetClass, _segments_manifest
from .dcase17_classes import DCASE17_CLASS_LIST
from .dcase import clip_id_from_filename, strong_manifest
from .manifest import Event, LabelError, LabelSource, Manifest, _check_known, _label_file_lines, _manifest



def read_dcase17_class_list(path: str | Path) -> list[AudioSetClass]:
    """Read ``sound_event_list_17_classes.txt``: ``MID confidence name`` rows, tab separated.

    The header row (``Class_ID ... Class_Label``) is space separated in the published file,
    so it is recognised by its first word; ``index`` is the 0-based row order.
    """
    path = Path(path)
    classes: list[AudioSetClass] = []
    for line, text in _label_file_lines(path):
        if not text.strip() or (not classes and text.split()[0] == "Class_ID"):
            continue
        cells = [c.strip() for c in text.split("\t")]
        if len(cells) != 3:
            raise LabelError(path, line, f"expected 3 tab-separated columns (MID, confidence, name), got {len(cells)}")
        classes.append(AudioSetClass(len(classes), cells[0], cells[2]))
    if not classes:
        raise LabelError(path, None, "no classes in file")
    return classes


def _tab_rows(path: Path) -> list[tuple[int, list[str]]]:
    """csv-decoded, tab-separated rows (undoes the pandas quoting) of the non-blank lines."""
    numbered = [(n, line) for n, line in _label_file_lines(path) if line.strip()]
    return [(n, [c.strip() for c in next(csv.reader([line], delimiter="\t"))]) for n, line in numbered]


def _header_positions(path: Path, line: int, header: list[str], wanted: Sequence[str]) -> dict[str, int]:
    names = [h.lstrip("#").strip() for h in header]
    missing = [w for w in wanted if w not in names]
    if missing:
        raise LabelError(path, line, f"header lacks column(s) {', '.join(missing)}; got {header}")
    return {w: names.index(w) for w in wanted}


def _name_of_mid(class_list: Iterable[AudioSetClass]) -> dict[str, str]:
    return {c.mid: c.display_name for c in class_list}


def read_sl_dcase17_strong(
    path: str | Path,
    classes: Sequence[str] | None = None,
    audio_dir: str | Path | None = None,
    class_list: Iterable[AudioSetClass] = DCASE17_CLASS_LIST,
    keep_zero_length: bool = False,
) -> Manifest:
    """Read ``train_strong_labels.csv`` into strongly labelled clips named by class name.

    MIDs are mapped through ``class_list`` (default: the DCASE 2017 list; an unknown MID is
    a :class:`LabelError`). Rows of the same file are merged. Zero-length ``[0.0, 0.0]``
    events are handled as in :func:`read_dcase_strong_tsv`: the label stays, the event is
    dropped unless ``keep_zero_length``. ``clip_id``/``audio_path`` also follow that reader.
    """
    path = Path(path)
    name_of_mid = _name_of_mid(class_list)
    known = set(classes) if classes is not None else None
    rows = _tab_rows(path)
    if not rows:
        return _manifest([], classes)
    header_line, header = rows[0]
    columns = _header_positions(path, header_line, header, ("DCASE17-filename", "label_id", "time"))

    labels_of: dict[str, set[str]] = {}
    events_of: dict[str, set[Event]] = {}
    source_of: dict[str, LabelSource] = {}
    for line, cells in rows[1:]:
        if len(cells) != len(header):
            raise LabelError(path, line, f"expected {len(header)} tab-separated columns, got {len(cells)}")
        filename, mid, times_text = (cells[columns[c]] for c in ("DCASE17-filename", "label_id", "time"))
        if not filename:
            raise LabelError(path, line, "empty filename")
        if mid not in name_of_mid:
            raise LabelError(path, line, f"unknown label id {mid!r} (not a MID of the class list)")
        label = name_of_mid[mid]
        _check_known(label, known, path, line, clip_id_from_filename(filename))
        try:
            intervals = json.loads(times_text)
            pairs = [(float(a), float(b)) for a, b in intervals]
        except (json.JSONDecodeError, TypeError, ValueError):
            raise LabelError(path, line, f"time {times_text!r} is not a list of [onset, offset] pairs") from None
        labels_of.setdefault(filename, set()).add(label)
        source_of.setdefault(filename, LabelSource(path, line))
        events = events_of.setdefault(filename, set())
        for onset, offset in pairs:
            onset, offset = round(onset, 6), round(offset, 6)  # drop float noise only
            if onset < 0 or offset < onset:
                raise LabelError(path, line, f"bad interval [{onset}, {offset}]: need 0 <= onset <= offset")
            if offset > onset or keep_zero_length:
                events.add(Event(label, onset, offset))

    return strong_manifest(labels_of, events_of, classes, audio_dir, source_of)


def read_sl_dcase17_segments(
    path: str | Path,
    classes: Sequence[str] | None = None,
    audio_dir: str | Path | None = None,
    suffix: str = ".wav",
    class_list: Iterable[AudioSetClass] = DCASE17_CLASS_LIST,
) -> Manifest:
    """Read ``validation_set.csv`` or ``test_set.csv`` (weak labels, AudioSet segments).

    Clips are named, timed and located as by :func:`read_audioset_csv`; MIDs are mapped
    through ``class_list`` and one outside it is a :class:`LabelError`.
    """
    path = Path(path)
    rows = _tab_rows(path)
    name_of_mid = _name_of_mid(class_list)
    if not rows:
        return _manifest([], classes)
    header_line, header = rows[0]
    wanted = ("YTID", "start_seconds", "end_seconds", "positive_labels")
    columns = _header_positions(path, header_line, header, wanted)

    def cells_of_rows() -> Iterable[tuple[int, str, str, str, str]]:
        for line, cells in rows[1:]:
            if len(cells) != len(header):
                raise LabelError(path, line, f"expected {len(header)} tab-separated columns, got {len(cells)}")
            ytid, start, end, mids = (cells[columns[c]] for c in wanted)
            yield line, ytid, start, end, mids.strip('"')

    return _segments_manifest(path, cells_of_rows(), name_of_mid, classes, False, audio_dir, suffix)
