"""data.unlabeled's sources: a folder, a list of paths, a manifest or a pack; labels dropped and said so."""

from __future__ import annotations

import logging

import pytest

from conftest import write_tone
from weaktag.labels import Clip, LabelError, Manifest
from weaktag.labels.unlabeled import read_unlabeled


def _audio(folder):
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    paths = [write_tone(folder / "a.wav"), write_tone(folder / "sub" / "b.flac"), write_tone(folder / ".hidden" / "c.wav")]
    (folder / "notes.txt").write_text("not audio")
    return paths


def test_a_folder_gives_every_audio_file_under_it_without_labels(tmp_path):
    a, b, _ = _audio(tmp_path / "u")
    m = read_unlabeled(tmp_path / "u")
    assert [(c.clip_id, c.audio_path, c.labels, c.events) for c in m.clips] == [
        ("a", a, frozenset(), None), ("sub/b", b, frozenset(), None)]
    assert m.classes == []


def test_a_list_of_paths_is_relative_to_its_folder_or_audio_dir(tmp_path):
    a, b, _ = _audio(tmp_path / "u")
    listing = tmp_path / "u" / "list.txt"
    listing.write_text(f"# unlabelled clips\na.wav\n\n{b}\n")
    m = read_unlabeled(listing)
    assert [(c.clip_id, c.audio_path) for c in m.clips] == [("a", a), (b.with_suffix("").as_posix(), b)]
    elsewhere = tmp_path / "list.txt"
    elsewhere.write_text("sub/b.flac\n")
    assert [c.audio_path for c in read_unlabeled(elsewhere, audio_dir=tmp_path / "u").clips] == [b]


def test_a_labelled_manifest_is_read_with_its_labels_dropped_and_a_log_line(tmp_path, caplog):
    a, b, _ = _audio(tmp_path / "u")
    path = tmp_path / "manifest.jsonl"
    Manifest([Clip("x", a, frozenset({"dog"})), Clip("y", b, frozenset())]).to_jsonl(path)
    with caplog.at_level(logging.INFO, logger="weaktag.labels.unlabeled"):
        m = read_unlabeled(path)
    assert [(c.clip_id, c.labels) for c in m.clips] == [("x", frozenset()), ("y", frozenset())]
    assert any("labels are ignored" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)


def test_a_pack_is_read_as_unlabelled_clips(tmp_path):
    from weaktag.packing import pack

    a, b, _ = _audio(tmp_path / "u")
    pack(Manifest([Clip("x", a, frozenset({"dog"})), Clip("y", b, frozenset({"cat"}))]), tmp_path / "pack",
         progress=False)
    m = read_unlabeled(tmp_path / "pack")
    assert [(c.clip_id, c.labels, c.packed is not None) for c in m.clips] == [("x", frozenset(), True),
                                                                               ("y", frozenset(), True)]


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing", "not found"),
    (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "no audio files"),
])
def test_a_bad_source_is_one_line_naming_it(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(LabelError) as info:
        read_unlabeled(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text
