"""DCASE label files: strong TSV (``filename onset offset event_label``) and weak TSV
(``filename event_labels``, comma-separated).

Readers are below the writers; both agree on the column names of DCASE 2019-2023. The
readers also take the headerless DCASE 2017 Task 4 ground-truth files.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Sequence

from ..files import DCASE_COLUMNS, dcase_row, write_dcase_tsv
from .dcase17_classes import DCASE17_CLASSES
from .manifest import (
    Clip,
    Event,
    LabelError,
    LabelSource,
    Manifest,
    _check_known,
    _label_file_lines,
    _manifest,
    _parse_seconds,
)


def write_dcase_strong_tsv(path: str | Path, manifest: Manifest) -> None:
    """Write every strong event of ``manifest`` (clips without strong labels are skipped).

    A strongly labelled clip with no events gets a row with empty onset/offset/label, as
    DESED does, so that it is not lost.
    """
    rows = []
    for clip in manifest:
        if clip.events is None:
            continue
        name = clip.audio_path.name if clip.audio_path is not None else clip.clip_id
        if not clip.events:
            rows.append(dcase_row(name, None, None, None))
        events = sorted(clip.events, key=lambda e: (e.onset, e.label))
        rows += [dcase_row(name, e.onset, e.offset, e.label) for e in events]
    write_dcase_tsv(path, rows)


def write_dcase_weak_tsv(path: str | Path, manifest: Manifest) -> None:
    """Write one row per clip with its comma-separated weak labels."""
    with Path(path).open("w") as f:
        f.write("filename\tevent_labels\n")
        for clip in manifest:
            name = clip.audio_path.name if clip.audio_path is not None else clip.clip_id
            f.write(f"{name}\t{','.join(sorted(clip.labels))}\n")


# --- readers ---

STRONG_COLUMNS = DCASE_COLUMNS
WEAK_COLUMNS = ("filename", "event_labels")

# ``<youtube id>_<start>_<end>.wav``: the DCASE/DESED naming of a YouTube segment.
_SEGMENT_IN_NAME = re.compile(r"_(\d+(?:\.\d+)?)_(\d+(?:\.\d+)?)(?:\.[A-Za-z][A-Za-z0-9]*)?$")


def clip_id_from_filename(filename: str) -> str:
    """The clip id of a DCASE file name: the name without its extension.

    Only an extension that starts with a letter is removed, so a bare segment id such as
    ``abc_30.000_40.000`` keeps its ``.000``.
    """
    suffix = PurePosixPath(filename).suffix
    if suffix and suffix[1:2].isalpha():
        return filename[: -len(suffix)]
    return filename


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _split_cells(numbered_lines: list[tuple[int, str]]) -> list[tuple[int, list[str]]]:
    """Tab-split, field-stripped rows of the non-blank lines."""
    return [(n, [cell.strip() for cell in line.split("\t")]) for n, line in numbered_lines if line.strip()]


def _column_positions(
    path: Path, line: int, header: list[str], wanted: Sequence[str]
) -> dict[str, int]:
    """Map each wanted column name to its position in ``header`` (order-free, case-free)."""
    positions = {name.lower(): i for i, name in enumerate(header)}
    missing = [name for name in wanted if name not in positions]
    if missing:
        raise LabelError(
            path,
            line,
            f"header lacks column(s) {', '.join(missing)}: expected {' '.join(wanted)} "
            f"(tab separated), got {header}",
        )
    return {name: positions[name] for name in wanted}


def _segment_bounds(filename: str) -> tuple[float, float] | None:
    match = _SEGMENT_IN_NAME.search(filename)
    return (float(match.group(1)), float(match.group(2))) if match else None


def _times_are_segment_bounds(rows: Sequence[tuple[str, float, float]]) -> bool:
    """True for DCASE 2017 *weak* ground truth, whose 'onset/offset' are the YouTube segment.

    ``groundtruth_weak_label_*.csv`` looks exactly like a headerless strong file
    (``X_30.000_40.000.wav  30.000  40.000  Car``). Read as strong it would put events at
    30-40 s into a 10 s clip, so it is recognised by every row's times equalling the
    bounds in the file name, at least one of them not starting at 0.
    """
    if not rows:
        return False
    any_nonzero_start = False
    for filename, onset, offset in rows:
        bounds = _segment_bounds(filename)
        if bounds is None or abs(bounds[0] - onset) > 1e-6 or abs(bounds[1] - offset) > 1e-6:
            return False
        any_nonzero_start = any_nonzero_start or bounds[0] > 0
    return any_nonzero_start


def _audio_path(filename: str, audio_dir: str | Path | None) -> Path:
    return Path(audio_dir) / filename if audio_dir is not None else Path(filename)


def read_dcase_strong_tsv(
    path: str | Path,
    classes: Sequence[str] | None = None,
    audio_dir: str | Path | None = None,
    keep_zero_length: bool = False,
) -> Manifest:
    """Read a strong-label file: one event per row, ``filename onset offset event_label``.

    Accepts the DESED header form and the headerless DCASE 2017 form (a file is headerless
    when its first row's second column is a number); tab separated, CRLF or LF.

    - Rows are grouped into clips by file name, in order of first appearance; a clip's weak
      label set is the set of its event labels, and exact duplicate events are merged.
    - A row with empty onset, offset and label (DESED) marks a strongly labelled clip with
      no events (``events == ()``).
    - A zero-length event (DCASE 2017 writes ``X.wav 0 0 Truck`` for a class that is present
      but was not located) keeps its label in the weak set but, unless ``keep_zero_length``,
      is dropped from ``events``: the clip stays strong, so such a label can be in
      ``clip.labels`` without an event.
    - ``clip_id`` is the file name without extension; ``audio_path`` is ``audio_dir /
      filename``, or the bare relative ``Path(filename)`` without ``audio_dir`` (resolve it
      later with :meth:`Manifest.resolve_audio`). ``duration`` is None: the name's segment
      bounds are not the audio's length (DESED events end up to 0.12 s after them).
    """
    path = Path(path)
    rows = _split_cells(_label_file_lines(path))
    known = set(classes) if classes is not None else None
    if not rows:
        return _manifest([], classes)

    first_line, first = rows[0]
    looks_like_data = first[0].lower() != "filename" and len(first) >= 2 and (
        _is_number(first[1]) or all(cell == "" for cell in first[1:])
    )
    if looks_like_data:
        columns = {name: i for i, name in enumerate(STRONG_COLUMNS)}
        width = len(STRONG_COLUMNS)
    else:
        columns = _column_positions(path, first_line, [c.lower() for c in first], STRONG_COLUMNS)
        width = len(first)
        rows = rows[1:]

    labels_of: dict[str, set[str]] = {}
    events_of: dict[str, set[Event]] = {}
    source_of: dict[str, LabelSource] = {}
    timed_rows: list[tuple[str, float, float]] = []
    for line, cells in rows:
        if len(cells) != width:
            raise LabelError(path, line, f"expected {width} tab-separated columns, got {len(cells)}")
        filename = cells[columns["filename"]]
        onset_text, offset_text, label = (cells[columns[c]] for c in STRONG_COLUMNS[1:])
        if not filename:
            raise LabelError(path, line, "empty filename")
        labels_of.setdefault(filename, set())
        events_of.setdefault(filename, set())
        source_of.setdefault(filename, LabelSource(path, line))
        if onset_text == offset_text == label == "":
            continue  # DESED: strongly labelled, no events
        if "" in (onset_text, offset_text, label):
            raise LabelError(
                path, line, "onset, offset and event_label must all be given, or all be empty (a clip with no events)"
            )
        onset = _parse_seconds(onset_text, path, line, "onset")
        offset = _parse_seconds(offset_text, path, line, "offset")
        if offset < onset:
            raise LabelError(path, line, f"offset {offset} is before onset {onset}")
        _check_known(label, known, path, line, clip_id_from_filename(filename))
        labels_of[filename].add(label)
        timed_rows.append((filename, onset, offset))
        if offset > onset or keep_zero_length:
            events_of[filename].add(Event(label, onset, offset))

    if _times_are_segment_bounds(timed_rows):
        raise LabelError(
            path,
            None,
            "every onset/offset equals the segment bounds in its file name: this is DCASE 2017 "
            "weak ground truth (groundtruth_weak_label_*.csv), read it with read_dcase_weak_tsv",
        )
    return strong_manifest(labels_of, events_of, classes, audio_dir, source_of)


def strong_manifest(labels_of: dict[str, set[str]], events_of: dict[str, set[Event]],
                    classes: Sequence[str] | None, audio_dir: str | Path | None,
                    source_of: dict[str, LabelSource] | None = None) -> Manifest:
    """Strongly labelled clips from per-file label sets and events (shared by the strong readers);
    ``source_of`` gives each file name's first row."""
    clips = [
        Clip(
            clip_id=clip_id_from_filename(filename),
            audio_path=_audio_path(filename, audio_dir),
            labels=frozenset(labels),
            events=tuple(sorted(events_of[filename], key=lambda e: (e.onset, e.offset, e.label))),
            source=(source_of or {}).get(filename),
        )
        for filename, labels in labels_of.items()
    ]
    return _manifest(clips, classes)


def split_weak_labels(text: str, classes: Sequence[str] | set[str] | None = None) -> list[str]:
    """Split a weak-label cell on its commas (``"dog,cat"``, ``"chirp, hum"``), stripping each label.

    A few class names hold ``", "`` themselves (DCASE 2017 / AudioSet: "Air horn, truck horn"):
    pieces that join into such a name stay one label. Those names are the ones in ``classes``
    when given, else the DCASE 2017 class names (:data:`~weaktag.labels.DCASE17_CLASSES`).
    """
    pieces = text.split(",")
    comma_names = _names_with_comma(classes)
    labels: list[str] = []
    i = 0
    while i < len(pieces):
        end = next((j for j in range(len(pieces), i + 1, -1) if ",".join(pieces[i:j]).strip() in comma_names), i + 1)
        label = ",".join(pieces[i:end]).strip()
        if label:
            labels.append(label)
        i = end
    return labels


def _names_with_comma(classes: Sequence[str] | set[str] | None) -> set[str]:
    if classes is None:
        classes = DCASE17_CLASSES
    return {name for name in classes if "," in name}


def read_dcase_weak_tsv(
    path: str | Path,
    classes: Sequence[str] | None = None,
    audio_dir: str | Path | None = None,
) -> Manifest:
    """Read clip-level labels; every clip gets ``events=None``.

    Two layouts, both tab separated:

    - DESED: header ``filename event_labels``, one row per clip, labels comma separated
      (see :func:`split_weak_labels`; an empty cell is a clip with no labels);
    - DCASE 2017 ``groundtruth_weak_label_*.csv``: no header, one row per (clip, label) as
      ``filename segment_start segment_end label``; the times are ignored.

    Rows of the same file name are merged. ``clip_id`` and ``audio_path`` follow
    :func:`read_dcase_strong_tsv`.
    """
    path = Path(path)
    rows = _split_cells(_label_file_lines(path))
    known = set(classes) if classes is not None else None
    if not rows:
        return _manifest([], classes)

    first_line, first = rows[0]
    if first[0].lower() == "filename":
        columns = _column_positions(path, first_line, [c.lower() for c in first], WEAK_COLUMNS)
        width = len(first)
        rows = rows[1:]
        one_label_per_row = False
    elif len(first) == 4:
        columns, width, one_label_per_row = {"filename": 0, "event_labels": 3}, 4, True
    elif len(first) == 2:
        columns, width, one_label_per_row = {"filename": 0, "event_labels": 1}, 2, False
    else:
        raise LabelError(
            path,
            first_line,
            f"expected a 'filename<TAB>event_labels' header, or headerless rows of 2 columns "
            f"(filename, labels) or 4 (DCASE 2017: filename, start, end, label); got {len(first)} columns",
        )

    labels_of: dict[str, set[str]] = {}
    source_of: dict[str, LabelSource] = {}
    for line, cells in rows:
        if len(cells) != width:
            raise LabelError(path, line, f"expected {width} tab-separated columns, got {len(cells)}")
        filename = cells[columns["filename"]]
        if not filename:
            raise LabelError(path, line, "empty filename")
        if one_label_per_row:
            start = _parse_seconds(cells[1], path, line, "segment start")
            end = _parse_seconds(cells[2], path, line, "segment end")
            if end < start:
                raise LabelError(path, line, f"segment end {end} is before its start {start}")
            labels = [cells[3]] if cells[3] else []
        else:
            labels = split_weak_labels(cells[columns["event_labels"]], known)
        for label in labels:
            _check_known(label, known, path, line, clip_id_from_filename(filename))
        labels_of.setdefault(filename, set()).update(labels)
        source_of.setdefault(filename, LabelSource(path, line))

    return weak_manifest(labels_of, source_of, audio_dir, classes)


def weak_manifest(labels_of: dict[str, set[str]], source_of: dict[str, LabelSource], audio_dir: str | Path | None,
                  classes: Sequence[str] | None, fold_of: dict[str, str] | None = None) -> Manifest:
    """One weakly labelled clip per file name, its labels merged over its rows, its source its first row (and its
    fold, from ``fold_of``)."""
    clips = [
        Clip(
            clip_id=clip_id_from_filename(filename),
            audio_path=_audio_path(filename, audio_dir),
            labels=frozenset(labels),
            events=None,
            source=source_of[filename],
            fold=(fold_of or {}).get(filename),
        )
        for filename, labels in labels_of.items()
    ]
    return _manifest(clips, classes)
