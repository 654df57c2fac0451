"""Labels with folds (issue 25): ESC-50's and UrbanSound8K's own CSVs read as distributed, ESC-10's folder naming,
and a table's fold column."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from conftest import shared_data
from weaktag.labels import LabelError, Manifest, detect_label_format, read_esc50_csv, read_labels


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_esc50_csv_reads_every_row_with_its_fold_class_and_audio_file() -> None:
    path = shared_data("metadata/esc50.csv")
    rows = _csv_rows(path)
    manifest = read_labels(path)
    assert detect_label_format(path) == "esc50"
    assert len(manifest) == len(rows) and manifest.classes == sorted({r["category"] for r in rows})
    assert Counter(c.fold for c in manifest) == Counter(r["fold"] for r in rows)
    for clip, row in zip(manifest, rows):
        assert clip.labels == {row["category"]} and clip.fold == row["fold"] and clip.events is None
        # ESC-50-master/meta/esc50.csv: the audio is ESC-50-master/audio/<filename>
        assert clip.audio_path == path.resolve().parent.parent / "audio" / row["filename"]
    esc10 = read_esc50_csv(path, esc10=True, audio_dir="/data/esc50-audio")
    assert len(esc10) == sum(r["esc10"] == "True" for r in rows) and len(esc10.classes) == 10
    assert esc10.clips[0].audio_path.parent == Path("/data/esc50-audio")


def test_urbansound8k_csv_reads_every_row_with_its_fold_folder() -> None:
    path = shared_data("metadata/UrbanSound8K.csv")
    rows = _csv_rows(path)
    manifest = read_labels(path, audio_dir="/data/UrbanSound8K/audio")
    assert detect_label_format(path) == "urbansound8k"
    assert len(manifest) == len(rows) and manifest.classes == sorted({r["class"] for r in rows})
    assert Counter(c.fold for c in manifest) == Counter(r["fold"] for r in rows)
    for clip, row in zip(manifest, rows):
        assert clip.labels == {row["class"]} and clip.fold == row["fold"]
        assert clip.audio_path == Path("/data/UrbanSound8K/audio") / f"fold{row['fold']}" / row["slice_file_name"]


def test_esc10_folder_folds_come_from_esc_file_names() -> None:
    folder = shared_data("esc10")
    manifest = read_labels(folder)
    assert all(c.fold == c.audio_path.name.split("-")[0] for c in manifest)
    assert len({c.fold for c in manifest}) == 5


def test_a_table_with_a_fold_column_and_its_errors(tmp_path: Path) -> None:
    table = tmp_path / "tags.csv"
    table.write_text("filename,labels,fold\na.wav,dog,1\nb.wav,cat,2\na.wav,rain,1\n")
    manifest = read_labels(table)
    assert {c.clip_id: c.fold for c in manifest} == {"a": "1", "b": "2"}
    back = tmp_path / "m.jsonl"
    manifest.to_jsonl(back)  # a manifest keeps its folds
    assert [c.fold for c in Manifest.from_jsonl(back)] == ["1", "2"]
    table.write_text("filename,labels,fold\na.wav,dog,1\na.wav,rain,2\n")
    with pytest.raises(LabelError, match=r"tags\.csv:3: a\.wav: fold '2', but an earlier row gave it fold '1'"):
        read_labels(table)
    bad = tmp_path / "esc50.csv"
    bad.write_text("filename,fold,target,category,esc10,src_file,take\n1-1-A-0.wav,one,0,dog,True,1,A\n")
    with pytest.raises(LabelError, match=r"esc50\.csv:2: fold 'one' is not a whole number"):
        read_labels(bad)
