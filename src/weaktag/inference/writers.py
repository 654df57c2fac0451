"""Output files of a tagging run: clip-tag and event tables, the error list, segment matrices (.npz)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..files import json_lines, write_table, write_text_atomic
from .results import TagFailure


class NpzWriter:
    """An .npz written array by array, so segment matrices of many files never sit in memory together."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)

    def add(self, key: str, array: np.ndarray) -> None:
        with self.zip.open(key + ".npy", "w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)

    def close(self) -> None:
        self.zip.close()


def timeline_filename(name: str) -> str:
    """``sub/a.wav`` -> ``sub__a.png`` (flat folder, no collisions between sub-folders)."""
    stem = name.replace("\\", "/").lstrip("./").replace("/", "__")
    return (stem.rsplit(".", 1)[0] if "." in Path(stem).name else stem) + ".png"


def write_tag_tables(out: Path, rows: list[dict], failures: list[TagFailure], events: bool = True) -> None:
    """``tags.csv``, ``tags.json``, ``events.tsv`` (DCASE, with a score column) and ``errors.tsv`` under ``out``."""
    write_table(out / "tags.csv", ["filename", "rank", "label", "probability", "threshold", "above_threshold"],
                [[row["filename"], t["rank"], t["label"], f"{t['probability']:.6f}", f"{t['threshold']:.6f}",
                  int(t["above_threshold"])] for row in rows for t in row["tags"]])
    write_text_atomic(out / "tags.json", json_lines([{k: r[k] for k in ("filename", "duration", "tags")} for r in rows]))
    if events:
        write_table(out / "events.tsv", ["filename", "onset", "offset", "event_label", "score"],
                    [[row["filename"], f"{e['onset']:.3f}", f"{e['offset']:.3f}", e["event_label"], f"{e['score']:.6f}"]
                     for row in rows for e in row["events"]], delimiter="\t")
    write_table(out / "errors.tsv", ["filename", "reason"],
                [[f.source, f.reason.replace("\t", " ").replace("\n", " ")] for f in failures], delimiter="\t")
