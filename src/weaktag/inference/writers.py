"""Output files of a tagging run: clip-tag and event tables, the error list, segment matrices (.npz).

The tables are streamed while a run goes (:class:`TagTables`: one flushed write per finished file,
so a run that is killed keeps the rows of the files it finished) and rewritten in input order,
atomically, when it ends.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from typing import IO, Sequence

import numpy as np

from ..files import (DCASE_COLUMNS, dcase_row, json_lines, naming, table_cells, write_dcase_tsv, write_table,
                     write_text_atomic)
from .results import FileTags, TagFailure

TAG_COLUMNS = ["filename", "rank", "label", "probability", "threshold", "above_threshold"]
# after DCASE's columns: the event's score, and clip_above_threshold: 1 when the event's class is also
# tagged for the clip (clip probability at or above its tag threshold)
EVENT_EXTRA_COLUMNS = ["score", "clip_above_threshold"]
EVENT_COLUMNS = [*DCASE_COLUMNS, *EVENT_EXTRA_COLUMNS]
ERROR_COLUMNS = ["filename", "reason"]


class NpzWriter:
    """An .npz written array by array, so segment matrices of many files never sit in memory together."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with naming(path):
            self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)

    def add(self, key: str, array: np.ndarray) -> None:
        with naming(self.path), self.zip.open(key + ".npy", "w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)

    def close(self) -> None:
        with naming(self.path):
            self.zip.close()


def timeline_filename(name: str) -> str:
    """``sub/a.wav`` -> ``sub__a.png`` (flat folder, no collisions between sub-folders)."""
    stem = name.replace("\\", "/").lstrip("./").replace("/", "__")
    return (stem.rsplit(".", 1)[0] if "." in Path(stem).name else stem) + ".png"


def tag_rows(file: FileTags) -> list[list]:
    """tags.csv rows of one file."""
    return [[file.source, t.rank, t.label, f"{t.probability:.6f}", f"{t.threshold:.6f}", int(t.above_threshold)]
            for t in file.tags]


def event_rows(file: FileTags) -> list[list]:
    """events.tsv rows of one file."""
    return [dcase_row(file.source, e.onset, e.offset, e.label) + [f"{e.score:.6f}", int(e.label in file.tagged)]
            for e in file.events]


def error_row(failure: TagFailure) -> list:
    return [failure.source, failure.reason.replace("\t", " ").replace("\n", " ")]


class _Stream:
    """One table written row by row, flushed after every file."""

    def __init__(self, path: Path, header: Sequence[str], delimiter: str) -> None:
        self.path = path
        with naming(path):
            self.file: IO[str] = path.open("w", newline="")
            self.writer = csv.writer(self.file, delimiter=delimiter, lineterminator="\n")
            self.writer.writerow(header)
            self.file.flush()

    def add(self, rows: list[list]) -> None:
        with naming(self.path):
            self.writer.writerows(table_cells(r) for r in rows)
            self.file.flush()

    def close(self) -> None:
        try:
            self.file.close()
        except OSError:  # what could not be flushed was reported when it was written
            pass


class TagTables:
    """tags.csv, events.tsv and errors.tsv under ``out``, streamed in the order files finish."""

    def __init__(self, out: Path, events: bool = True) -> None:
        self.streams: list[_Stream] = []
        try:
            self.tags = self._open(out / "tags.csv", TAG_COLUMNS, ",")
            self.events = self._open(out / "events.tsv", EVENT_COLUMNS, "\t") if events else None
            self.errors = self._open(out / "errors.tsv", ERROR_COLUMNS, "\t")
        except BaseException:
            self.close()
            raise

    def _open(self, path: Path, header: Sequence[str], delimiter: str) -> _Stream:
        stream = _Stream(path, header, delimiter)
        self.streams.append(stream)
        return stream

    def add(self, file: FileTags) -> None:
        self.tags.add(tag_rows(file))
        if self.events is not None:
            self.events.add(event_rows(file))

    def add_failure(self, failure: TagFailure) -> None:
        self.errors.add([error_row(failure)])

    def close(self) -> None:
        for stream in self.streams:
            stream.close()


def write_tag_tables(out: Path, files: list[FileTags], failures: list[TagFailure], events: bool = True) -> None:
    """``tags.csv``, ``tags.json``, ``events.tsv`` (DCASE, with a score column) and ``errors.tsv`` under ``out``."""
    write_table(out / "tags.csv", TAG_COLUMNS, [r for file in files for r in tag_rows(file)])
    rows = [file.to_json() for file in files]
    write_text_atomic(out / "tags.json", json_lines([{k: r[k] for k in ("filename", "duration", "tags")} for r in rows]))
    if events:
        write_dcase_tsv(out / "events.tsv", [r for file in files for r in event_rows(file)], EVENT_EXTRA_COLUMNS)
    write_table(out / "errors.tsv", ERROR_COLUMNS, [error_row(f) for f in failures], delimiter="\t")
