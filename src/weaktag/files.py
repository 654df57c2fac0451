"""Writing result files: atomically (a reader never sees half a file), JSON-ready values, CSV/TSV tables."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np


def plain(value: Any, nan: Any = None) -> Any:
    """JSON-ready: numpy -> Python, Path -> str, NaN/inf -> ``nan`` (None by default: JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v, nan) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, nan) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist(), nan)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return nan
    if isinstance(value, Path):
        return str(value)
    return value


@contextlib.contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """An OSError inside the block that names no file (a write on a full disk) or only its temporary
    copy comes out naming ``path``, so the user is told which output could not be written."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None and not str(exc.filename).endswith(".tmp"):
            raise
        code = exc.errno if exc.errno is not None else next(iter(exc.args), None)  # OSError(errno.ENOSPC)
        code = code if isinstance(code, int) else None
        reason = exc.strerror or (os.strerror(code) if code else str(exc) or type(exc).__name__)
        raise OSError(code, reason, str(path)) from exc


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with naming(path):
            yield tmp
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | Path, payload: Any) -> Path:
    """Indented JSON (NaN written as null), atomically."""
    return write_text_atomic(path, json.dumps(plain(payload), indent=2, ensure_ascii=False) + "\n")


def json_lines(rows: Sequence[Any]) -> str:
    """A JSON array with one item per line: readable, and written by the fast (C) encoder."""
    return "[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n" if rows else "[]\n"


def write_table(path: str | Path, header: Sequence[str], rows: Sequence[Sequence[Any]], delimiter: str = ",") -> Path:
    """CSV (or TSV with ``delimiter="\\t"``) with a header row, atomically; None/NaN cells are empty."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(table_cells(row) for row in rows)
    return Path(path)


def table_cells(row: Sequence[Any]) -> list[Any]:
    """One CSV/TSV row as written: JSON-ready values, None/NaN as empty cells."""
    return ["" if (v := plain(cell)) is None else v for cell in row]


#: DCASE's strong-label (event) columns; tools that read them ignore any columns after them
DCASE_COLUMNS = ("filename", "onset", "offset", "event_label")


def dcase_row(filename: str, onset: float | None, offset: float | None, label: str | None) -> list[str]:
    """One event as a DCASE table writes it (seconds to 3 decimals); no onset, offset or label: a clip without
    events (DESED's empty row)."""
    if onset is None or offset is None or label is None:
        return [filename, "", "", ""]
    return [filename, f"{onset:.3f}", f"{offset:.3f}", label]


def write_dcase_tsv(path: str | Path, rows: Sequence[Sequence[Any]], extra_columns: Sequence[str] = ()) -> Path:
    """A DCASE event table (:func:`dcase_row` rows, then ``extra_columns`` cells), tab separated, atomically."""
    return write_table(path, [*DCASE_COLUMNS, *extra_columns], rows, delimiter="\t")


def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Path:
    """Rows of dicts as CSV (columns: ``columns`` or the keys in first-seen order)."""
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    return write_table(path, columns, [[row.get(c) for c in columns] for row in rows])
