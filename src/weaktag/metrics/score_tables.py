"""Score tables in sed_scores_eval's layout, written and read back: one TSV per audio file.

DCASE Task 4 systems hand in timestamped scores rather than decisions; ``sed_scores_eval``
(``base_modules.io.read_sed_scores(folder)``) reads a folder of tables, one per clip, named ``<audio id>.tsv``,
each with a header ``onset offset <class>...`` and a row per scored segment. The audio id is the
audio file's name without its suffix (DCASE ground truth's ``filename`` minus the extension); a file
in a sub-folder (``sub/a.wav``) becomes ``sub__a``, since the reader reads one flat folder.

:func:`write_score_table` writes what ``weaktag tag --scores`` writes; :func:`read_score_tables`
reads any system's tables, with a one-line error naming a file that is not one;
:func:`score_table_metrics` scores them against ground truth with weaktag's own metrics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..files import naming
from ..labels import Manifest, clip_id_from_filename
from .events import EventMetrics, psds, scores_to_dataframes
from .tagging import TaggingMetrics, tagging_metrics

log = logging.getLogger(__name__)

SCORE_TABLE_SUFFIX = ".tsv"
#: the two time columns that open every table (seconds)
TIME_COLUMNS = ("onset", "offset")


def score_table_id(filename: str) -> str:
    """The audio id a table is named by: ``sub/a.wav`` -> ``sub__a`` (``<id>.tsv`` in one flat folder)."""
    return clip_id_from_filename(filename.replace("\\", "/").lstrip("./")).replace("/", "__")


def write_score_table(folder: str | Path, filename: str, scores: np.ndarray, classes: Sequence[str],
                      segment_seconds: float, duration: float) -> Path:
    """One file's (C, T) segment scores as ``folder/<audio id>.tsv``, ending at ``duration`` (the zero padding
    after the file's end left out), written with sed_scores_eval's own writer."""
    from sed_scores_eval.base_modules.io import write_sed_scores

    audio_id = score_table_id(filename)
    frame = scores_to_dataframes({audio_id: scores}, classes, segment_seconds, {audio_id: duration})[audio_id]
    path = Path(folder) / f"{audio_id}{SCORE_TABLE_SUFFIX}"
    with naming(path):  # a full disk names the table
        path.parent.mkdir(parents=True, exist_ok=True)
        write_sed_scores(frame, path)
    return path


@dataclass
class ScoreTables:
    """A folder of score tables: audio id -> table (``onset``, ``offset``, one column per class), and the classes
    every table shares, in its column order."""

    folder: Path
    tables: dict[str, pd.DataFrame]
    classes: list[str]


def read_score_tables(folder: str | Path) -> ScoreTables:
    """Every ``*.tsv`` in ``folder`` as a score table; a table that is not one (a missing column, a
    non-number, times that do not run on without gaps, other classes than the first table's) is a
    :class:`~weaktag.errors.DataError` naming its file (and line)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of score tables (<audio id>.tsv)")
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix == SCORE_TABLE_SUFFIX)
    if not files:
        raise DataError(f"{folder}: no score tables (<audio id>.tsv) in this folder")
    tables: dict[str, pd.DataFrame] = {}
    classes: list[str] | None = None
    for file in files:
        table = _read_table(file)
        columns = [str(c) for c in table.columns[2:]]
        if classes is None:
            classes = columns
        elif columns != classes:
            raise DataError(f"{file}: line 1: its classes {columns} differ from {files[0].name}'s {classes}")
        tables[file.name[: -len(SCORE_TABLE_SUFFIX)]] = table
    return ScoreTables(folder, tables, list(classes or []))


def _read_table(file: Path) -> pd.DataFrame:
    from sed_scores_eval.base_modules.scores import validate_score_dataframe

    try:
        table = pd.read_csv(file, sep="\t")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: not a tab-separated score table ({' '.join(str(exc).split())})") from None
    if list(table.columns[:2]) != list(TIME_COLUMNS) or table.shape[1] < 3:
        raise DataError(f"{file}: line 1: expected the columns onset, offset and one per class, got "
                        f"{list(table.columns)}")
    if table.empty:
        raise DataError(f"{file}: no rows below the header")
    for column in table.columns:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy())
        if bad.size:
            raise DataError(f"{file}: line {bad[0] + 2}: column {column}: {table[column].iloc[bad[0]]!r} is not a number")
        table[column] = values.astype(float)
    onsets, offsets = table["onset"].to_numpy(), table["offset"].to_numpy()
    gap = np.flatnonzero((offsets <= onsets) | np.r_[False, onsets[1:] != offsets[:-1]])
    if gap.size:
        raise DataError(f"{file}: line {gap[0] + 2}: a segment must start where the previous one ended and end "
                        "after it starts")
    try:  # what sed_scores_eval itself requires of a table
        validate_score_dataframe(table)
    except ValueError as exc:
        raise DataError(f"{file}: {' '.join(str(exc).split())}") from None
    return table


@dataclass
class ScoreTableMetrics:
    """Tagging metrics of the tables' maxima over time, and PSDS 1 and 2 when the ground truth is strong."""

    tagging: TaggingMetrics
    events: EventMetrics | None
    num_clips: int
    unmatched_tables: int  # tables of no clip in the ground truth (ignored)


def score_table_metrics(scores: ScoreTables, ground_truth: Manifest) -> ScoreTableMetrics:
    """``scores`` against ``ground_truth`` (indexed by the tables' classes): clip-level mAP, AUC and d' of each
    class's highest segment score (sed_scores_eval's clip score), and, for strongly labelled clips, PSDS 1 and 2
    as ``weaktag evaluate`` computes them. A clip without a table is an error naming it."""
    by_id = {score_table_id(clip.clip_id): clip for clip in ground_truth}
    missing = [clip.clip_id for table_id, clip in by_id.items() if table_id not in scores.tables]
    if missing:
        raise DataError(f"{scores.folder}: no score table for {len(missing)} of the {len(by_id)} labelled clips, "
                        f"e.g. {score_table_id(missing[0])}{SCORE_TABLE_SUFFIX} for {missing[0]}")
    unmatched = len(set(scores.tables) - set(by_id))
    if unmatched:
        log.warning("%s: %d score table(s) of no labelled clip, ignored", scores.folder, unmatched)
    classes = scores.classes
    tables = {clip.clip_id: scores.tables[table_id] for table_id, clip in by_id.items()}
    weak = np.array([[float(name in clip.labels) for name in classes] for clip in ground_truth]).reshape(-1, len(classes))
    clip_scores = np.stack([tables[clip.clip_id][classes].to_numpy().max(axis=0) for clip in ground_truth])
    tagging = tagging_metrics(weak, clip_scores, classes)
    events = None
    if ground_truth.has_strong:
        events = EventMetrics(psds1=psds(tables, ground_truth, scenario=1).value,
                              psds2=psds(tables, ground_truth, scenario=2).value)
    return ScoreTableMetrics(tagging, events, len(ground_truth), unmatched)

