"""Label readers: every format becomes one typed :class:`Manifest`.

:func:`read_labels` picks the reader from the path (what the CLI's ``--labels`` uses); the
format readers can also be called directly for their extra options.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from .audioset import AudioSetClass, audioset_clip_id, read_audioset_csv, read_class_labels_indices
from .dcase import (
    _is_number,
    _times_are_segment_bounds,
    clip_id_from_filename,
    read_dcase_strong_tsv,
    read_dcase_weak_tsv,
    split_weak_labels,
    write_dcase_strong_tsv,
    write_dcase_weak_tsv,
)
from .dcase17_classes import DCASE17_CLASS_LIST, DCASE17_CLASSES
from .fold_sets import header_cells, is_esc50_csv, is_urbansound8k_csv, read_esc50_csv, read_urbansound8k_csv
from .folder import read_folder
from .manifest import Clip, Event, LabelError, LabelSource, Manifest, PackedAudio, UnknownLabelError, _label_file_lines
from .pack import PACK_JSON, read_pack
from .sl_dcase17 import (
    read_dcase17_class_list,
    read_sl_dcase17_segments,
    read_sl_dcase17_strong,
)
from .splits import hold_out, recording_of, youtube_id
from .table import FILE_COLUMNS, LABEL_COLUMNS, is_tag_table, read_tag_table

__all__ = [
    "AudioSetClass",
    "Clip",
    "DCASE17_CLASSES",
    "DCASE17_CLASS_LIST",
    "Event",
    "LabelError",
    "LabelSource",
    "Manifest",
    "PackedAudio",
    "UnknownLabelError",
    "audioset_clip_id",
    "clip_id_from_filename",
    "detect_label_format",
    "hold_out",
    "read_audioset_csv",
    "read_class_labels_indices",
    "read_dcase17_class_list",
    "read_dcase_strong_tsv",
    "read_dcase_weak_tsv",
    "read_esc50_csv",
    "read_folder",
    "read_labels",
    "read_manifest_jsonl",
    "read_pack",
    "read_sl_dcase17_segments",
    "read_sl_dcase17_strong",
    "read_tag_table",
    "read_urbansound8k_csv",
    "recording_of",
    "split_weak_labels",
    "write_dcase_strong_tsv",
    "write_dcase_weak_tsv",
    "youtube_id",
]


def read_manifest_jsonl(
    path: str | Path, classes: Sequence[str] | None = None, audio_dir: str | Path | None = None
) -> Manifest:
    """:meth:`Manifest.from_jsonl` with the readers' ``classes`` and ``audio_dir`` options.

    ``classes`` re-indexes the manifest (a label outside it is a :class:`LabelError` naming
    the line); ``audio_dir`` is prepended to relative audio paths.
    """
    path = Path(path)
    if not path.exists():
        raise LabelError(path, None, "file not found")
    manifest = Manifest.from_jsonl(path, resolve_audio=audio_dir is None)
    if audio_dir is not None:
        manifest = Manifest(
            [
                replace(c, audio_path=Path(audio_dir) / c.audio_path)
                if c.audio_path is not None and not c.audio_path.is_absolute()
                else c
                for c in manifest.clips
            ],
            list(manifest.classes),
        )
    if classes is not None:
        manifest = manifest.with_classes(classes)  # an unknown label names its line (clip.source)
    return manifest


def detect_label_format(path: str | Path) -> str:
    """Name the format of ``path`` from what it holds (the file extension is not trusted).

    One of ``pack`` (a folder with a ``pack.json``, or that file: see :mod:`weaktag.packing`),
    ``folder``, ``jsonl``, ``dcase_strong``, ``dcase_weak``, ``audioset``, ``sl_dcase17_strong``,
    ``sl_dcase17_segments``, ``esc50`` and ``urbansound8k`` (the datasets' CSVs, see
    :mod:`weaktag.labels.fold_sets`), ``tags`` (a CSV/TSV of file and labels, see :mod:`weaktag.labels.table`);
    anything else is a :class:`LabelError` that lists what is accepted.
    Headerless tab-separated rows of four columns with a numeric second one are DCASE
    strong labels, unless every row's times are the segment bounds in its file name (DCASE
    2017 weak ground truth, see :func:`read_dcase_strong_tsv`).
    """
    path = Path(path)
    if (path / PACK_JSON).is_file() or (path.name == PACK_JSON and path.is_file()):
        return "pack"  # before the folder rule: a pack is a folder too
    if path.is_dir():
        return "folder"
    if path.suffix.lower() == ".jsonl":
        return "jsonl"
    lines = [(n, text) for n, text in _label_file_lines(path) if text.strip()]
    if not lines:
        raise LabelError(path, None, "empty label file: cannot tell its format")
    first_line, first = lines[0]
    comma_cells = header_cells(path)
    if is_esc50_csv(comma_cells):
        return "esc50"
    if is_urbansound8k_csv(comma_cells):
        return "urbansound8k"
    cells = [c.strip().lower() for c in first.split("\t")]
    if "dcase17-filename" in cells:
        return "sl_dcase17_strong"
    if "# ytid" in cells:
        return "sl_dcase17_segments"
    if cells[0] == "filename":
        if {"onset", "offset", "event_label"} <= set(cells):
            return "dcase_strong"
        if "event_labels" in cells:
            return "dcase_weak"
    elif first.startswith("#") or (len(cells) == 1 and _is_segment_row(first)):
        return "audioset"
    elif len(cells) == 4 and (_is_number(cells[1]) or cells[1:] == ["", "", ""]):
        timed = []
        for _, text in lines:
            row = [c.strip() for c in text.split("\t")]
            if len(row) == 4 and _is_number(row[1]) and _is_number(row[2]):
                timed.append((row[0], float(row[1]), float(row[2])))
        return "dcase_weak" if _times_are_segment_bounds(timed) else "dcase_strong"
    elif len(cells) == 2:
        return "dcase_weak"
    if is_tag_table(path):
        return "tags"
    raise LabelError(
        path,
        first_line,
        "unrecognised label format: expected a CSV or TSV of tags (a header with a file column "
        f"{'/'.join(FILE_COLUMNS)} and a label column {'/'.join(LABEL_COLUMNS)}, or headerless rows "
        "file,label[s]), a DCASE strong TSV (filename onset offset event_label), a class folder "
        "(<root>/<class>/<file>), a .jsonl manifest, an AudioSet segment CSV or an SL-DCASE-17 file",
    )


def _is_segment_row(line: str) -> bool:
    """An AudioSet segment row: ``YTID, start, end, "labels"`` (numbers second and third)."""
    cells = next(csv.reader([line], skipinitialspace=True))
    return len(cells) >= 4 and _is_number(cells[1]) and _is_number(cells[2])


def read_labels(path: str | Path, **kwargs: Any) -> Manifest:
    """Read any supported label source, choosing the reader with :func:`detect_label_format`.

    ``kwargs`` go to that reader (``classes``, ``audio_dir``, ...); ones set to None are
    dropped first, so a CLI can pass its options through unchanged. An AudioSet segment
    list needs ``class_labels_indices``; without ``classes`` it is indexed by every class of
    that list, in its order (AudioSet's output index), not only by the labels it uses. Other
    formats ignore ``class_labels_indices``, so one config value can serve every split.

    Without ``audio_dir``, the file names of a DCASE TSV or an SL-DCASE-17 list, the clip ids
    of an AudioSet segment list and the relative audio paths of a .jsonl manifest are resolved
    against the label file's own folder (not the working folder). A class folder holds its
    audio, so ``audio_dir`` does not apply to it and is ignored (one config value can serve
    every split). ESC-50's and UrbanSound8K's CSVs find their audio in ``audio`` beside the CSV's folder,
    as the datasets are distributed (``audio_dir`` names that folder instead). Nor does it apply to a pack (:mod:`weaktag.packing`), whose clips read their audio from
    its shards.

    ``classes_from`` says where ``classes`` came from (e.g. "the training labels"); an unknown
    label's :class:`UnknownLabelError` says it too.

    >>> import weaktag
    >>> manifest = weaktag.read_labels(f"{data}/train/manifest.jsonl")
    >>> len(manifest), manifest.clips[0].audio_path.exists(), manifest.classes == sorted(manifest.classes)
    (12, True, True)
    """
    path = Path(path)
    classes_from = kwargs.pop("classes_from", None)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if not path.exists():
        raise LabelError(path, None, "file not found")
    kind = detect_label_format(path)
    if kind == "audioset" and "class_labels_indices" not in kwargs:
        raise LabelError(
            path, None, "an AudioSet segment list needs class_labels_indices= (its class_labels_indices.csv)"
        )
    if kind == "audioset" and "classes" not in kwargs:
        index = kwargs["class_labels_indices"]
        index = read_class_labels_indices(index) if isinstance(index, (str, Path)) else list(index)
        kwargs.update(class_labels_indices=index, classes=[c.display_name for c in index])
    elif kind != "audioset":
        kwargs.pop("class_labels_indices", None)
    reader = {
        "pack": read_pack,
        "folder": read_folder,
        "jsonl": read_manifest_jsonl,
        "dcase_strong": read_dcase_strong_tsv,
        "dcase_weak": read_dcase_weak_tsv,
        "audioset": read_audioset_csv,
        "sl_dcase17_strong": read_sl_dcase17_strong,
        "sl_dcase17_segments": read_sl_dcase17_segments,
        "tags": read_tag_table,
        "esc50": read_esc50_csv,
        "urbansound8k": read_urbansound8k_csv,
    }[kind]
    if kind in ("folder", "pack"):  # they hold their audio
        kwargs.pop("audio_dir", None)
    elif kind not in ("jsonl", "esc50", "urbansound8k") and "audio_dir" not in kwargs:
        # a .jsonl resolves against its folder itself; ESC-50 and UrbanSound8K against their audio folder
        kwargs["audio_dir"] = path.parent
    try:
        return reader(path, **kwargs)
    except UnknownLabelError as exc:
        raise (exc.with_origin(classes_from) if classes_from else exc) from None
